// SPDX-License-Identifier: GPL-2.0

//! The cache of recent associations of every dispatcher (seed 001, claim
//! 12): a connection's tuple to its owner and back-end, so that a packet at
//! a dispatcher that is neither owner nor backup goes straight where it
//! belongs; a miss forwards it to the owner (claims 14, 15).
//!
//! Bounded and least-recently-used: a fixed array of slots, given once by
//! the caller (the module allocates it when the dispatcher starts; nothing
//! is allocated after), indexed by u32. Each slot is an entry of a doubly
//! linked list from the most to the least recently used, an entry of a
//! hash chain, and the head of the hash chain of the bucket of its own
//! index (as many buckets as slots: a chain holds one entry on average).
//! The bucket is SipHash-2-4 of the tuple's 40 bytes under a key the
//! caller draws at random (`select::siphash24`), so that clients cannot
//! aim at one chain. A full cache evicts the least recently used entry.
//! [`Cache::flush_node`] drops the entries of a node that left (claim 18).
//!
//! Pure: `no_std`, no allocation, no panic on any input; the caller
//! serializes access (a spinlock in the module).

use super::frame::{Family, Tuple};
use super::select::siphash24;
use core::ops::DerefMut;

/// An index that is no slot.
const NIL: u32 = u32::MAX;
/// The most slots used (indices stay below [`NIL`]).
pub const MAX_SLOTS: usize = (u32::MAX - 1) as usize;

/// Where a connection goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Assoc {
    /// The dispatcher that owns it.
    pub owner: u32,
    /// The node that serves it.
    pub backend: u32,
}

/// One slot of a [`Cache`] of values `V`: build the array with
/// [`Slot::empty`] ([`Slot::EMPTY`] for the association cache).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Slot<V = Assoc> {
    key: Tuple,
    val: V,
    /// Towards the most recently used (used), unused (free).
    prev: u32,
    /// Towards the least recently used (used), the next free slot (free).
    next: u32,
    /// The next entry of its hash chain.
    chain: u32,
    /// The first entry of the chain of the bucket numbered as this slot.
    head: u32,
}

impl<V: Copy> Slot<V> {
    /// A slot as [`Cache::new`] wants it (any slot will do: `new` resets
    /// them all but their value, which is `val` until one is inserted).
    pub const fn empty(val: V) -> Self {
        Slot {
            key: Tuple {
                family: Family::V4,
                client: [0; 16],
                server: [0; 16],
                client_port: 0,
                server_port: 0,
            },
            val,
            prev: NIL,
            next: NIL,
            chain: NIL,
            head: NIL,
        }
    }
}

impl Slot<Assoc> {
    /// An empty slot of the association cache.
    pub const EMPTY: Slot = Slot::empty(Assoc {
        owner: 0,
        backend: 0,
    });
}

/// A bounded LRU map from tuples to values `V` ([`Assoc`] for the
/// association cache), in caller-owned slots.
#[derive(Debug)]
pub struct Cache<S: DerefMut<Target = [Slot<V>]>, V: Copy = Assoc> {
    slots: S,
    cap: u32,
    len: u32,
    /// The most and the least recently used entries.
    mru: u32,
    lru: u32,
    /// The first free slot.
    free: u32,
    key: (u64, u64),
}

impl<S: DerefMut<Target = [Slot<V>]>, V: Copy> Cache<S, V> {
    /// An empty cache in `slots` (its capacity, up to [`MAX_SLOTS`]),
    /// hashing under `key`.
    pub fn new(mut slots: S, key: (u64, u64)) -> Self {
        let cap = slots.len().min(MAX_SLOTS) as u32;
        for (i, s) in slots.iter_mut().enumerate().take(cap as usize) {
            *s = Slot::empty(s.val);
            let next = i as u32 + 1;
            s.next = if next < cap { next } else { NIL };
        }
        Cache {
            slots,
            cap,
            len: 0,
            mru: NIL,
            lru: NIL,
            free: if cap > 0 { 0 } else { NIL },
            key,
        }
    }

