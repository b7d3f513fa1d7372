// SPDX-License-Identifier: GPL-2.0

//! The back-end of the handoff (issue 12): a HANDOFF_REQ from a peer is
//! replayed into this node's TCP ([`super::replay`]) and answered with
//! HANDOFF_ACK (the connection is adopted: the application's `accept()`
//! returns it with its request) or HANDOFF_NACK; an adopted connection is
//! then watched until it ends, and its front-end is told with TERM (the
//! front-end forwards the client's segments until then, and for a linger
//! after).
//!
//! The channels hand the requests over under RCU (`Cluster::on_incoming`
//! cannot sleep): they are queued here, and this work item replays them in
//! process context (allocating with `GFP_KERNEL`), polls them every
//! [`POLL_MS`] while any is under way, and looks at the adopted connections
//! every [`WATCH_MS`], at most [`WATCH_BUDGET`] of them per run.
//!
//! A front-end that gave up waiting for the answer (its hold-timeout
//! passed) serves the connection itself and withdraws the handoff (TERM,
//! reason TIMEOUT): the request is dropped if not replayed yet, the replay
//! is dropped when it ends, an adopted connection is killed without a
//! packet to the client (`tcp_abort`, its reset dropped at LOCAL_OUT);
//! counted `aborted`.
//!
//! The channel to a front-end goes down (or a new session replaces it):
//! a TERM it sent may be lost with it, and the front-end falls back on the
//! handoffs still waiting for their answer. Its requests not replayed yet
//! are dropped, its replays under way are dropped when they end, and each
//! connection adopted from it that it never confirmed is orphaned: killed
//! as on TERM (`aborted`) unless confirmed within
//! `membership::orphan_wait_ms` of the node's heartbeat interval (5 s at
//! the default interval).
//! Confirmed: the connection received a segment after its adoption, which
//! only a forwarding delivers (the front-end's once it acted on the
//! HANDOFF_ACK or verification, or, for a dispatched service, the
//! dispatcher that took the connection over from it), or a dispatcher
//! that took it over said so (CONN_SYNC naming this node as its back-end:
//! [`reown`], counted `reowned`; its TERM goes to that dispatcher from
//! then on). Such a connection lives on here. A front-end that fell back
//! forwards nothing: the copy adopted here is killed once the delay
//! passed. The delay covers a takeover whose dispatcher saw the departure
//! a heartbeat or so apart from this node, and the client's next segment
//! after it.
//!
//! A connection ends, for TERM, when TCP's established hash holds nothing
//! for its 4-tuple, or a `TIME_WAIT` socket: both sides closed (`FIN`), or
//! it was reset (`RST`: it went from a state in which both sides had not
//! closed yet).

use super::channel::{OutMsg, ReqIn};
use super::replay::{conn_of, Poll, MAX_REPLAYS};
use crate::logic::frame::{nack, term, HandoffAck, HandoffNack, Term, Tuple};
use crate::logic::membership::{orphan_wait_ms, DEFAULT_HB_INTERVAL_MS};
use crate::logic::segment::{self, ProbeFields};
use crate::netns::NetState;
use crate::sys::{
    lock::{new_spinlock_bh, SpinLockBh},
    net::Net,
    netfilter::now_ms,
    rcu,
    socket::Namespace,
    tcp::{self, Conn, Established, TCP_CLOSING, TCP_LAST_ACK},
    work::{Run, Worked},
};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{alloc::KVVec, new_mutex, prelude::*, sync::Mutex};

/// At most this many adopted connections are watched for TERM; beyond it
/// a connection is still adopted, and its front-end forgets it when its
/// client goes quiet.
pub(crate) const ADOPTED_MAX: usize = 65536;
/// How often replays under way are polled.
const POLL_MS: u32 = 5;
/// How often the adopted connections are looked at.
const WATCH_MS: u32 = 200;
/// At most this many adopted connections looked at per run.
const WATCH_BUDGET: usize = 1024;
/// A taken-over connection whose retransmission or zero window probe is
/// still backed off this long after the revert ([`Backend::path_back`])
/// has it reverted again, at most [`AGAIN_TIMES`] times: the segment the
/// revert sent may have drawn no answer yet. A client answers a segment
/// without data outside its window (a zero window probe: the sequence
/// number below its next) at most every `tcp_invalid_ratelimit` (500 ms),
/// and may have answered one of the probes lost with the dispatcher just
/// before; and a dispatcher that saw the departure later than the new
/// owner (up to a heartbeat or so) still sends the client's answer to the
/// one that left.
const AGAIN_MS: u64 = 600;
/// How many times a revert is made again.
const AGAIN_TIMES: u8 = 3;
/// The longest zero window probe: the longest headers, one byte.
const PROBE_MAX: usize = segment::HDR_MAX + 1;

