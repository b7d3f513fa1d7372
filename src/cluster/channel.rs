// SPDX-License-Identifier: GPL-2.0

//! The control channels to the peers: a STAND-IN with the interface of the
//! cluster design (helper "chan" owns the real one, which replaces this
//! file). It accepts every configuration, reports every peer down and
//! counts nothing.

use super::{NodeConfig, PeerConfig};
use crate::sys::net::Net;
use kernel::{init::PinInit, prelude::*};

/// Where the control channel to a peer stands (values of `enum sockgroup_peer_state`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerState {
    Down,
    #[allow(dead_code)]
    Connecting,
    #[allow(dead_code)]
    Up,
}

/// A peer's counters.
#[derive(Clone, Copy, Default)]
pub(crate) struct PeerStats {
    pub(crate) frames_tx: u64,
    pub(crate) frames_rx: u64,
    pub(crate) heartbeats_tx: u64,
    pub(crate) heartbeats_rx: u64,
    pub(crate) rejected: u64,
    pub(crate) connects: u64,
    pub(crate) ups: u64,
    pub(crate) downs: u64,
}

/// The namespace's counters (the spec's `stats` set).
#[derive(Clone, Copy, Default)]
pub(crate) struct NetStats {
    pub(crate) peers_up: u32,
    pub(crate) accepted: u64,
    pub(crate) refused_nonpeer: u64,
    pub(crate) rejected: u64,
    pub(crate) frames_tx: u64,
    pub(crate) frames_rx: u64,
    pub(crate) generation: u64,
}

/// The namespace's control channels.
pub(crate) struct Channels {
    _priv: (),
}

impl Channels {
    pub(crate) fn new(_net: &Net) -> impl PinInit<Self, Error> {
        Channels { _priv: () }
    }

    /// Takes the whole new configuration (`None`: unconfigured).
    pub(crate) fn apply(&self, _node: Option<&NodeConfig>, _peers: &[PeerConfig]) -> Result {
        Ok(())
    }

    pub(crate) fn peer_status(&self, _id: u32) -> Option<(PeerState, PeerStats)> {
        Some((PeerState::Down, PeerStats::default()))
    }

    pub(crate) fn stats(&self) -> NetStats {
        NetStats::default()
    }

    /// The generation and the ids of the nodes up.
    pub(crate) fn membership(&self) -> (u64, KVec<u32>) {
        (0, KVec::new())
    }
}