    /// How many entries it can hold.
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// How many it holds.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn bucket(&self, t: &Tuple) -> u32 {
        // The callers checked that `cap` is not 0; no division-by-zero
        // panic path either way (objtool does not know Rust's panics end).
        let h = siphash24(self.key.0, self.key.1, &t.encode());
        h.checked_rem(u64::from(self.cap)).unwrap_or(0) as u32
    }

    /// The slot of `t`, and the one before it in its chain (`NIL` if
    /// first).
    fn find(&self, t: &Tuple) -> Option<(u32, u32)> {
        if self.cap == 0 {
            return None;
        }
        let mut before = NIL;
        let mut i = self.slots[self.bucket(t) as usize].head;
        while i != NIL {
            let s = &self.slots[i as usize];
            if s.key == *t {
                return Some((i, before));
            }
            before = i;
            i = s.chain;
        }
        None
    }

    /// Takes slot `i` out of the recency list.
    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        match prev {
            NIL => self.mru = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.lru = prev,
            n => self.slots[n as usize].prev = prev,
        }
    }

    /// Puts slot `i` at the most recently used end.
    fn push_front(&mut self, i: u32) {
        let old = self.mru;
        {
            let s = &mut self.slots[i as usize];
            s.prev = NIL;
            s.next = old;
        }
        match old {
            NIL => self.lru = i,
            o => self.slots[o as usize].prev = i,
        }
        self.mru = i;
    }

    /// Frees the used slot `i`, `before` it in its chain.
    fn release(&mut self, i: u32, before: u32) {
        let (chain, key) = {
            let s = &self.slots[i as usize];
            (s.chain, s.key)
        };
        match before {
            NIL => {
                let b = self.bucket(&key) as usize;
                self.slots[b].head = chain;
            }
            p => self.slots[p as usize].chain = chain,
        }
        self.unlink(i);
        let free = self.free;
        let s = &mut self.slots[i as usize];
        s.chain = NIL;
        s.prev = NIL;
        s.next = free;
        self.free = i;
        self.len -= 1;
    }

    /// Where `t` goes, and makes it the most recently used.
    pub fn get(&mut self, t: &Tuple) -> Option<V> {
        let (i, _) = self.find(t)?;
        self.unlink(i);
        self.push_front(i);
        Some(self.slots[i as usize].val)
    }

    /// Where `t` goes, without touching its recency.
    pub fn peek(&self, t: &Tuple) -> Option<V> {
        self.find(t).map(|(i, _)| self.slots[i as usize].val)
    }

    /// Records (or updates) `t` as the most recently used; returns the
    /// entry evicted to make room (`t` itself when the capacity is 0).
    pub fn insert(&mut self, t: Tuple, a: V) -> Option<(Tuple, V)> {
        if self.cap == 0 {
            return Some((t, a));
        }
        if let Some((i, _)) = self.find(&t) {
            self.slots[i as usize].val = a;
            self.unlink(i);
            self.push_front(i);
            return None;
        }
        let mut evicted = None;
        if self.free == NIL {
            let victim = self.lru;
            let s = self.slots[victim as usize];
            evicted = Some((s.key, s.val));
            if let Some((i, before)) = self.find(&s.key) {
                self.release(i, before);
            }
        }
        let i = self.free;
        if i == NIL {
            // Unreachable: the eviction freed a slot.
            return Some((t, a));
        }
        self.free = self.slots[i as usize].next;
        let b = self.bucket(&t) as usize;
        let head = self.slots[b].head;
        {
            let s = &mut self.slots[i as usize];
            s.key = t;
            s.val = a;
            s.chain = head;
        }
        self.slots[b].head = i;
        self.push_front(i);
        self.len += 1;
        evicted
    }

    /// Forgets `t` (CONN_END); returns where it went.
    pub fn remove(&mut self, t: &Tuple) -> Option<V> {
        let (i, before) = self.find(t)?;
        let a = self.slots[i as usize].val;
        self.release(i, before);
        Some(a)
    }

    /// Forgets every entry for which `drop` holds; returns how many.
    pub fn flush(&mut self, mut drop: impl FnMut(&Tuple, &V) -> bool) -> usize {
        let mut n = 0;
        let mut i = self.mru;
        while i != NIL {
            let s = self.slots[i as usize];
            let next = s.next;
            if drop(&s.key, &s.val) {
                if let Some((j, before)) = self.find(&s.key) {
                    self.release(j, before);
                    n += 1;
                }
            }
            i = next;
        }
        n
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.flush(|_, _| true);
    }

    /// The least recently used entry (the next one a full cache evicts).
    pub fn oldest(&self) -> Option<(Tuple, V)> {
        if self.lru == NIL {
            return None;
        }
        let s = self.slots.get(self.lru as usize)?;
        Some((s.key, s.val))
    }

    /// The entries from the most to the least recently used.
    pub fn iter(&self) -> impl Iterator<Item = (Tuple, V)> + '_ {
        let mut i = self.mru;
        core::iter::from_fn(move || {
            if i == NIL {
                return None;
            }
            let s = self.slots.get(i as usize)?;
            i = s.next;
            Some((s.key, s.val))
        })
    }
}

impl<S: DerefMut<Target = [Slot]>> Cache<S> {
    /// Forgets the entries owned by, or served by, `node` (a dispatcher or
    /// a back-end that left); returns how many.
    pub fn flush_node(&mut self, node: u32) -> usize {
        self.flush(|_, a| a.owner == node || a.backend == node)
    }
}
