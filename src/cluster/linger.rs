// SPDX-License-Identifier: GPL-2.0

//! The front-end's memory of moved connections that ended with a FIN,
//! after their entry lingered out: the tuple and the back-end that served
//! it, until the back-end's `TIME_WAIT` socket is gone too.
//!
//! A back-end that closed first keeps the connection in `TIME_WAIT` for
//! a minute, answering the client's retransmitted FIN (its ACK of it was
//! lost) with that ACK again. The client's retransmissions back off
//! (0.2, 0.4, 0.8 s, ...): after a few lost ACKs in a row one comes
//! seconds after the back-end's TERM, past the entry's short linger.
//! Without this memory it reaches the front-end's own TCP, which answers
//! it with a reset: the client of a connection that ended well sees
//! ECONNRESET. With it, the segment goes to the back-end as the entry
//! would have sent it, and the back-end's TCP answers as any server's
//! does (an ACK from `TIME_WAIT`; a reset once that ended).
//!
//! Bounded, like TCP's own `TIME_WAIT` sockets (`tcp_max_tw_buckets`):
//! a full memory forgets the oldest tuple first (the least recently
//! added; an entry is never touched by a lookup), a [`Cache`] in
//! caller-owned slots.
//!
//! Pure: `no_std`, no allocation, no panic on any input; the caller
//! serializes access.

use super::cache::{Cache, Slot};
use super::frame::Tuple;
use core::ops::DerefMut;

/// How long a tuple is remembered, from the back-end's TERM: TCP's
/// `TIME_WAIT` (`TCP_TIMEWAIT_LEN`, 60 s).
pub const TIME_WAIT_MS: u64 = 60_000;

/// Where a remembered tuple's segments go, and until when.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Lingered {
    /// The back-end that served the connection.
    pub peer: u32,
    /// When it is forgotten (ms, the caller's clock).
    pub until_ms: u64,
}

/// One slot of a [`Linger`].
pub type LingerSlot = Slot<Lingered>;

/// An empty slot (build the array of a [`Linger`] with it).
pub const EMPTY: LingerSlot = Slot::empty(Lingered {
    peer: 0,
    until_ms: 0,
});

/// The remembered tuples of ended connections, in caller-owned slots.
pub struct Linger<S: DerefMut<Target = [LingerSlot]>> {
    c: Cache<S, Lingered>,
}

impl<S: DerefMut<Target = [LingerSlot]>> Linger<S> {
    /// An empty memory in `slots` (its capacity), hashing under `key`
    /// (drawn at random: clients cannot aim at one chain).
    pub fn new(slots: S, key: (u64, u64)) -> Self {
        Linger {
            c: Cache::new(slots, key),
        }
    }

    /// Remembers `t`, served by `peer`, until `until_ms`; returns whether
    /// an older tuple was forgotten to make room (or `t` itself, with no
    /// room at all).
    pub fn add(&mut self, t: Tuple, peer: u32, until_ms: u64) -> bool {
        // A tuple added again is moved to the recent end by `insert`.
        self.c.insert(t, Lingered { peer, until_ms }).is_some()
    }

    /// The back-end of `t` if it is remembered at `now_ms`; a tuple whose
    /// time passed is forgotten.
    pub fn peer(&mut self, t: &Tuple, now_ms: u64) -> Option<u32> {
        let l = self.c.peek(t)?;
        if now_ms < l.until_ms {
            return Some(l.peer);
        }
        self.c.remove(t);
        None
    }

    /// Forgets `t` (a new connection took the tuple over).
    pub fn forget(&mut self, t: &Tuple) {
        self.c.remove(t);
    }

    /// Forgets the tuples whose time passed at `now_ms` (the oldest are
    /// first in line: those added before are looked at until one is still
    /// due, at most `budget`); returns how many went.
    pub fn expire(&mut self, now_ms: u64, budget: usize) -> usize {
        let mut n = 0;
        while n < budget {
            let Some((t, l)) = self.c.oldest() else {
                break;
            };
            if now_ms < l.until_ms {
                break;
            }
            self.c.remove(&t);
            n += 1;
        }
        n
    }

    /// How many tuples it remembers.
    pub fn len(&self) -> usize {
        self.c.len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.c.is_empty()
    }

    /// How many it can remember.
    pub fn capacity(&self) -> usize {
        self.c.capacity()
    }
}
