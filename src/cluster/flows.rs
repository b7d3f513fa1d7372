// SPDX-License-Identifier: GPL-2.0

//! The pinning of UDP flows to nodes (seed 004): the first datagram of a
//! flow (its 4-tuple) chooses the node that serves it, and every later
//! datagram of the flow goes to the same node while the flow is active,
//! whatever happens to the membership meanwhile.
//!
//! A fixed table of slots (allocated by the caller, a power of two), open
//! addressing with at most [`PROBES`] slots looked at per flow: no
//! allocation and a bounded cost on the packet path. A slot whose flow was
//! idle for the idle time is free again. A flow that finds neither its
//! slot nor a free one among its probes is not pinned ([`Pin::Unpinned`]):
//! the caller decides it afresh, datagram by datagram (the rendezvous hash
//! gives the same node as long as the membership stays).
//!
//! The hash is seeded per table (a random seed): nobody outside chooses
//! flows that collide.
//!
//! `no_std`, no allocation, no panics.

use super::frame::Tuple;

/// Slots looked at per flow.
pub const PROBES: usize = 8;

/// One slot of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The flow (meaningful when `node != 0` or `used`).
    pub key: Tuple,
    /// Whether a flow was pinned here.
    pub used: bool,
    /// Its node.
    pub node: u32,
    /// When it last had a datagram.
    pub last_ms: u64,
}

impl Slot {
    /// An empty slot.
    pub const EMPTY: Slot = Slot {
        key: Tuple {
            family: super::frame::Family::V4,
            client: [0; 16],
            server: [0; 16],
            client_port: 0,
            server_port: 0,
        },
        used: false,
        node: 0,
        last_ms: 0,
    };
}

/// What [`pin`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pin {
    /// The flow was pinned before: its node.
    Known(u32),
    /// The flow is new: the node chosen for it, now pinned.
    New(u32),
    /// No room among the flow's slots: the node chosen, not pinned.
    Unpinned(u32),
}

impl Pin {
    /// The flow's node.
    pub fn node(self) -> u32 {
        match self {
            Pin::Known(n) | Pin::New(n) | Pin::Unpinned(n) => n,
        }
    }
}

/// FNV-1a over the encoded flow and the seed (also the hash of the
/// back-end's table of translated connections).
pub fn hash(key: &Tuple, seed: u32) -> usize {
    let mut h: u32 = 0x811c_9dc5 ^ seed;
    for &b in key.encode().iter() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h as usize
}

/// Whether a slot holds a live flow at `now`.
fn live(s: &Slot, now: u64, idle_ms: u64) -> bool {
    s.used && now.saturating_sub(s.last_ms) < idle_ms
}

/// What [`probe`] found among a flow's slots.
enum Probe {
    /// The flow's live slot.
    Found(usize),
    /// Not pinned: the first free slot among its probes, if any.
    Free(Option<usize>),
}

/// Looks at flow `key`'s [`PROBES`] slots at `now`; `None` when the table
/// cannot pin (empty, or its length not a power of two).
fn probe(slots: &[Slot], seed: u32, key: &Tuple, now: u64, idle_ms: u64) -> Option<Probe> {
    let n = slots.len();
    if n == 0 || !n.is_power_of_two() {
        return None;
    }
    let start = hash(key, seed);
    let mut free = None;
    for i in 0..PROBES.min(n) {
        let at = (start.wrapping_add(i)) & (n - 1);
        let Some(s) = slots.get(at) else {
            continue;
        };
        if live(s, now, idle_ms) {
            if s.key == *key {
                return Some(Probe::Found(at));
            }
        } else if free.is_none() {
            free = Some(at);
        }
    }
    Some(Probe::Free(free))
}

/// Pins `key` to `node` in slot `at` (a free one), if there is one.
fn fill(slots: &mut [Slot], at: Option<usize>, key: &Tuple, now: u64, node: u32) -> bool {
    match at.and_then(|at| slots.get_mut(at)) {
        Some(s) => {
            *s = Slot {
                key: *key,
                used: true,
                node,
                last_ms: now,
            };
            true
        }
        None => false,
    }
}

/// The node of flow `key` at `now`: its pinned node if it has one (its
/// time refreshed); otherwise `choose()`'s, pinned in the first free slot
/// (empty, or idle for `idle_ms`) among the flow's probes. `slots.len()`
/// must be a power of two (otherwise the flow is never pinned).
pub fn pin(
    slots: &mut [Slot],
    seed: u32,
    key: &Tuple,
    now: u64,
    idle_ms: u64,
    choose: impl FnOnce() -> u32,
) -> Pin {
    let free = match probe(slots, seed, key, now, idle_ms) {
        None => return Pin::Unpinned(choose()),
        Some(Probe::Found(at)) => {
            if let Some(s) = slots.get_mut(at) {
                s.last_ms = now;
                return Pin::Known(s.node);
            }
            None
        }
        Some(Probe::Free(free)) => free,
    };
    let node = choose();
    if fill(slots, free, key, now, node) {
        Pin::New(node)
    } else {
        Pin::Unpinned(node)
    }
}

/// Pins flow `key` to `node` at `now` whatever it had (a flow that a peer
/// forwarded here is this node's); false when there was no room.
pub fn pin_to(
    slots: &mut [Slot],
    seed: u32,
    key: &Tuple,
    now: u64,
    idle_ms: u64,
    node: u32,
) -> bool {
    match probe(slots, seed, key, now, idle_ms) {
        None => false,
        Some(Probe::Found(at)) => match slots.get_mut(at) {
            Some(s) => {
                s.node = node;
                s.last_ms = now;
                true
            }
            None => false,
        },
        Some(Probe::Free(free)) => fill(slots, free, key, now, node),
    }
}

/// The flows live at `now`.
pub fn live_count(slots: &[Slot], now: u64, idle_ms: u64) -> usize {
    slots.iter().filter(|s| live(s, now, idle_ms)).count()
}
