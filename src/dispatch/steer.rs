// SPDX-License-Identifier: GPL-2.0

//! What a dispatcher does with a client's TCP segment (seed 001, claims
//! 13 to 15), from what it knows: the connection's owner and backup under
//! its view, its own entry of the connection (if it owns or backs it up,
//! or forwards it until a TRANSFER is acknowledged), and its cache.
//!
//! | segment | this node | action |
//! |---|---|---|
//! | SYN, a retransmission of the entry's (same ISN) | holds an entry | as the entry says |
//! | SYN | owner | [`Action::Decide`]: hold and decide it (handoff parts 2, 3), record it, CONN_SYNC the backup |
//! | SYN | not owner | [`Action::Owner`]: forward to the owner |
//! | other | holds an entry | forwarded: [`Action::Backend`]; pending or local: [`Action::Local`] on the node that forwards it, else [`Action::Owner`] |
//! | other | cache hit | [`Action::Backend`] (or [`Action::Local`] if it is this node); a cache learns a connection once it is placed (forwarded, or local to its owner), never while pending |
//! | other | owner, nothing known | [`Action::Drop`] within the grace after a membership change (its TRANSFER may be on its way), else [`Action::Unknown`] (the stack answers) |
//! | other | neither | [`Action::Owner`] (claim 15) |
//!
//! A FIN or RST also ends the connection ([`Decision::end`]): the node
//! that sees it sends CONN_END to every dispatcher, and every entry and
//! cache line of the connection goes after a linger (the client's last
//! ACKs still need forwarding).
//!
//! Pure: `no_std`, no allocation, no panic on any input.

use super::cache::Assoc;
use super::frame::Placement;
use super::owner::Pair;

/// What matters of a client's TCP segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Seg {
    /// SYN set.
    pub syn: bool,
    /// ACK set.
    pub ack: bool,
    /// FIN set.
    pub fin: bool,
    /// RST set.
    pub rst: bool,
    /// Its sequence number (a SYN's: the client's ISN).
    pub seq: u32,
}

/// This node's entry of a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Held {
    /// The node that serves it.
    pub backend: u32,
    /// Where it is served.
    pub placement: Placement,
    /// The client's ISN.
    pub client_isn: u32,
    /// This node forwards the connection's packets: its owner, or the
    /// interim forwarder until the new owner acknowledges a TRANSFER.
    pub forwarding: bool,
}

/// Where the segment goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    /// A new connection this node owns: hold and decide it, then record
    /// it and send its backup a CONN_SYNC.
    Decide,
    /// Into this node's own stack (the owner's hold or its local TCP).
    Local,
    /// To the back-end that serves it, in the encapsulation.
    Backend(u32),
    /// To the connection's owner, in the encapsulation.
    Owner(u32),
    /// Dropped: the client retransmits (an unknown connection within the
    /// grace after a membership change).
    Drop,
    /// Nobody knows it: into this node's stack, which resets it.
    Unknown,
}

/// What to do with a segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Decision {
    /// Where it goes.
    pub action: Action,
    /// A FIN or RST that is sent on: CONN_END to every dispatcher, and the
    /// connection's entries and cache lines go after the linger.
    pub end: bool,
}

fn by_entry(me: u32, owner: u32, h: &Held) -> Action {
    match h.placement {
        Placement::Forwarded if h.backend == me => Action::Local,
        Placement::Forwarded => Action::Backend(h.backend),
        Placement::Pending | Placement::Local if h.forwarding || owner == me => Action::Local,
        Placement::Pending | Placement::Local => Action::Owner(owner),
    }
}

/// The decision of dispatcher `me` for segment `seg` of a connection
/// whose owner and backup under `me`'s view are `pair` (`None`: no
/// dispatcher is up, this node does not dispatch: [`Action::Local`]),
/// with `me`'s entry `held` and cache line `cached`; `grace`: a
/// membership change happened less than the grace period ago.
pub fn steer(
    me: u32,
    pair: Option<Pair>,
    seg: Seg,
    held: Option<Held>,
    cached: Option<Assoc>,
    grace: bool,
) -> Decision {
    let Some(pair) = pair else {
        return Decision {
            action: Action::Local,
            end: false,
        };
    };
    let owner = pair.owner;
    let new_syn = seg.syn && !seg.ack;
    let held = held.filter(|h| !new_syn || h.client_isn == seg.seq);
    let action = match (held, cached) {
        _ if new_syn && held.is_none() && owner == me => Action::Decide,
        _ if new_syn && held.is_none() => Action::Owner(owner),
        (Some(h), _) => by_entry(me, owner, &h),
        (None, Some(a)) if a.backend == me => Action::Local,
        (None, Some(a)) => Action::Backend(a.backend),
        (None, None) if owner != me => Action::Owner(owner),
        (None, None) if grace => Action::Drop,
        (None, None) => Action::Unknown,
    };
    let passes = !matches!(action, Action::Drop | Action::Unknown);
    Decision {
        action,
        end: (seg.fin || seg.rst) && passes,
    }
}
