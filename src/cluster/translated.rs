// SPDX-License-Identifier: GPL-2.0

//! The back-end's translated connections (seed 002, claims 7 and 9): a
//! handed-off connection whose server side runs here in another sequence
//! space or timestamp clock than the one the client saw from the front-end
//! has its packets translated by [`crate::logic::xlate`], both ways:
//!
//! - the client's packets, as they arrive from the front-end inside the
//!   encapsulation, before this host's stack sees them
//!   ([`Translated::inbound`], called by `super::fwd`):
//!   [`Dir::ToBackend`], the checksum updated in full (the front-end
//!   completed it before sealing; the stack checks it again); an ICMP
//!   error about this host's packet (path MTU) has the seq it quotes
//!   moved back ([`xlate::translate_icmp_error`]);
//! - this host's packets of the connection at LOCAL_OUT
//!   ([`Translated::out`], after conntrack and the filter table, so that
//!   the host sees only its own numbers): [`Dir::ToClient`], a
//!   `CHECKSUM_PARTIAL` packet's field left to the device; a GSO packet's
//!   header is translated once, as segmentation derives every segment's
//!   sequence number and options from it.
//!
//! The replay aligns the back-end with the front-end (`super::replay`), so
//! that nothing needs translating: an entry exists only when node-set's
//! replay offsets are not 0, which exists to exercise this path (and stands
//! for the cases that cannot be aligned).
//!
//! # The table
//!
//! A fixed array of [`SLOTS`] RCU cells, open addressing with at most
//! [`PROBES`] slots per connection (hashed with a per-table seed), as
//! `crate::logic::flows`. Readers (the packet path, softirq or process
//! context) follow a slot's cell under RCU without a lock; writers (the
//! replay's start and the back-end's work, process context) hold the
//! mutex, and a removed entry is freed after a grace period (`call_rcu`;
//! the module's exit waits for them with `rcu_barrier`). An entry is made
//! before the replay injects its first segment (the child's first ACK
//! leaves before the adoption is polled) and goes when TCP no longer has
//! the connection, its `TIME_WAIT` socket included ([`Translated::prune`],
//! from the back-end's work); the array goes with the namespace's state,
//! after the grace period that follows the unregistration of the hooks.

use super::replay::TIMEOUT_MS;
use crate::logic::{
    flows,
    frame::{Family as WireFamily, Tuple},
    xlate::{self, Dir, Offsets},
};
use crate::sys::{
    net::Net,
    netfilter::{now_ms, random_u32, OutPacket, OutVerdict},
    rcu::{self, RcuCell},
    skb::Family,
    tcp::{self, Established},
};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use kernel::{alloc::KVVec, new_mutex, prelude::*, sync::Mutex};

/// Slots of the table (a power of two): at most this many translated
/// connections per namespace (fewer when their probes collide); beyond,
/// a replay with offsets is refused.
pub(crate) const SLOTS: usize = 1024;
/// Slots looked at per connection.
const PROBES: usize = 16;
/// An entry this young is kept without a socket: its replay is under way
/// (or failed, and the replay's own entry drops what TCP sends).
const YOUNG_MS: u64 = 2 * TIMEOUT_MS;

/// One translated connection.
struct Entry {
    tuple: Tuple,
    off: Offsets,
    created_ms: u64,
}

/// The counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct XlateStats {
    /// Connections in the table now.
    pub(crate) conns: u64,
    /// The client's packets translated on their way in.
    pub(crate) xlated_in: u64,
    /// This host's packets translated on their way out.
    pub(crate) xlated_out: u64,
    /// Packets of translated connections dropped: a malformed header, or
    /// one that could not be made writable.
    pub(crate) drop: u64,
}

/// What [`Translated::inbound`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Inbound {
    /// Not a translated connection's: as it was.
    Untouched,
    /// Translated.
    Translated,
    /// A translated connection's, malformed: to be dropped (counted).
    Drop,
}

/// The translated connections of a namespace.
#[pin_data]
pub(crate) struct Translated {
    slots: KVVec<RcuCell<Entry>>,
    /// Writers.
    #[pin]
    lock: Mutex<()>,
    seed: u32,
    /// Entries in the table: the packet path looks no further when 0.
    count: AtomicUsize,
    xlated_in: AtomicU64,
    xlated_out: AtomicU64,
    drop: AtomicU64,
}

impl Translated {
    /// An empty table (process context).
    pub(crate) fn new() -> Result<impl PinInit<Self>> {
        let mut slots = KVVec::with_capacity(SLOTS, GFP_KERNEL)?;
        for _ in 0..SLOTS {
            slots.push(RcuCell::new(), GFP_KERNEL)?;
        }
        Ok(pin_init!(Translated {
            slots,
            lock <- new_mutex!((), "sockgroup_xlate"),
            seed: random_u32(),
            count: AtomicUsize::new(0),
            xlated_in: AtomicU64::new(0),
            xlated_out: AtomicU64::new(0),
            drop: AtomicU64::new(0),
        }))
    }

    /// The counters.
    pub(crate) fn stats(&self) -> XlateStats {
        XlateStats {
            conns: self.count.load(Relaxed) as u64,
            xlated_in: self.xlated_in.load(Relaxed),
            xlated_out: self.xlated_out.load(Relaxed),
            drop: self.drop.load(Relaxed),
        }
    }

    /// Whether any connection is translated.
    pub(crate) fn is_empty(&self) -> bool {
        self.count.load(Relaxed) == 0
    }

