// SPDX-License-Identifier: GPL-2.0

//! The back-end's replay of a handed-off connection (design memo, section
//! 3 (i)): the connection the front-end accepted is made again in this
//! host's own TCP, as an ordinary child of the local listener, with the
//! front-end's sequence numbers and timestamp clock, its request already
//! received. The unmodified application's `accept()` returns it.
//!
//! With node-set's replay offsets not 0 ([`Replays::set_offsets`]), the
//! server side gets the front-end's ISN and clock moved by them instead,
//! the injected ACKs are translated into that space, and the connection is
//! entered in [`Replays::xlate`] (`super::translated`), which translates
//! its packets both ways: the path for the cases that cannot be aligned,
//! forced so that it runs and is tested.
//!
//! # How
//!
//! [`Replays::start`] checks the listener, enters the connection in the
//! namespace's table and injects the client's SYN and its ACKs carrying the
//! request ([`crate::logic::segment::Plan`]) as received on the device of
//! the route towards the client, in order, on one CPU. TCP answers the SYN
//! with a SYN-ACK from a request socket; the LOCAL_OUT hook
//! ([`Replays::out`]) checks what the request socket negotiated against the
//! front-end's options, writes the front-end's ISN and timestamp offset into
//! it, and drops the SYN-ACK (the client had the front-end's). The ACKs
//! then complete the handshake: `tcp_create_openreq_child` copies that
//! state into the child, which is queued for `accept()` with the request.
//! Until the child exists, every packet TCP sends for the connection (an
//! RST, a SYN-ACK with a SYN cookie, a retransmission) is dropped at
//! LOCAL_OUT, so none reaches the client, and anything but the expected
//! SYN-ACK fails the replay. [`Replays::poll`] reports the outcome.
//!
//! # API for the control channel
//!
//! On a HANDOFF_REQ from peer `peer`, in process context (the channel's
//! work item; no spinlock held, may sleep: it allocates with `GFP_KERNEL`
//! and takes the namespace's hook mutex the first time):
//!
//! ```ignore
//! let replays = NetState::replays(net)?;          // Arc<Replays>
//! match replays.start(net, peer, &req, NetState::replay_hooks_on) {
//!     Err(reason) => /* HANDOFF_NACK with reason (frame::nack) */,
//!     Ok(()) => /* poll later */,
//! }
//! ```
//!
//! then, from the same or a later run of the work item (process context,
//! any CPU), [`Replays::poll`] with the same peer and the request's tuple
//! (`replays.poll(net, peer, &req.tuple)`):
//!
//! - [`Poll::Pending`]: not decided yet; poll again (the replay's segments
//!   are usually processed before `start` returns, in the softirq that
//!   `local_bh_enable` runs, but may be deferred to `ksoftirqd`);
//! - [`Poll::Adopted`]: the child exists, established, with the whole
//!   request received: send HANDOFF_ACK (`backend_isn`, `state`); the
//!   entry is gone;
//! - [`Poll::Failed`]: send HANDOFF_NACK with the reason; the entry stays
//!   until its deadline, dropping what TCP still sends for the tuple;
//! - [`Poll::Unknown`]: no such replay (polled twice after `Adopted`, or
//!   expired and pruned).
//!
//! A replay not decided [`TIMEOUT_MS`] after its start fails with
//! [`nack::NO_RESOURCES`] (its request socket, if any, is dropped). No lock
//! of ours is held when `start` or `poll` return; both take only the
//! table's spinlock (softirqs disabled), briefly, never while calling into
//! TCP.

use super::translated::{Translated, XlateStats};
use crate::logic::{
    frame::{nack, Family as WireFamily, HandoffReq, Tuple},
    segment::{flags, Plan, TimeWait, HDR_MAX},
    xlate::{self, CsumMode, Dir, Offsets},
};
use crate::sys::{
    conntrack,
    lock::{new_spinlock_bh, SpinLockBh},
    net::Net,
    netfilter::{now_ms, OutPacket, OutSock, OutVerdict, ReqInfo},
    skb::Family,
    tcp::{self, Adopt, Conn, Established, OwnedSkb, Route, TcpState, TCP_ESTABLISHED},
};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use kernel::prelude::*;