/// Requests handed over by the channels.
struct Queue {
    items: KVec<(u32, ReqIn)>,
    /// Handoffs their front-ends withdrew.
    aborts: KVec<(u32, Tuple)>,
    /// Front-ends whose channel went down, with how many of `items` were
    /// queued before (those of the peer are dropped, not later ones).
    downs: KVec<(u32, usize)>,
    /// Adopted connections a dispatcher took over: (it, the tuple).
    reowns: KVec<(u32, Tuple)>,
    /// Adopted connections this node took over as their dispatcher.
    taken: KVec<Tuple>,
    closed: bool,
}

/// A replay under way.
struct Pending {
    peer: u32,
    tuple: Tuple,
    /// Withdrawn by its front-end: dropped when it ends.
    aborted: bool,
}

/// An adopted connection.
#[derive(Clone, Copy)]
struct Watched {
    peer: u32,
    tuple: Tuple,
    conn: Conn,
    /// Its TCP state when last seen.
    state: u8,
    /// The segments it had received when adopted (`segs_in`): any more
    /// came from the front-end's forwarding.
    segs_in: u32,
    /// When its front-end's channel went down before it confirmed it
    /// (0: it did not): killed [`Backend::orphan_ms`] later unless
    /// confirmed.
    orphaned_ms: u64,
}

/// What the work item keeps.
struct State {
    /// Slots: `None` once answered (until [`compact`]).
    pending: KVVec<Option<Pending>>,
    /// Slots: `None` once ended (until [`compact`]).
    adopted: KVVec<Option<Watched>>,
    /// Where the next look at the adopted ones starts.
    cursor: usize,
    /// The adopted ones (`Some` slots).
    watched: usize,
    next_watch_ms: u64,
    /// Translated connections may be left (`super::translated`): pruned
    /// with the watch.
    xlating: bool,
    /// Taken-over connections to revert again: the tuple, when (ms), how
    /// many times more ([`AGAIN_MS`]). Slots: `None` once done (until
    /// [`compact`]).
    again: KVVec<Option<(Tuple, u64, u8)>>,
    closed: bool,
}

/// The back-end's counters.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct BackendCounts {
    /// Connections adopted (HANDOFF_ACK sent).
    pub(crate) adopted: u64,
    /// Requests refused (HANDOFF_NACK sent), any reason.
    pub(crate) refused: u64,
    /// TERMs sent.
    pub(crate) terms: u64,
    /// Adopted connections watched now.
    pub(crate) watched: u64,
    /// Handoffs withdrawn by their front-ends (TERM, reason TIMEOUT), or
    /// dropped because their front-end's channel went down before it
    /// confirmed them: the request or the replay dropped, or the adopted
    /// connection killed.
    pub(crate) aborted: u64,
    /// Adopted connections a dispatcher took over from their front-end
    /// (its CONN_SYNC naming this node as the back-end): their TERM goes to
    /// it.
    pub(crate) reowned: u64,
    /// Adopted connections taken over (reowned, or by this node as their
    /// backup) whose retransmission timer, backed off while their
    /// dispatcher was gone, fired at once ([`tcp::retransmit_now`]).
    pub(crate) rto_reverted: u64,
    /// Of those, the ones probing a zero window: a probe carrying a byte
    /// sent besides ([`Backend::probe`]).
    pub(crate) rto_probed: u64,
}

