// SPDX-License-Identifier: GPL-2.0

//! STUB of H-rules' rule engine (contract item 2 of issue 11's part 2):
//! exactly the contract's API; every connection is decided local by the
//! default rule. The lead replaces this file with H-rules' at the merge.

use kernel::prelude::*;

/// Where a connection goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Verdict {
    Local,
    #[allow(dead_code)]
    Peer(u32),
}

/// One service's rules, compiled; immutable.
pub(crate) struct ServiceRules {}

impl ServiceRules {
    /// Control path (config mutex held, GFP_KERNEL).
    pub(crate) fn build(_cfg: &crate::cluster::Config, _service: u32) -> Result<Self> {
        Ok(Self {})
    }

    /// Packet path: no allocation, no sleep. `up`: sorted ids of nodes up.
    /// Returns the verdict and the id of the rule that matched (0: the default).
    pub(crate) fn decide(
        &self,
        _req: &crate::logic::request::Parse<'_>,
        _self_id: u32,
        _up: &[u32],
    ) -> (Verdict, u32) {
        (Verdict::Local, 0)
    }
}
