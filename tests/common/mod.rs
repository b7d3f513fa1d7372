// SPDX-License-Identifier: GPL-2.0

//! What several test files share: the MACs the codecs are tested with.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use sockgroup_logic::frame::{Mac, MacError, TAG_LEN};

/// HMAC-SHA256 from the `hmac` and `sha2` crates, as the kernel's
/// `hmac(sha256)` shash does it in the module.
pub struct HmacSha256(pub Vec<u8>);

impl Mac for HmacSha256 {
    fn tag(&self, parts: &[&[u8]]) -> Result<[u8; TAG_LEN], MacError> {
        let mut m = <Hmac<Sha256>>::new_from_slice(&self.0).map_err(|_| MacError)?;
        for p in parts {
            m.update(p);
        }
        Ok(m.finalize().into_bytes().into())
    }
}

/// A MAC that fails, as a kernel crypto call may.
pub struct Broken;

impl Mac for Broken {
    fn tag(&self, _: &[&[u8]]) -> Result<[u8; TAG_LEN], MacError> {
        Err(MacError)
    }
}