/// The back-end of a namespace.
#[pin_data]
pub(crate) struct Backend {
    ns: Namespace,
    #[pin]
    queue: SpinLockBh<Queue>,
    #[pin]
    st: Mutex<State>,
    adopted: AtomicU64,
    refused: AtomicU64,
    terms: AtomicU64,
    aborted: AtomicU64,
    reowned: AtomicU64,
    rto_reverted: AtomicU64,
    rto_probed: AtomicU64,
    /// How long an adopted connection whose front-end's channel went down
    /// before it confirmed the connection waits for a confirmation before
    /// it is killed (`membership::orphan_wait_ms` of the node's heartbeat
    /// interval: [`set_interval`]).
    orphan_ms: AtomicU64,
}

impl Backend {
    /// Nothing under way (process context).
    pub(crate) fn new(net: &crate::sys::net::Net) -> impl PinInit<Worked<Backend>> {
        let ns = Namespace::new(net);
        Worked::new(pin_init!(Backend {
            ns,
            queue <- new_spinlock_bh!(
                Queue {
                    items: KVec::new(),
                    aborts: KVec::new(),
                    downs: KVec::new(),
                    reowns: KVec::new(),
                    taken: KVec::new(),
                    closed: false,
                },
                "sockgroup_backend_queue"
            ),
            st <- new_mutex!(
                State {
                    pending: KVVec::new(),
                    adopted: KVVec::new(),
                    cursor: 0,
                    watched: 0,
                    next_watch_ms: 0,
                    xlating: false,
                    again: KVVec::new(),
                    closed: false,
                },
                "sockgroup_backend"
            ),
            adopted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            terms: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            reowned: AtomicU64::new(0),
            rto_reverted: AtomicU64::new(0),
            rto_probed: AtomicU64::new(0),
            orphan_ms: AtomicU64::new(orphan_wait_ms(DEFAULT_HB_INTERVAL_MS)),
        }))
    }

    /// The counters.
    pub(crate) fn counts(&self) -> BackendCounts {
        BackendCounts {
            adopted: self.adopted.load(Relaxed),
            refused: self.refused.load(Relaxed),
            terms: self.terms.load(Relaxed),
            watched: self.st.lock().watched as u64,
            aborted: self.aborted.load(Relaxed),
            reowned: self.reowned.load(Relaxed),
            rto_reverted: self.rto_reverted.load(Relaxed),
            rto_probed: self.rto_probed.load(Relaxed),
        }
    }
}

/// Queues the checked request `req` from `peer` for replay (any context,
/// no sleep). `Err`: refused at once (too many under way, no memory, shut
/// down), with the reason for the NACK.
pub(crate) fn submit(w: &Worked<Backend>, peer: u32, req: ReqIn) -> Result<(), u32> {
    {
        let mut q = w.queue.lock();
        if q.closed || q.items.len() >= MAX_REPLAYS {
            return Err(nack::NO_RESOURCES);
        }
        q.items
            .push((peer, req), GFP_ATOMIC)
            .map_err(|_| nack::NO_RESOURCES)?;
    }
    w.kick();
    Ok(())
}

/// The front-end `peer` withdrew its handoff of `tuple` (any context, no
/// sleep): dropped or killed by the work (see the module's documentation).
/// Without memory, or beyond [`ADOPTED_MAX`] waiting, the withdrawal is
/// lost.
pub(crate) fn abort(w: &Worked<Backend>, peer: u32, tuple: Tuple) {
    {
        let mut q = w.queue.lock();
        if q.closed
            || q.aborts.len() >= ADOPTED_MAX
            || q.aborts.push((peer, tuple), GFP_ATOMIC).is_err()
        {
            return;
        }
    }
    w.kick();
}

/// The channel to front-end `peer` went down (any context, no sleep): what
/// it handed off and never confirmed is dropped or killed by the work (see
/// the module's documentation). Without memory it is kept.
pub(crate) fn peer_down(w: &Worked<Backend>, peer: u32) {
    {
        let mut q = w.queue.lock();
        let before = q.items.len();
        if q.closed || q.downs.push((peer, before), GFP_ATOMIC).is_err() {
            return;
        }
    }
    w.kick();
}