    /// The slots `t` may be in, in probe order (hashed with the table's
    /// seed: nobody outside chooses connections that collide).
    fn probes(&self, t: &Tuple) -> impl Iterator<Item = &RcuCell<Entry>> {
        let start = flows::hash(t, self.seed);
        (0..PROBES).filter_map(move |i| self.slots.get(start.wrapping_add(i) & (SLOTS - 1)))
    }

    /// The offsets of `t`, if translated (any context, under RCU).
    fn find(&self, t: &Tuple, guard: &rcu::Guard) -> Option<Offsets> {
        if self.is_empty() {
            return None;
        }
        self.probes(t)
            .find_map(|s| s.get(guard).filter(|e| e.tuple == *t).map(|e| e.off))
    }

    /// Translates `t` by `off` from now on (process context); zero
    /// offsets translate nothing (an entry of an earlier connection of the
    /// tuple that is not pruned yet goes). `Err`: no room among its slots,
    /// or no memory.
    pub(crate) fn insert(&self, t: Tuple, off: Offsets) -> Result {
        if off.is_zero() && self.is_empty() {
            return Ok(());
        }
        let _w = self.lock.lock();
        let guard = rcu::Guard::new();
        let mut free = None;
        for s in self.probes(&t) {
            match s.get(&guard) {
                Some(e) if e.tuple == t => {
                    free = Some((s, false));
                    break;
                }
                Some(_) => {}
                None if free.is_none() => free = Some((s, true)),
                None => {}
            }
        }
        drop(guard);
        if off.is_zero() {
            if let Some((slot, false)) = free {
                // `None` allocates nothing.
                let _ = slot.replace(None, GFP_KERNEL);
                self.count.fetch_sub(1, Relaxed);
            }
            return Ok(());
        }
        let (slot, new) = free.ok_or(ENOSPC)?;
        let e = Entry {
            tuple: t,
            off,
            created_ms: now_ms(),
        };
        slot.replace(Some(e), GFP_KERNEL)?;
        if new {
            self.count.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Forgets the connections TCP no longer has (no socket, or a new
    /// handshake on the tuple), but for those entered in the last
    /// [`YOUNG_MS`] (process context; the back-end's work). Returns
    /// whether any is left.
    pub(crate) fn prune(&self, net: &Net) -> bool {
        if self.is_empty() {
            return false;
        }
        let _w = self.lock.lock();
        let now = now_ms();
        for s in self.slots.iter() {
            let seen = {
                let guard = rcu::Guard::new();
                s.get(&guard).map(|e| (e.tuple, e.created_ms))
            };
            let Some((tuple, created)) = seen else {
                continue;
            };
            if now.saturating_sub(created) < YOUNG_MS {
                continue;
            }
            match tcp::established(net, &super::replay::conn_of(&tuple), false) {
                Established::Full(_) | Established::TimeWait => {}
                Established::None | Established::Request(_) => {
                    // `None` allocates nothing.
                    let _ = s.replace(None, GFP_KERNEL);
                    self.count.fetch_sub(1, Relaxed);
                }
            }
        }
        !self.is_empty()
    }

    /// The client's packet of connection `t`, or an ICMP error about this
    /// host's packet to the client (`icmp`), arrived from the front-end
    /// (softirq, under RCU): translated if `t` is translated here, in the
    /// whole IP packet that `pkt` makes writable (`None`: it could not).
    pub(crate) fn inbound<'p>(
        &self,
        t: &Tuple,
        icmp: bool,
        pkt: impl FnOnce() -> Option<&'p mut [u8]>,
        guard: &rcu::Guard,
    ) -> Inbound {
        let Some(off) = self.find(t, guard) else {
            return Inbound::Untouched;
        };
        let r = pkt().map(|p| {
            if icmp {
                xlate::translate_icmp_error(p, off)
            } else {
                xlate::translate_packet(p, Dir::ToBackend, off, xlate::CsumMode::Full)
            }
        });
        match r {
            Some(Ok(_)) => {
                self.xlated_in.fetch_add(1, Relaxed);
                Inbound::Translated
            }
            _ => {
                self.drop.fetch_add(1, Relaxed);
                Inbound::Drop
            }
        }
    }

    /// The LOCAL_OUT hook (softirq or process context, under RCU): this
    /// host's packet of a translated connection is translated for the
    /// client, or dropped (counted) when its header is malformed or cannot
    /// be made writable.
    pub(crate) fn out(&self, pkt: &mut OutPacket<'_>, guard: &rcu::Guard) -> OutVerdict {
        if self.is_empty() {
            return OutVerdict::Accept;
        }
        let Some(seg) = pkt.tcp_seg() else {
            return OutVerdict::Accept;
        };
        // This host's packet: from the service to the client.
        let t = Tuple {
            family: match pkt.family() {
                Family::Inet => WireFamily::V4,
                Family::Inet6 => WireFamily::V6,
            },
            client: seg.daddr,
            server: seg.saddr,
            client_port: seg.dport,
            server_port: seg.sport,
        };
        let Some(off) = self.find(&t, guard) else {
            return OutVerdict::Accept;
        };
        match pkt.rewrite_tcp(&seg, |hdr, mode| {
            xlate::translate(hdr, Dir::ToClient, off, mode)
        }) {
            Some(Ok(_)) => {
                self.xlated_out.fetch_add(1, Relaxed);
                OutVerdict::Accept
            }
            _ => {
                self.drop.fetch_add(1, Relaxed);
                OutVerdict::Drop
            }
        }
    }
}