/// At most this many replays under way per namespace.
pub(crate) const MAX_REPLAYS: usize = 64;
/// At most this many stale request sockets are dropped per start.
const PRUNE_MAX: usize = 4;
/// A replay not decided after this long fails; a failed one's entry goes
/// after this long.
pub(crate) const TIMEOUT_MS: u64 = 3000;

/// What [`Replays::poll`] found.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Poll {
    /// Under way.
    Pending,
    /// The child exists with the request: the back-end's state.
    Adopted(Adopted),
    /// Failed, with a [`nack`] reason.
    Failed(u32),
    /// No replay of that tuple.
    Unknown,
}

/// An adopted connection, as its child socket is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Adopted {
    /// The back-end's initial sequence number (the front-end's, forced).
    pub(crate) backend_isn: u32,
    /// The child's TCP state (`TCP_*`).
    pub(crate) state: u8,
    /// The child's state as read at adoption.
    pub(crate) tcp: TcpState,
}

/// Counters of a namespace's replays.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReplayStats {
    /// Replays started (segments injected).
    pub(crate) started: u64,
    /// Adopted.
    pub(crate) adopted: u64,
    /// Failed (any reason).
    pub(crate) failed: u64,
    /// Packets dropped at LOCAL_OUT for a tuple under replay (the
    /// SYN-ACKs among them).
    pub(crate) dropped: u64,
    /// RSTs among them.
    pub(crate) rst_dropped: u64,
    /// `TIME_WAIT` sockets of the tuple that TCP's rule let the SYN reopen.
    pub(crate) tw_reopened: u64,
    /// Replays refused for a `TIME_WAIT` socket that TCP would keep.
    pub(crate) tw_refused: u64,
    /// The translated connections'.
    pub(crate) xlate: XlateStats,
}

/// Where a replay is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Segments injected; the SYN-ACK not seen yet.
    SynSent,
    /// The request socket took the front-end's state; the child is coming.
    Fixed,
    /// Failed with a reason.
    Failed(u32),
}

/// One replay.
#[derive(Clone, Copy, Debug)]
struct Entry {
    conn: Conn,
    peer: u32,
    phase: Phase,
    /// Set before entry: what the request socket must have negotiated.
    sack: bool,
    tstamp: bool,
    wscale: Option<(u8, u8)>,
    ecn: bool,
    /// The front-end's state to write.
    server_isn: u32,
    fe_tsval_now: u32,
    rtt_us: u32,
    /// The child's `rcv_nxt` once the whole request arrived.
    rcv_nxt: u32,
    deadline_ms: u64,
}

/// The namespace's replays.
#[pin_data]
pub(crate) struct Replays {
    /// [`MAX_REPLAYS`] slots.
    #[pin]
    table: SpinLockBh<KVec<Option<Entry>>>,
    /// Entries in the table: the hook looks no further when 0.
    active: AtomicUsize,
    started: AtomicU64,
    adopted: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    rst_dropped: AtomicU64,
    tw_reopened: AtomicU64,
    tw_refused: AtomicU64,
    /// What the next replays add to the front-end's ISN (high 32 bits)
    /// and timestamp clock (low 32 bits): node-set's replay offsets.
    offsets: AtomicU64,
    /// The connections replayed with offsets, translated.
    #[pin]
    pub(crate) xlate: Translated,
}

pub(crate) fn conn_of(t: &Tuple) -> Conn {
    Conn {
        family: match t.family {
            WireFamily::V4 => Family::Inet,
            WireFamily::V6 => Family::Inet6,
        },
        local: t.server,
        local_port: t.server_port,
        remote: t.client,
        remote_port: t.client_port,
    }
}