/// Dispatcher `peer` took over the connection of `tuple` adopted here
/// (any context, no sleep; its CONN_SYNC checked by
/// `Dispatch::on_reown`): the work makes it the connection's front-end.
/// If it is not watched here any more (its CONN_SYNC's placement is
/// forwarded: it was adopted here), it ended before the takeover (its
/// TERM went to the dispatcher that left): `peer` gets its TERM. Without
/// memory, or beyond [`ADOPTED_MAX`] waiting, it is lost (the client's
/// next segment still confirms the connection).
pub(crate) fn reown(w: &Worked<Backend>, peer: u32, tuple: Tuple) {
    {
        let mut q = w.queue.lock();
        if q.closed
            || q.reowns.len() >= ADOPTED_MAX
            || q.reowns.push((peer, tuple), GFP_ATOMIC).is_err()
        {
            return;
        }
    }
    w.kick();
}

/// This node, the backup of the connection of `tuple` that it serves as
/// its back-end, took it over (any context, no sleep): its client's
/// segments reach it again, and the work reverts a retransmission backoff
/// of it as at a [`reown`]. Without memory, or beyond [`ADOPTED_MAX`]
/// waiting, the connection waits out its backoff.
pub(crate) fn taken_here(w: &Worked<Backend>, tuple: Tuple) {
    {
        let mut q = w.queue.lock();
        if q.closed || q.taken.len() >= ADOPTED_MAX || q.taken.push(tuple, GFP_ATOMIC).is_err() {
            return;
        }
    }
    w.kick();
}

/// The node's heartbeat interval is `interval_ms` (node-set): the wait for
/// an orphaned connection's confirmation follows it.
pub(crate) fn set_interval(w: &Backend, interval_ms: u32) {
    w.orphan_ms.store(orphan_wait_ms(interval_ms), Relaxed);
}

/// Ends the back-end (the namespace's or the module's `pre_exit`): nothing
/// is replayed or sent any more; the work is cancelled.
pub(crate) fn shutdown(w: &Worked<Backend>) {
    w.queue.lock().closed = true;
    w.st.lock().closed = true;
    w.cancel_sync();
    let (items, aborts, downs, reowns, taken) = {
        let mut q = w.queue.lock();
        (
            core::mem::take(&mut q.items),
            core::mem::take(&mut q.aborts),
            core::mem::take(&mut q.downs),
            core::mem::take(&mut q.reowns),
            core::mem::take(&mut q.taken),
        )
    };
    drop((items, aborts, downs, reowns, taken));
    let mut st = w.st.lock();
    st.pending = KVVec::new();
    st.adopted = KVVec::new();
    st.watched = 0;
}

impl Backend {
    /// Acts on the withdrawn handoffs that no queued request took (see
    /// [`Self::start_queued`]): a replay under way is marked, an adopted
    /// connection killed and forgotten.
    fn abort_started(&self, st: &mut State, aborts: &[Option<(u32, Tuple)>]) {
        let net = self.ns.get();
        for &(peer, tuple) in aborts.iter().flatten() {
            let mine = |p: u32, t: &Tuple| p == peer && *t == tuple;
            if let Some(p) = st
                .pending
                .iter_mut()
                .flatten()
                .find(|p| mine(p.peer, &p.tuple))
            {
                p.aborted = true;
                continue;
            }
            let at = st
                .adopted
                .iter()
                .position(|w| w.is_some_and(|w| mine(w.peer, &w.tuple)));
            if let Some(at) = at {
                st.adopted[at] = None;
                st.watched -= 1;
                self.kill(net, &tuple);
            }
        }
    }

    /// The front-ends of `downs` went down: their replays under way are
    /// marked withdrawn, the connections adopted from them that they never
    /// confirmed are orphaned (the watch kills them unless confirmed in
    /// time; the confirmed ones stay watched). Their queued requests are
    /// dropped by [`Self::start_queued`].
    fn peers_down(&self, st: &mut State, downs: &[(u32, usize)]) {
        if downs.is_empty() {
            return;
        }
        let net = self.ns.get();
        let now = now_ms().max(1);
        let down = |peer: u32| downs.iter().any(|&(p, _)| p == peer);
        for p in st.pending.iter_mut().flatten() {
            if down(p.peer) {
                p.aborted = true;
            }
        }
        for slot in st.adopted.iter_mut() {
            let Some(w) = slot else { continue };
            if !down(w.peer) {
                continue;
            }
            // Not full any more (closed, reset, a new handshake): the
            // watch sends its TERM as for any other.
            if let Established::Full(s) = tcp::established(net, &w.conn, false) {
                if s.segs_in == w.segs_in && w.orphaned_ms == 0 {
                    w.orphaned_ms = now;
                }
            }
        }
    }

