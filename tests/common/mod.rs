// SPDX-License-Identifier: GPL-2.0

//! What several test files share: the MACs the codecs are tested with,
//! and connections.

use hmac::{Hmac, Mac as _};
use proptest::prelude::*;
use sha2::Sha256;
use sockgroup_logic::frame::{Family, Mac, MacError, Tuple, TAG_LEN};

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

/// Any connection, IPv4 (zeros past the addresses) or IPv6.
pub fn tuple() -> impl Strategy<Value = Tuple> {
    (
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(v6, mut client, mut server, client_port, server_port)| {
            if !v6 {
                client[4..].fill(0);
                server[4..].fill(0);
            }
            Tuple {
                family: if v6 { Family::V6 } else { Family::V4 },
                client,
                server,
                client_port,
                server_port,
            }
        })
}