/// What a request socket negotiated, against what the entry expects.
fn matches(e: &Entry, i: &ReqInfo) -> bool {
    let ws = match (e.wscale, i.wscale_ok) {
        (None, false) => true,
        (Some((client, server)), true) => i.snd_wscale == client && i.rcv_wscale == server,
        _ => false,
    };
    ws && i.sack_ok == e.sack && i.tstamp_ok == e.tstamp && i.ecn_ok == e.ecn
}

impl Replays {
    /// An empty table (process context).
    pub(crate) fn new() -> Result<impl PinInit<Self>> {
        let table = KVec::from_elem(None, MAX_REPLAYS, GFP_KERNEL)?;
        let xlate = Translated::new()?;
        Ok(pin_init!(Replays {
            table <- new_spinlock_bh!(table, "sockgroup_replay"),
            active: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            adopted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rst_dropped: AtomicU64::new(0),
            tw_reopened: AtomicU64::new(0),
            tw_refused: AtomicU64::new(0),
            offsets: AtomicU64::new(0),
            xlate <- xlate,
        }))
    }

    /// What the replays started from now on add to the front-end's ISN
    /// and timestamp clock (0, 0: aligned, nothing translated).
    pub(crate) fn set_offsets(&self, off: Offsets) {
        let v = (u64::from(off.seq) << 32) | u64::from(off.ts);
        self.offsets.store(v, Ordering::Relaxed);
    }

    fn offsets(&self) -> Offsets {
        let v = self.offsets.load(Ordering::Relaxed);
        Offsets {
            seq: (v >> 32) as u32,
            ts: v as u32,
        }
    }

    /// The counters.
    pub(crate) fn stats(&self) -> ReplayStats {
        ReplayStats {
            started: self.started.load(Ordering::Relaxed),
            adopted: self.adopted.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            rst_dropped: self.rst_dropped.load(Ordering::Relaxed),
            tw_reopened: self.tw_reopened.load(Ordering::Relaxed),
            tw_refused: self.tw_refused.load(Ordering::Relaxed),
            xlate: self.xlate.stats(),
        }
    }

    /// Starts the replay of `req`, handed off by `peer`, into `net`'s TCP
    /// (process context; see the module's documentation). `Err` is a
    /// [`nack`] reason, and then nothing was injected nor entered.
    ///
    /// `turn_on` registers the namespace's LOCAL_OUT hooks (idempotent;
    /// `crate::netns` passes `Pernet::set_replay`).
    pub(crate) fn start(
        &self,
        net: &Net,
        peer: u32,
        req: &HandoffReq<'_>,
        turn_on: impl FnOnce(&Net) -> Result,
    ) -> Result<(), u32> {
        let plan = Plan::new(req).map_err(|_| nack::INVALID)?;
        let conn = conn_of(&req.tuple);
        let route = Route::output(net, conn.family, &conn.remote).map_err(|_| nack::REFUSED)?;
        let load = tcp::listener(net, &conn, route.ifindex()).ok_or(nack::NO_LISTENER)?;
        // TCP drops a SYN when the accept queue is full and answers with a
        // cookie when the SYN queue is (or every SYN with `tcp_syncookies`
        // 2): the replay needs a request socket and room for its child.
        if load.accept_queue >= load.max_backlog
            || load.handshakes >= load.max_backlog
            || net.tcp_syncookies() == 2
        {
            return Err(nack::NO_RESOURCES);
        }
        // The back-end's server side: the front-end's ISN and clock, moved
        // by the offsets (0: aligned); the client's ACKs say it so.
        let off = self.offsets();
        let pkts = build(&plan, conn.family, off).map_err(|_| nack::NO_RESOURCES)?;
        turn_on(net).map_err(|_| nack::NO_RESOURCES)?;
        self.admit_tuple(net, &conn, &plan)?;
        let entry = Entry {
            conn,
            peer,
            phase: Phase::SynSent,
            sack: req.sack_ok,
            tstamp: req.timestamps.is_some(),
            wscale: req.wscale.map(|w| (w.client, w.server)),
            ecn: req.ecn,
            server_isn: req.server_isn.wrapping_add(off.seq),
            fe_tsval_now: req
                .timestamps
                .map_or(0, |t| t.fe_tsval_now.wrapping_add(off.ts)),
            rtt_us: req.rtt_us,
            rcv_nxt: plan.rcv_nxt(),
            deadline_ms: now_ms() + TIMEOUT_MS,
        };
        let mut stale = [None; PRUNE_MAX];
        let r = self.enter(entry, &mut stale);
        // Replays that nobody polled: their request sockets go too.
        for c in stale.iter().flatten() {
            tcp::established(net, c, true);
        }
        r?;
        // Before the first segment: the child's first ACK leaves before
        // the adoption is polled.
        if self.xlate.insert(req.tuple, off).is_err() {
            self.remove(&conn);
            return Err(nack::NO_RESOURCES);
        }
        self.started.fetch_add(1, Ordering::Relaxed);
        // Marked: a hook of this node that dispatches or holds the service
        // lets them through to TCP.
        route.inject(pkts, super::dispatcher::ADOPTED_MARK);
        Ok(())
    }