    /// The dispatchers of `reowns` took over those connections: each one
    /// adopted here is theirs from now on (confirmed, its TERM to them).
    /// One that was moved here but is neither watched nor replayed here
    /// any more ended before (with the client's segments that another
    /// dispatcher's association cache sent here while the owner was
    /// gone): its TERM, which went to the old owner, goes to the new one
    /// (`out`), which would otherwise list it until it idles out.
    fn reown_all(&self, st: &mut State, reowns: &[(u32, Tuple)], out: &mut KVec<(u32, OutMsg)>) {
        for &(peer, tuple) in reowns {
            let mut found = false;
            let mut back = false;
            for w in st.adopted.iter_mut().flatten() {
                if w.tuple != tuple {
                    continue;
                }
                found = true;
                // The owner's own sync (it is the backup too) changes
                // nothing.
                if w.peer != peer || w.orphaned_ms != 0 {
                    w.peer = peer;
                    w.orphaned_ms = 0;
                    self.reowned.fetch_add(1, Relaxed);
                    back = true;
                }
            }
            if back {
                self.path_back(st, &tuple);
            }
            found = found || st.pending.iter().flatten().any(|p| p.tuple == tuple);
            if !found {
                self.terms.fetch_add(1, Relaxed);
                let term = Term {
                    tuple,
                    reason: term::FIN,
                };
                // Without memory it is lost (the entry idles out there).
                let _ = out.push((peer, OutMsg::Term(term)), GFP_KERNEL);
            }
        }
    }

    /// The client's segments of the connection of `tuple` reach this node
    /// again (a dispatcher took it over): a retransmission backed off
    /// while they were lost goes now, not after the backoff (up to seconds
    /// more); counted `rto-reverted`. One still backed off [`AGAIN_MS`]
    /// later is reverted again ([`Backend::revert_again`]).
    fn path_back(&self, st: &mut State, tuple: &Tuple) {
        if self.revert(tuple) && st.again.len() < ADOPTED_MAX {
            // Without memory it is not made again.
            let _ = st
                .again
                .push(Some((*tuple, now_ms() + AGAIN_MS, AGAIN_TIMES)), GFP_KERNEL);
        }
    }

    /// The reverts due at `now` made again ([`AGAIN_MS`]): those still
    /// backed off stay for the next, up to [`AGAIN_TIMES`]. Returns in how
    /// many ms the next is due.
    fn revert_again(&self, st: &mut State, now: u64) -> Option<u64> {
        let mut next = None::<u64>;
        for slot in st.again.iter_mut() {
            let Some((tuple, due, left)) = *slot else {
                continue;
            };
            let due = if due > now {
                due
            } else if self.revert(&tuple) && left > 1 {
                *slot = Some((tuple, now + AGAIN_MS, left - 1));
                now + AGAIN_MS
            } else {
                // Answered since (not backed off), or the last time: done.
                *slot = None;
                continue;
            };
            let wait = due - now;
            next = Some(next.map_or(wait, |n| n.min(wait)));
        }
        compact(&mut st.again);
        next
    }

    /// Fires `tuple`'s backed-off retransmission or probe timer now
    /// ([`tcp::retransmit_now`]), counted `rto-reverted`: whether it was.
    /// A zero window probed gets a probe that carries a byte too.
    fn revert(&self, tuple: &Tuple) -> bool {
        let net = self.ns.get();
        let r = tcp::retransmit_now(net, &conn_of(tuple));
        if r.rearmed {
            self.rto_reverted.fetch_add(1, Relaxed);
        }
        if let Some(p) = r.probe {
            self.probe(net, tuple, &p);
        }
        r.rearmed
    }

