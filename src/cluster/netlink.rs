// SPDX-License-Identifier: GPL-2.0

//! The family's events: a TEMPORARY STAND-IN (helper "chan") with the
//! signature of the cluster design, until helper "genl"'s `netlink.rs` is
//! merged and replaces this file.

use super::Addr;
use crate::sys::net::Net;

/// What happened to a peer, for [`notify`].
pub(crate) enum Event {
    PeerUp,
    PeerDown,
    KeyRejected,
}

/// Sends an event about peer `peer_id` (at `addr`) to the `events` group of `net`.
pub(crate) fn notify(_net: &Net, _event: Event, _peer_id: u32, _addr: &Addr) {}