    /// Whether the tuple `conn` is free for the plan's SYN: nothing in the
    /// established hash, or a `TIME_WAIT` socket that TCP would let the
    /// SYN reopen (`tcp_timewait_state_process`: not `FIN_WAIT2`, not
    /// rejected by PAWS, a sequence number after the old connection's or
    /// a newer timestamp), which then goes, as TCP frees it for such a SYN.
    /// `Err(REFUSED)` otherwise (a request or full socket, or a
    /// `TIME_WAIT` socket TCP keeps: counted `tw_refused`).
    fn admit_tuple(&self, net: &Net, conn: &Conn, plan: &Plan<'_>) -> Result<(), u32> {
        if let Established::None = tcp::established(net, conn, false) {
            return Ok(());
        }
        let syn = plan.syn();
        let tsval = syn.opts.ts.map(|(v, _)| v);
        let reopened = tcp::timewait_reopen(net, conn, |tw| {
            let rule = TimeWait {
                fin_wait2: tw.fin_wait2,
                rcv_nxt: tw.rcv_nxt,
                ts_recent: tw.ts_recent,
                ts_recent_stamp: tw.ts_recent_stamp,
            };
            rule.accepts_syn(syn.seq, tsval, tw.now_s)
        });
        match reopened {
            Some(true) => {
                self.tw_reopened.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Some(false) => {
                self.tw_refused.fetch_add(1, Ordering::Relaxed);
                Err(nack::REFUSED)
            }
            // A request or full socket; or the hash changed since the
            // first look (nothing there now: the next request will do).
            None => Err(nack::REFUSED),
        }
    }

    /// The outcome of the replay of `tuple` so far (process context; see
    /// the module's documentation).
    pub(crate) fn poll(&self, net: &Net, peer: u32, tuple: &Tuple) -> Poll {
        let conn = conn_of(tuple);
        let Some(e) = self.find(&conn).filter(|e| e.peer == peer) else {
            return Poll::Unknown;
        };
        if let Phase::Failed(r) = e.phase {
            return Poll::Failed(r);
        }
        let expired = now_ms() >= e.deadline_ms;
        match tcp::established(net, &conn, expired) {
            Established::Full(s) if e.phase == Phase::Fixed && s.rcv_nxt == e.rcv_nxt => {
                self.remove(&conn);
                self.adopted.fetch_add(1, Ordering::Relaxed);
                Poll::Adopted(Adopted {
                    backend_isn: e.server_isn,
                    state: s.state,
                    tcp: s,
                })
            }
            _ if expired => {
                self.fail(&conn, nack::NO_RESOURCES);
                Poll::Failed(nack::NO_RESOURCES)
            }
            _ => Poll::Pending,
        }
    }

    /// Enters `entry`, after pruning the entries long expired (the
    /// connections of those that were not decided go into `stale`).
    fn enter(&self, entry: Entry, stale: &mut [Option<Conn>; PRUNE_MAX]) -> Result<(), u32> {
        let mut t = self.table.lock();
        let now = now_ms();
        let mut n = 0;
        for slot in t.iter_mut() {
            let Some(e) = slot else { continue };
            let failed = matches!(e.phase, Phase::Failed(_));
            if (failed && e.deadline_ms <= now) || e.deadline_ms + TIMEOUT_MS <= now {
                if !failed && n < PRUNE_MAX {
                    stale[n] = Some(e.conn);
                    n += 1;
                }
                *slot = None;
            }
        }
        if t.iter().flatten().any(|e| e.conn == entry.conn) {
            return Err(nack::REFUSED);
        }
        let Some(free) = t.iter_mut().find(|s| s.is_none()) else {
            return Err(nack::NO_RESOURCES);
        };
        *free = Some(entry);
        self.active
            .store(t.iter().flatten().count(), Ordering::Release);
        Ok(())
    }

    fn find(&self, conn: &Conn) -> Option<Entry> {
        self.table
            .lock()
            .iter()
            .flatten()
            .find(|e| e.conn == *conn)
            .copied()
    }

    fn remove(&self, conn: &Conn) {
        let mut t = self.table.lock();
        for slot in t.iter_mut() {
            if slot.is_some_and(|e| e.conn == *conn) {
                *slot = None;
            }
        }
        self.active
            .store(t.iter().flatten().count(), Ordering::Release);
    }

    /// Fails the entry of `conn` (if not failed yet): it stays until
    /// [`TIMEOUT_MS`] from now, dropping what TCP sends for it.
    fn fail(&self, conn: &Conn, reason: u32) {
        let mut t = self.table.lock();
        if let Some(e) = t.iter_mut().flatten().find(|e| e.conn == *conn) {
            if !matches!(e.phase, Phase::Failed(_)) {
                e.phase = Phase::Failed(reason);
                e.deadline_ms = now_ms() + TIMEOUT_MS;
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Drops what TCP sends for `conn` from now on, for [`TIMEOUT_MS`]
    /// (the reset of a connection killed after its adoption; process
    /// context): an entry failed at once takes its place.
    pub(crate) fn silence(&self, conn: Conn) {
        let entry = Entry {
            conn,
            peer: 0,
            phase: Phase::Failed(nack::REFUSED),
            sack: false,
            tstamp: false,
            wscale: None,
            ecn: false,
            server_isn: 0,
            fe_tsval_now: 0,
            rtt_us: 0,
            rcv_nxt: 0,
            deadline_ms: now_ms() + TIMEOUT_MS,
        };
        let mut t = self.table.lock();
        let slot = match t.iter().position(|s| s.is_some_and(|e| e.conn == conn)) {
            Some(i) => Some(i),
            None => t.iter().position(|s| s.is_none()),
        };
        // Without a free slot (64 replays under way) the reset may leave.
        if let Some(i) = slot {
            t[i] = Some(entry);
        }
        self.active
            .store(t.iter().flatten().count(), Ordering::Release);
    }

    /// The LOCAL_OUT hook of `net` (softirq or process context, under
    /// RCU): see the module's documentation.
    pub(crate) fn out(&self, net: &Net, pkt: &OutPacket<'_>) -> OutVerdict {
        if self.active.load(Ordering::Acquire) == 0 {
            return OutVerdict::Accept;
        }
        let Some(seg) = pkt.tcp_seg() else {
            return OutVerdict::Accept;
        };
        // Our packet: from the service to the client.
        let conn = Conn {
            family: pkt.family(),
            local: seg.saddr,
            local_port: seg.sport,
            remote: seg.daddr,
            remote_port: seg.dport,
        };
        let sock = pkt.sock();
        let rst = seg.flags & flags::RST != 0;
        let synack = seg.flags & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK;
        // What to do once the table's lock is released.
        let mut adopt = None;
        let mut failed = false;
        {
            let mut t = self.table.lock();
            let Some(e) = t.iter_mut().flatten().find(|e| e.conn == conn) else {
                return OutVerdict::Accept;
            };
            let was_failed = matches!(e.phase, Phase::Failed(_));
            match (e.phase, &sock) {
                (Phase::SynSent, OutSock::Request(req)) if synack && !rst => {
                    if matches(e, &req.info()) {
                        e.phase = Phase::Fixed;
                        adopt = Some(adopt_of(e));
                    } else {
                        e.phase = Phase::Failed(nack::REFUSED);
                    }
                }
                // The child's own packets (its ACK of the request).
                (Phase::Fixed, OutSock::Full(TCP_ESTABLISHED)) if !rst => {
                    return OutVerdict::Accept;
                }
                // A SYN-ACK again, or the request socket's ACK: dropped.
                (Phase::Fixed, OutSock::Request(_)) if !rst => {}
                (Phase::Failed(_), _) => {}
                // A SYN-ACK with a cookie (no request socket), an RST, or
                // any other packet before the child: the replay failed.
                _ => e.phase = Phase::Failed(nack::REFUSED),
            }
            if !was_failed && matches!(e.phase, Phase::Failed(_)) {
                failed = true;
                e.deadline_ms = now_ms() + TIMEOUT_MS;
            }
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if rst {
            self.rst_dropped.fetch_add(1, Ordering::Relaxed);
        }
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let OutSock::Request(req) = sock {
            if let Some(a) = adopt {
                req.adopt(&a);
                // Conntrack saw the SYN (its entry waits for a SYN-ACK it
                // will never see, and would call the connection's packets
                // invalid): the entry goes, and the client's next segment,
                // the replay's ACK, makes a new one, established
                // (`nf_conntrack_tcp_loose`), which then follows TCP.
                conntrack::forget(net, &conn);
            } else if failed {
                // No child may come of it; no SYN-ACK is sent again.
                req.unlink();
            }
        }
        OutVerdict::Drop
    }
}

/// The front-end's state for `e`'s request socket, now.
fn adopt_of(e: &Entry) -> Adopt {
    let (ms, us) = tcp::tcp_clock();
    Adopt {
        snt_isn: e.server_isn,
        // This host's TSvals continue the front-end's clock.
        ts_off: e.fe_tsval_now.wrapping_sub(ms),
        // The first RTT sample (`tcp_synack_rtt_meas`) is the front-end's.
        snt_synack_us: if e.rtt_us == 0 {
            0
        } else {
            us.saturating_sub(u64::from(e.rtt_us))
        },
    }
}

/// The plan's packets, built into owned packets (process context), their
/// acknowledgements and echoed timestamps in the back-end's space moved by
/// `off` from the front-end's.
fn build(plan: &Plan<'_>, family: Family, off: Offsets) -> Result<KVec<OwnedSkb>> {
    let n = 1 + plan.acks();
    let mut pkts = KVec::with_capacity(n, GFP_KERNEL)?;
    let mut buf = KVec::from_elem(0u8, HDR_MAX + plan.chunk(), GFP_KERNEL)?;
    for i in 0..n {
        let seg = if i == 0 { plan.syn() } else { plan.ack(i - 1) };
        let len = seg.build(&mut buf).map_err(|_| EINVAL)?;
        if !off.is_zero() {
            xlate::translate_packet(&mut buf[..len], Dir::ToBackend, off, CsumMode::Full)
                .map_err(|_| EINVAL)?;
        }
        pkts.push(OwnedSkb::new_ip(family, &buf[..len])?, GFP_KERNEL)?;
    }
    Ok(pkts)
}