    /// Sends the client of `tuple` a zero window probe that carries a
    /// byte ([`segment::dup_probe`]) from the socket's state `p`, counted
    /// `rto-probed`. TCP's own probe, which the revert fired, carries none:
    /// the client answers such a probe (an old segment without data) at
    /// most every 500 ms (`tcp_invalid_ratelimit`), and it may have just
    /// answered one of those lost with the dispatcher that left; it
    /// answers a duplicate byte at once, with its window. The probe leaves
    /// through LOCAL_OUT as the socket's packets do (translated there if
    /// the connection is). Best effort: without memory or a route, TCP's
    /// probes go on.
    fn probe(&self, net: &Net, tuple: &Tuple, p: &ProbeFields) {
        let seg = segment::dup_probe(
            segment::server_addrs(tuple),
            tuple.server_port,
            tuple.client_port,
            p,
        );
        let mut buf = [0u8; PROBE_MAX];
        let Ok(len) = seg.build(&mut buf) else {
            return;
        };
        let c = conn_of(tuple);
        if tcp::send_ip(net, c.family, &c.remote, &buf[..len]).is_ok() {
            self.rto_probed.fetch_add(1, Relaxed);
        }
    }

    /// Kills the adopted connection of `tuple` without a packet to the
    /// client (its reset dropped at LOCAL_OUT), counted `aborted`.
    fn kill(&self, net: &Net, tuple: &Tuple) {
        let conn = conn_of(tuple);
        if let Some(r) = NetState::replays(net) {
            r.silence(conn);
        }
        tcp::abort(net, &conn);
        self.aborted.fetch_add(1, Relaxed);
    }

    /// Starts the replays of the requests `items`, but those withdrawn
    /// by one of `aborts` (dropped, counted `aborted`; the withdrawal is
    /// taken out of `aborts`) and those queued before their front-end went
    /// down (`downs`: dropped, counted `aborted`); what to send goes to
    /// `out`.
    fn start_queued(
        &self,
        st: &mut State,
        items: KVec<(u32, ReqIn)>,
        aborts: &mut [Option<(u32, Tuple)>],
        downs: &[(u32, usize)],
        out: &mut KVec<(u32, OutMsg)>,
    ) {
        let net = self.ns.get();
        let replays = NetState::replays(net);
        for (i, (peer, req)) in items.into_iter().enumerate() {
            let tuple = req.head.tuple;
            if let Some(a) = aborts.iter_mut().find(|a| **a == Some((peer, tuple))) {
                *a = None;
                self.aborted.fetch_add(1, Relaxed);
                continue;
            }
            if downs.iter().any(|&(p, before)| p == peer && i < before) {
                self.aborted.fetch_add(1, Relaxed);
                continue;
            }
            // Room for the poll first: a replay started is always polled.
            let r = match (&replays, st.pending.reserve(1, GFP_KERNEL)) {
                (Some(r), Ok(())) => r.start(net, peer, &req.msg(), NetState::replay_hooks_on),
                _ => Err(nack::NO_RESOURCES),
            };
            match r {
                // Within the capacity reserved above: does not allocate or fail.
                Ok(()) => {
                    let p = Pending {
                        peer,
                        tuple,
                        aborted: false,
                    };
                    let _ = st.pending.push(Some(p), GFP_KERNEL);
                    st.xlating = true;
                    self.end_watched(st, &tuple, out);
                }
                Err(reason) => self.nack(out, peer, tuple, reason),
            }
        }
    }

    /// An earlier connection of `tuple` still watched ended: the replay
    /// of a new one started on its tuple (its `TIME_WAIT` socket went, as
    /// TCP lets a new SYN take it). Its TERM goes before the new one's
    /// answer, and the watch does not take the new one for it.
    fn end_watched(&self, st: &mut State, tuple: &Tuple, out: &mut KVec<(u32, OutMsg)>) {
        for slot in st.adopted.iter_mut() {
            let Some(w) = slot else { continue };
            if w.tuple != *tuple {
                continue;
            }
            self.terms.fetch_add(1, Relaxed);
            let term = Term {
                tuple: w.tuple,
                reason: term::FIN,
            };
            let _ = out.push((w.peer, OutMsg::Term(term)), GFP_KERNEL);
            *slot = None;
            st.watched -= 1;
        }
    }

    fn nack(&self, out: &mut KVec<(u32, OutMsg)>, peer: u32, tuple: Tuple, reason: u32) {
        self.refused.fetch_add(1, Relaxed);
        // Without memory the NACK is lost: the front-end times out and
        // serves the connection.
        let _ = out.push(
            (peer, OutMsg::Nack(HandoffNack { tuple, reason })),
            GFP_KERNEL,
        );
    }

    /// Polls the replays under way: adopted ones are answered with
    /// HANDOFF_ACK and watched, failed ones with HANDOFF_NACK.
    fn poll(&self, st: &mut State, out: &mut KVec<(u32, OutMsg)>) {
        let net = self.ns.get();
        let Some(replays) = NetState::replays(net) else {
            return;
        };
        for slot in st.pending.iter_mut() {
            let Some(p) = slot else { continue };
            let (peer, tuple, aborted) = (p.peer, p.tuple, p.aborted);
            let poll = replays.poll(net, peer, &tuple);
            if aborted && !matches!(poll, Poll::Pending) {
                // Withdrawn: nothing is answered; an adopted connection
                // is killed, a failed one needs nothing more.
                if matches!(poll, Poll::Adopted(_)) {
                    self.kill(net, &tuple);
                } else {
                    self.aborted.fetch_add(1, Relaxed);
                }
                *slot = None;
                continue;
            }
            let watch = match poll {
                Poll::Pending => continue,
                Poll::Adopted(a) => {
                    self.adopted.fetch_add(1, Relaxed);
                    let _ = out.push(
                        (
                            peer,
                            OutMsg::Ack(HandoffAck {
                                tuple,
                                backend_isn: a.backend_isn,
                                state: a.state,
                            }),
                        ),
                        GFP_KERNEL,
                    );
                    Some(Watched {
                        peer,
                        tuple,
                        conn: conn_of(&tuple),
                        state: a.state,
                        segs_in: a.tcp.segs_in,
                        orphaned_ms: 0,
                    })
                }
                Poll::Failed(reason) => {
                    self.nack(out, peer, tuple, reason);
                    None
                }
                Poll::Unknown => {
                    self.nack(out, peer, tuple, nack::NO_RESOURCES);
                    None
                }
            };
            *slot = None;
            if let Some(w) = watch {
                if st.watched < ADOPTED_MAX {
                    // Without memory it is not watched: no TERM.
                    if st.adopted.push(Some(w), GFP_KERNEL).is_ok() {
                        st.watched += 1;
                    }
                }
            }
        }
        compact(&mut st.pending);
    }

    /// Looks at up to [`WATCH_BUDGET`] adopted connections: those that
    /// ended are reported with TERM and forgotten, the orphaned ones
    /// confirmed since are not orphaned any more, those orphaned
    /// [`Backend::orphan_ms`] ago are killed and forgotten.
    fn watch(&self, st: &mut State, out: &mut KVec<(u32, OutMsg)>) {
        let net = self.ns.get();
        let now = now_ms();
        let n = st.adopted.len().min(WATCH_BUDGET);
        for _ in 0..n {
            if st.cursor >= st.adopted.len() {
                st.cursor = 0;
            }
            let at = st.cursor;
            st.cursor += 1;
            let Some(w) = st.adopted[at] else { continue };
            let reason = match tcp::established(net, &w.conn, false) {
                Established::Full(s) => {
                    let mut orphaned_ms = w.orphaned_ms;
                    if orphaned_ms != 0 && s.segs_in != w.segs_in {
                        orphaned_ms = 0;
                    } else if orphaned_ms != 0 && now >= orphaned_ms + self.orphan_ms.load(Relaxed)
                    {
                        st.adopted[at] = None;
                        st.watched -= 1;
                        self.kill(net, &w.tuple);
                        continue;
                    }
                    st.adopted[at] = Some(Watched {
                        state: s.state,
                        orphaned_ms,
                        ..w
                    });
                    continue;
                }
                // A new handshake on the tuple: this one ended.
                Established::Request(_) | Established::TimeWait => term::FIN,
                Established::None if matches!(w.state, TCP_LAST_ACK | TCP_CLOSING) => term::FIN,
                Established::None => term::RST,
            };
            self.terms.fetch_add(1, Relaxed);
            let _ = out.push(
                (
                    w.peer,
                    OutMsg::Term(Term {
                        tuple: w.tuple,
                        reason,
                    }),
                ),
                GFP_KERNEL,
            );
            st.adopted[at] = None;
            st.watched -= 1;
        }
        if st.watched < st.adopted.len() / 2 {
            compact(&mut st.adopted);
            st.cursor = 0;
        }
    }
}

/// Drops the `None` slots of `v` (into a new vector; without memory `v`
/// stays as it is).
fn compact<T>(v: &mut KVVec<Option<T>>) {
    let live = v.iter().flatten().count();
    if live == v.len() {
        return;
    }
    let Ok(mut out) = KVVec::with_capacity(live, GFP_KERNEL) else {
        return;
    };
    for x in core::mem::replace(v, KVVec::new()).into_iter().flatten() {
        // Within the capacity reserved above: does not allocate or fail.
        let _ = out.push(Some(x), GFP_KERNEL);
    }
    *v = out;
}

impl Run for Backend {
    fn run(&self) -> Option<u32> {
        let mut out = KVec::new();
        let next = {
            let mut st = self.st.lock();
            if st.closed {
                return None;
            }
            let (items, aborts, downs, reowns, taken) = {
                let mut q = self.queue.lock();
                (
                    core::mem::take(&mut q.items),
                    core::mem::take(&mut q.aborts),
                    core::mem::take(&mut q.downs),
                    core::mem::take(&mut q.reowns),
                    core::mem::take(&mut q.taken),
                )
            };
            // Without memory for this list the withdrawals left out are lost.
            let mut slots = KVec::with_capacity(aborts.len(), GFP_KERNEL).unwrap_or_default();
            for a in aborts.into_iter() {
                if slots.push(Some(a), GFP_KERNEL).is_err() {
                    break;
                }
            }
            let mut aborts: KVec<Option<(u32, Tuple)>> = slots;
            self.peers_down(&mut st, &downs);
            self.reown_all(&mut st, &reowns, &mut out);
            for tuple in taken.iter() {
                self.path_back(&mut st, tuple);
            }
            let again = self.revert_again(&mut st, now_ms());
            self.start_queued(&mut st, items, &mut aborts, &downs, &mut out);
            self.abort_started(&mut st, &aborts);
            self.poll(&mut st, &mut out);
            let now = now_ms();
            if now >= st.next_watch_ms && (st.watched > 0 || st.xlating) {
                self.watch(&mut st, &mut out);
                let net = self.ns.get();
                st.xlating = NetState::replays(net).is_some_and(|r| r.xlate.prune(net));
                st.next_watch_ms = now + u64::from(WATCH_MS);
            }
            let next = if !st.pending.is_empty() {
                Some(POLL_MS)
            } else if st.watched > 0 || st.xlating {
                Some(WATCH_MS)
            } else {
                None
            };
            // Within AGAIN_MS: fits.
            let again = again.map(|a| u32::try_from(a.max(1)).unwrap_or(WATCH_MS));
            match (next, again) {
                (Some(n), Some(a)) => Some(n.min(a)),
                (n, a) => n.or(a),
            }
        };
        if !out.is_empty() {
            let guard = rcu::Guard::new();
            if let Some(state) = NetState::of(self.ns.get(), &guard) {
                let cluster = state.cluster_ref();
                let chans = cluster.channels();
                for (peer, msg) in out.into_iter() {
                    if let OutMsg::Ack(a) = &msg {
                        // The seed's verification, in the data plane (the
                        // first of it and the ACK to arrive moves it).
                        cluster.send_verified(self.ns.get(), peer, &a.tuple, &guard);
                    }
                    // A message the outbox refuses is lost (counted): the
                    // front-end times out (NACK, ACK) or idles out (TERM).
                    chans.send(peer, msg);
                }
            }
        }
        next
    }
}
