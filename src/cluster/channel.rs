// SPDX-License-Identifier: GPL-2.0

//! The control channels of a node: one authenticated kernel TCP connection
//! per pair of peers, their handshake, heartbeats, and the membership.
//!
//! One work item per namespace does everything, in process context, under
//! the channels' mutex: it accepts on the node's control address (checking
//! the remote address against the peers before reading a byte), connects
//! to the peers of higher id (non-blocking, with backoff), runs the HELLO
//! handshake, reads frames into a bounded buffer per connection, checks
//! tags and sequence numbers, sends heartbeats, and takes silent peers
//! down. The sockets' callbacks only queue that work (`sys::socket`). The
//! membership (ids up, self included, and a generation) is published under
//! RCU for the packet paths of later parts.
//!
//! **Messaging (issue 12).** Any part of the module, in any context (the
//! hold decides in its netfilter hook), queues a handoff frame for a peer
//! with [`Channels::send`]: into a bounded outbox under a spinlock
//! (`GFP_ATOMIC`), then the work is kicked and encodes, tags and sends it
//! in process context. A HANDOFF_REQ that cannot go (the peer's channel is
//! not up) comes back to its sender as [`InMsg::Unsent`]. The HANDOFF_REQ,
//! HANDOFF_ACK, HANDOFF_NACK and TERM frames received from a peer that is
//! up are decoded (a bad one closes the channel, as any failed check does),
//! copied out, and handed after the run, outside the mutex, to
//! `super::dispatch`, which routes them to the front-end's hold or the
//! back-end; so is every change of the membership ([`InMsg::Members`]).
//! Each kind is counted sent and received, per peer and per namespace.
//!
//! Lifetime: dropping [`Channels`] marks the state dead under the mutex
//! and releases every socket (their callbacks restored first), then the
//! last reference to the work item cancels it synchronously. The sockets
//! take no reference on the namespace; the namespace's exit drops us.

use super::{
    fwd::Fwd,
    netlink::{notify, Event},
    Addr, AddrFamily, Key, NodeConfig, PeerConfig,
};
use crate::{
    logic::{
        frame::{
            self, ConnEnd, ConnSync, Decode, Encode, Frame, FrameError, FrameReader, HandoffAck,
            HandoffNack, HandoffReq, Heartbeat, Hello, Mac, MacError, Msg, MsgType, Role, RxSeq,
            Term, TransferAck, TransferOut, Tuple, TxSeq, FRAME_MAX, HEADER_LEN, KEY_ID, NONCE_LEN,
            TAG_LEN, TRANSFER_ENTRY_LEN, TRANSFER_HEAD_LEN,
        },
        handoff::{req_frame_len, OutboxBound},
        membership::{Backoff, Change, Liveness, Membership, DEFAULT_HB_INTERVAL_MS},
    },
    sys::{
        crypto::{self, HmacSha256},
        lock::{new_spinlock_bh, SpinLockBh},
        net::Net,
        rcu::{self, RcuMutex},
        socket::{Namespace, Recv, SockAddr, TcpSocket},
        work::{Run, Worked},
    },
};
use kernel::{init::PinInit, new_mutex, prelude::*, sync::Arc, time::Ktime, try_init};

/// The listener's accept queue.
const LISTEN_BACKLOG: i32 = 16;
/// Connections accepted per run of the work (the rest wait for the next).
const ACCEPT_BUDGET: usize = 16;
/// Frames read per connection and run (then the work runs again at once).
const READ_BUDGET: usize = 64;
/// Bytes waiting to be sent per connection: more closes the connection.
const TX_MAX: usize = 2 * FRAME_MAX;
/// A handshake (TCP connect and HELLO) must end within this many intervals.
const HANDSHAKE_INTERVALS: u64 = 2;
/// Our capabilities in HELLO (none defined yet).
const CAPS: u32 = 0;
/// Handoff frames received per run of the work, all peers (the rest wait
/// in the sockets for the next run, at once): with a frame's payload at
/// most 32 KiB, at most 2 MiB of copies per run.
const INCOMING_MAX: usize = 64;
/// When frames wait for room in a connection's transmit queue, the work
/// runs again this soon.
const TX_RETRY_MS: u64 = 10;

/// The handoff kinds counted (index of [`HandoffFrames`]'s arrays).
pub(crate) const KIND_REQ: usize = 0;
pub(crate) const KIND_ACK: usize = 1;
pub(crate) const KIND_NACK: usize = 2;
pub(crate) const KIND_TERM: usize = 3;

/// The counter index of a handoff frame type.
fn kind(t: MsgType) -> Option<usize> {
    match t {
        MsgType::HandoffReq => Some(KIND_REQ),
        MsgType::HandoffAck => Some(KIND_ACK),
        MsgType::HandoffNack => Some(KIND_NACK),
        MsgType::Term => Some(KIND_TERM),
        _ => None,
    }
}

/// Handoff frames sent and received, by kind (`KIND_*`).
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct HandoffFrames {
    pub(crate) tx: [u64; 4],
    pub(crate) rx: [u64; 4],
}

/// A HANDOFF_REQ to send: the message without its request, and the request.
pub(crate) struct ReqOut {
    /// Its `request` is empty: [`ReqOut::request`] is sent.
    pub(crate) head: HandoffReq<'static>,
    pub(crate) request: KVec<u8>,
}

impl ReqOut {
    fn msg(&self) -> HandoffReq<'_> {
        HandoffReq {
            request: &self.request,
            ..self.head
        }
    }
}

/// A handoff frame to send to a peer.
pub(crate) enum OutMsg {
    Req(ReqOut),
    Ack(HandoffAck),
    Nack(HandoffNack),
    Term(Term),
    /// A CONN_SYNC, from a connection's owner to its backup.
    Sync(ConnSync),
    /// A TRANSFER: entries handed to their new owner or backup after a
    /// change of the view.
    Transfer(TransferMsg),
    /// A CONN_END: a moved connection ended (its back-end's TERM came),
    /// to the node whose entry or record of it names this one.
    End(ConnEnd),
    /// A TRANSFER_ACK: the entries of a TRANSFER this node took.
    TransferAck(TransferAck),
}

/// The most entries one TRANSFER frame carries here (a bounded frame; a
/// longer list goes in several).
pub(crate) const TRANSFER_BATCH: usize = 64;

/// A TRANSFER's content: the entries, at most [`TRANSFER_BATCH`].
pub(crate) struct TransferMsg {
    /// The membership generation of the sender's view that moved them.
    pub(crate) generation: u64,
    /// The sender's number for it.
    pub(crate) batch: u32,
    pub(crate) entries: KVec<ConnSync>,
}

impl OutMsg {
    fn msg_type(&self) -> MsgType {
        match self {
            OutMsg::Req(_) => MsgType::HandoffReq,
            OutMsg::Ack(_) => MsgType::HandoffAck,
            OutMsg::Nack(_) => MsgType::HandoffNack,
            OutMsg::Term(_) => MsgType::Term,
            OutMsg::Sync(_) => MsgType::ConnSync,
            OutMsg::Transfer(_) => MsgType::Transfer,
            OutMsg::End(_) => MsgType::ConnEnd,
            OutMsg::TransferAck(_) => MsgType::TransferAck,
        }
    }

    /// Request bytes it carries (the outbox's byte bound).
    fn bytes(&self) -> usize {
        match self {
            OutMsg::Req(r) => r.request.len(),
            OutMsg::Transfer(t) => t.entries.len() * TRANSFER_ENTRY_LEN,
            _ => 0,
        }
    }

    /// The longest its frame can be.
    fn frame_max(&self) -> usize {
        match self {
            OutMsg::Req(r) => req_frame_len(r.request.len()),
            OutMsg::Transfer(t) => {
                HEADER_LEN + TAG_LEN + TRANSFER_HEAD_LEN + t.entries.len() * TRANSFER_ENTRY_LEN
            }
            _ => 256,
        }
    }
}

/// A frame waiting in the outbox.
struct Outgoing {
    peer: u32,
    msg: OutMsg,
}

/// The frames queued by [`Channels::send`], not yet taken by the work.
struct Outbox {
    /// Set when [`Channels`] goes: nothing is queued any more.
    closed: bool,
    items: KVec<Outgoing>,
    bound: OutboxBound,
    /// Frames refused: the outbox was full, or no memory.
    full: u64,
}

/// A HANDOFF_REQ received: the message without its request, and a copy of
/// the request.
pub(crate) struct ReqIn {
    pub(crate) head: HandoffReq<'static>,
    pub(crate) request: KVec<u8>,
}

impl ReqIn {
    /// The message as received.
    pub(crate) fn msg(&self) -> HandoffReq<'_> {
        HandoffReq {
            request: &self.request,
            ..self.head
        }
    }
}

/// What the channels hand to the rest of the module (`super::dispatch`).
pub(crate) enum InMsg {
    Req(ReqIn),
    Ack(HandoffAck),
    Nack(HandoffNack),
    /// The back-end saw a moved connection end.
    Term(Term),
    /// A HANDOFF_REQ for this tuple was not sent: the peer's channel is
    /// not up (or it was dropped when the channels went).
    Unsent(Tuple),
    /// The membership changed (a peer came up or went down).
    Members,
    /// The channel to this peer went down (its session ended): what it
    /// sent over it and has not been told the outcome of may be lost.
    PeerDown,
    /// A CONN_SYNC (its checks are the dispatchers').
    Sync(ConnSync),
    /// A TRANSFER's entries (each checked by the dispatchers).
    Transfer(TransferMsg),
    /// A CONN_END.
    End(ConnEnd),
    /// A TRANSFER_ACK.
    TransferAck(TransferAck),
}

/// A message from (or, for [`InMsg::Unsent`], to) a peer.
pub(crate) struct Incoming {
    pub(crate) peer: u32,
    pub(crate) msg: InMsg,
}

/// Where the control channel to a peer stands (values of `enum sockgroup_peer_state`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PeerState {
    Down,
    Connecting,
    Up,
}

/// A peer's counters.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct PeerStats {
    pub(crate) frames_tx: u64,
    pub(crate) frames_rx: u64,
    pub(crate) heartbeats_tx: u64,
    pub(crate) heartbeats_rx: u64,
    pub(crate) rejected: u64,
    pub(crate) connects: u64,
    pub(crate) ups: u64,
    pub(crate) downs: u64,
    pub(crate) handoff: HandoffFrames,
}

/// The namespace's counters (the spec's `stats` set).
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct NetStats {
    pub(crate) peers_up: u32,
    pub(crate) accepted: u64,
    pub(crate) refused_nonpeer: u64,
    pub(crate) rejected: u64,
    pub(crate) frames_tx: u64,
    pub(crate) frames_rx: u64,
    pub(crate) generation: u64,
    pub(crate) handoff: HandoffFrames,
    /// Frames refused by the outbox (full, or no memory).
    pub(crate) outbox_full: u64,
    /// HANDOFF_REQs not sent: the peer's channel was not up.
    pub(crate) unsent: u64,
}

impl Mac for HmacSha256 {
    fn tag(&self, parts: &[&[u8]]) -> Result<[u8; TAG_LEN], MacError> {
        self.digest_parts(parts).map_err(|_| MacError)
    }
}

fn now_ms() -> u64 {
    Ktime::ktime_get().to_ms().max(0) as u64
}

fn sock_addr(addr: &Addr, port: u16) -> SockAddr {
    SockAddr {
        v6: addr.family == AddrFamily::V6,
        addr: addr.bytes,
        port,
    }
}

/// Whether the connection's remote address is `addr` (any port).
fn same_host(remote: &SockAddr, addr: &Addr) -> bool {
    remote.v6 == (addr.family == AddrFamily::V6) && remote.addr == addr.bytes
}

/// Why a connection closes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Close {
    /// A frame failed a check: counted as rejected.
    Rejected(FrameError),
    /// The peer closed, reset, or went silent; or a socket call failed.
    Lost,
    /// The transmit queue overflowed.
    Overflow,
}

impl From<FrameError> for Close {
    fn from(e: FrameError) -> Self {
        Close::Rejected(e)
    }
}

/// Bytes queued for a connection's socket.
struct TxQueue {
    buf: KVVec<u8>,
    start: usize,
    end: usize,
}

impl TxQueue {
    fn new() -> Result<Self> {
        Ok(Self {
            buf: KVVec::from_elem(0u8, TX_MAX, GFP_KERNEL)?,
            start: 0,
            end: 0,
        })
    }

    /// Room for a frame of `len` bytes at the end; `None` if the queue is full.
    fn room(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.end + len > TX_MAX {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end + len > TX_MAX {
            return None;
        }
        Some(&mut self.buf[self.end..self.end + len])
    }

    /// Sends what the socket takes now.
    fn flush<D: Run>(&mut self, sock: &TcpSocket<D>) -> Result<(), Close> {
        while self.start < self.end {
            let n = sock
                .send(&self.buf[self.start..self.end])
                .map_err(|_| Close::Lost)?;
            if n == 0 {
                break;
            }
            self.start += n;
        }
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        Ok(())
    }
}

/// Where a connection's handshake stands.
enum Phase {
    /// The connector's TCP handshake is under way.
    Connecting,
    /// Waiting for the peer's HELLO: the connector's own nonce once it sent
    /// its HELLO; `None` on the acceptor's side.
    AwaitHello(Option<[u8; NONCE_LEN]>),
    /// Authenticated: every frame is tagged under the session key.
    Up {
        session: HmacSha256,
        live: Liveness,
        next_hb_ms: u64,
        since_ms: u64,
    },
}

/// One TCP connection to a peer.
struct Conn {
    sock: TcpSocket<Inner>,
    phase: Phase,
    /// When the handshake must be done.
    deadline_ms: u64,
    rx: KVVec<u8>,
    reader: FrameReader,
    rx_seq: RxSeq,
    tx: TxQueue,
    tx_seq: TxSeq,
}

impl Conn {
    fn new(sock: TcpSocket<Inner>, phase: Phase, now: u64, hb: u32) -> Result<Self> {
        // Frames are small and each one is awaited (a HANDOFF_REQ holds a
        // client's connection until its answer): none waits behind Nagle
        // for the acknowledgement of the previous one (the peer may delay
        // it 40 ms), on either end (connected or accepted).
        sock.set_nodelay();
        Ok(Self {
            sock,
            phase,
            deadline_ms: now + HANDSHAKE_INTERVALS * u64::from(hb),
            rx: KVVec::from_elem(0u8, FRAME_MAX, GFP_KERNEL)?,
            reader: FrameReader::new(),
            rx_seq: RxSeq::new(),
            tx: TxQueue::new()?,
            tx_seq: TxSeq::new(),
        })
    }

    fn is_up(&self) -> bool {
        matches!(self.phase, Phase::Up { .. })
    }

    /// Queues a frame for `msg`, tagged under `mac`.
    fn queue<T: Encode>(&mut self, own: u32, msg: &T, mac: &HmacSha256) -> Result<(), Close> {
        let mut b = [0u8; 256];
        let seq = self.tx_seq.take();
        let n = frame::write_frame(&mut b, own, seq, KEY_ID, msg, mac)?;
        let room = self.tx.room(n).ok_or(Close::Overflow)?;
        room.copy_from_slice(&b[..n]);
        self.tx.end += n;
        Ok(())
    }

    /// Queues `msg` under the session key, through `scratch` (at least
    /// [`FRAME_MAX`] bytes): `Ok(false)` when the transmit queue has no
    /// room for it now (nothing taken: not even a sequence number).
    fn queue_out(&mut self, own: u32, msg: &OutMsg, scratch: &mut [u8]) -> Result<bool, Close> {
        let Phase::Up { session, .. } = &self.phase else {
            return Err(Close::Lost);
        };
        if self.tx.room(msg.frame_max()).is_none() {
            return Ok(false);
        }
        let seq = self.tx_seq.take();
        let n = match msg {
            OutMsg::Req(r) => frame::write_frame(scratch, own, seq, KEY_ID, &r.msg(), session),
            OutMsg::Ack(m) => frame::write_frame(scratch, own, seq, KEY_ID, m, session),
            OutMsg::Nack(m) => frame::write_frame(scratch, own, seq, KEY_ID, m, session),
            OutMsg::Term(m) => frame::write_frame(scratch, own, seq, KEY_ID, m, session),
            OutMsg::Sync(m) => frame::write_frame(scratch, own, seq, KEY_ID, m, session),
            OutMsg::End(m) => frame::write_frame(scratch, own, seq, KEY_ID, m, session),
            OutMsg::TransferAck(m) => frame::write_frame(scratch, own, seq, KEY_ID, m, session),
            OutMsg::Transfer(t) => {
                let m = TransferOut {
                    generation: t.generation,
                    batch: t.batch,
                    entries: &t.entries,
                };
                frame::write_frame(scratch, own, seq, KEY_ID, &m, session)
            }
        }?;
        // Room for `frame_max` bytes was made above.
        let room = self.tx.room(n).ok_or(Close::Overflow)?;
        room.copy_from_slice(&scratch[..n]);
        self.tx.end += n;
        Ok(true)
    }
}

/// A configured peer and its connections.
struct Peer {
    id: u32,
    addr: Addr,
    port: u16,
    key: Key,
    /// Keyed with the pair's configured key (HELLO, session key).
    mac: HmacSha256,
    /// The connection in use: the connector's (any phase) or one that is up.
    conn: Option<Conn>,
    /// An accepted connection whose HELLO is not verified yet: it replaces
    /// `conn` only once it is.
    incoming: Option<Conn>,
    backoff: Backoff,
    next_connect_ms: u64,
    stats: PeerStats,
}

impl Peer {
    fn new(cfg: &PeerConfig) -> Result<Self> {
        Ok(Self {
            id: cfg.id,
            addr: cfg.addr,
            port: cfg.ctl_port,
            key: cfg.key.clone(),
            mac: HmacSha256::new(cfg.key.as_bytes())?,
            conn: None,
            incoming: None,
            backoff: Backoff::new(),
            next_connect_ms: 0,
            stats: PeerStats::default(),
        })
    }

    /// Whether `cfg` describes this peer unchanged.
    fn same(&self, cfg: &PeerConfig) -> bool {
        self.id == cfg.id
            && self.addr == cfg.addr
            && self.port == cfg.ctl_port
            && !crypto::memneq(self.key.as_bytes(), cfg.key.as_bytes())
    }

    fn state(&self) -> PeerState {
        match (&self.conn, &self.incoming) {
            (Some(c), _) if c.is_up() => PeerState::Up,
            (None, None) => PeerState::Down,
            _ => PeerState::Connecting,
        }
    }
}

/// A peer of the new configuration: an unchanged one (its index in the
/// old list) or a new one. Short-lived (one per configured peer, during
/// `apply`): its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Slot {
    Kept(usize),
    New(Peer),
}

/// This node, as the channels use it.
struct Node {
    id: u32,
    ctl: SockAddr,
    hb_ms: u32,
}

/// An event to send once the mutex is released.
struct Pending {
    event: Event,
    id: u32,
    addr: Addr,
}

/// Everything the work item and the netlink operations share.
struct State {
    /// Set when [`Channels`] goes: nothing opens any more.
    dead: bool,
    node: Option<Node>,
    listener: Option<TcpSocket<Inner>>,
    peers: KVec<Peer>,
    members: Membership,
    stats: NetStats,
    events: KVec<Pending>,
    /// Set when the membership changed and is not published yet.
    dirty: bool,
    /// The data plane, told of each peer's session key as it comes up and
    /// of each peer that goes down.
    fwd: Arc<Fwd>,
    /// Frames taken from the outbox that wait for room in their
    /// connection's transmit queue.
    txq: KVec<Outgoing>,
    /// Where frames are encoded ([`FRAME_MAX`] bytes once allocated).
    scratch: KVVec<u8>,
    /// What the last run received, for `super::dispatch`.
    incoming: KVec<Incoming>,
    /// The work item that holds us, for the sockets' callbacks to queue:
    /// a reference cycle that [`Channels`]'s `Drop` breaks.
    me: Option<Arc<Worked<Inner>>>,
}

impl State {
    fn event(&mut self, event: Event, peer: &Peer) {
        // An event that finds no memory is lost; the counters still move.
        let _ = self.events.push(
            Pending {
                event,
                id: peer.id,
                addr: peer.addr,
            },
            GFP_KERNEL,
        );
    }

    fn member(&mut self, id: u32, up: bool) {
        let change = if up { Change::Up(id) } else { Change::Down(id) };
        // More peers than members cannot be configured (genl's bound is
        // below MAX_MEMBERS), so `Full` does not happen; if it did, the
        // peer would just not be listed.
        if let Ok(true) = self.members.apply(&[change]) {
            self.dirty = true;
        }
    }
}

/// The state of the namespace's channels, with the work item's run.
#[pin_data]
struct Inner {
    ns: Namespace,
    /// The state, and the membership published under RCU.
    #[pin]
    st: RcuMutex<State, Membership>,
    /// Frames queued from any context for the work to send.
    #[pin]
    outbox: SpinLockBh<Outbox>,
}

/// The namespace's control channels.
pub(crate) struct Channels {
    work: Arc<Worked<Inner>>,
}

impl Channels {
    /// Idle channels of `net` (no node configured).
    pub(crate) fn new(net: &Net, fwd: Arc<Fwd>) -> impl PinInit<Self, Error> {
        let ns = Namespace::new(net);
        let inner = pin_init!(Inner {
            ns,
            st <- RcuMutex::new(new_mutex!(State {
                dead: false,
                node: None,
                listener: None,
                peers: KVec::new(),
                members: Membership::new(0),
                stats: NetStats::default(),
                events: KVec::new(),
                dirty: false,
                fwd,
                txq: KVec::new(),
                scratch: KVVec::new(),
                incoming: KVec::new(),
                me: None,
            })),
            outbox <- new_spinlock_bh!(
                Outbox {
                    closed: false,
                    items: KVec::new(),
                    bound: OutboxBound::new(),
                    full: 0,
                },
                "sockgroup_outbox"
            ),
        });
        try_init!(Self {
            work: {
                let work = Arc::pin_init(Worked::new(inner), GFP_KERNEL)?;
                let me = work.clone();
                work.st.lock().get().1.me = Some(me);
                work
            },
        })
    }

    /// Takes the whole new configuration (`None`: unconfigured, close
    /// everything). On error (the listener could not bind) the previous
    /// configuration stays in force as far as it can be restored.
    pub(crate) fn apply(&self, node: Option<&NodeConfig>, peers: &[PeerConfig]) -> Result {
        let inner = &**self.work;
        let mut w = inner.st.lock();
        let (_, st) = w.get();
        if st.dead {
            return Err(ENODEV);
        }
        let Some(cfg) = node else {
            let old = core::mem::take(&mut st.peers);
            for p in old.iter() {
                if p.state() == PeerState::Up {
                    st.event(Event::PeerDown, p);
                    st.fwd.peer_down(p.id);
                    push_down(&mut st.incoming, p.id);
                }
            }
            drop(old);
            st.listener = None;
            st.node = None;
            st.members = Membership::new(0);
            st.dirty = true;
            inner.publish(&mut w);
            drop(w);
            inner.flush_events();
            inner.dispatch();
            return Ok(());
        };
        let new_node = Node {
            id: cfg.id,
            ctl: sock_addr(&cfg.ctl_addr, cfg.ctl_port),
            hb_ms: if cfg.hb_interval_ms == 0 {
                DEFAULT_HB_INTERVAL_MS
            } else {
                cfg.hb_interval_ms
            },
        };
        // Everything fallible first: the new peers' transforms, room for
        // the lists, the listener.
        let id_changed = st.node.as_ref().map(|n| n.id) != Some(new_node.id);
        let mut fresh = KVec::with_capacity(peers.len(), GFP_KERNEL)?;
        for cfg in peers {
            let kept = if id_changed {
                None
            } else {
                st.peers.iter().position(|p| p.same(cfg))
            };
            let slot = match kept {
                Some(i) => Slot::Kept(i),
                None => Slot::New(Peer::new(cfg)?),
            };
            fresh.push(slot, GFP_KERNEL)?;
        }
        let mut slots = KVec::with_capacity(st.peers.len(), GFP_KERNEL)?;
        let mut next = KVec::with_capacity(peers.len(), GFP_KERNEL)?;
        // The listener: rebound when the address changed.
        let rebind = st.node.as_ref().map(|n| n.ctl) != Some(new_node.ctl) || st.listener.is_none();
        if rebind {
            st.listener = None;
            match inner.listen(st.me.as_ref(), &new_node.ctl) {
                Ok(l) => st.listener = Some(l),
                Err(e) => {
                    // Back to the old address, if there was one.
                    if let Some(n) = st.node.as_ref() {
                        st.listener = inner.listen(st.me.as_ref(), &n.ctl).ok();
                    }
                    return Err(e);
                }
            }
        }
        // Commit (no failure from here: the room was reserved).
        for p in core::mem::take(&mut st.peers).into_iter() {
            let _ = slots.push(Some(p), GFP_KERNEL);
        }
        for slot in fresh.into_iter() {
            let peer = match slot {
                Slot::New(p) => Some(p),
                Slot::Kept(i) => slots.get_mut(i).and_then(Option::take),
            };
            if let Some(p) = peer {
                let _ = next.push(p, GFP_KERNEL);
            }
        }
        let old = slots;
        // Committed: peers gone or changed lose their connections now.
        for p in old.iter().flatten() {
            if p.state() == PeerState::Up {
                st.event(Event::PeerDown, p);
                let id = p.id;
                st.member(id, false);
                st.fwd.peer_down(id);
                push_down(&mut st.incoming, id);
            }
        }
        drop(old);
        if id_changed {
            st.members = Membership::new(new_node.id);
            st.dirty = true;
        }
        for p in next.iter_mut() {
            // A changed interval applies to the next connection; a new or
            // changed peer is tried at once.
            if p.conn.is_none() {
                p.next_connect_ms = 0;
            }
        }
        st.peers = next;
        st.node = Some(new_node);
        inner.publish(&mut w);
        drop(w);
        inner.flush_events();
        inner.dispatch();
        self.work.kick();
        Ok(())
    }

    /// Queues `msg` for peer `peer` (any context, also softirq: no sleep,
    /// `GFP_ATOMIC`) and kicks the work, which sends it if the peer's
    /// channel is up. `false`: not queued (the outbox is full or the
    /// channels are going), counted `outbox-full`.
    pub(crate) fn send(&self, peer: u32, msg: OutMsg) -> bool {
        let inner = &**self.work;
        {
            let mut o = inner.outbox.lock();
            let mut bound = o.bound;
            if o.closed
                || !bound.admit(msg.bytes())
                || o.items.push(Outgoing { peer, msg }, GFP_ATOMIC).is_err()
            {
                o.full += 1;
                return false;
            }
            o.bound = bound;
        }
        self.work.kick();
        true
    }

    /// The state and counters of peer `id`, if configured.
    pub(crate) fn peer_status(&self, id: u32) -> Option<(PeerState, PeerStats)> {
        let mut w = self.work.st.lock();
        let (_, st) = w.get();
        st.peers
            .iter()
            .find(|p| p.id == id)
            .map(|p| (p.state(), p.stats))
    }

    /// The namespace's counters.
    pub(crate) fn stats(&self) -> NetStats {
        let mut w = self.work.st.lock();
        let (_, st) = w.get();
        let mut s = st.stats;
        s.peers_up = st
            .peers
            .iter()
            .filter(|p| p.state() == PeerState::Up)
            .count() as u32;
        s.generation = st.members.generation();
        drop(w);
        s.outbox_full = self.work.outbox.lock().full;
        s
    }

    /// The ids of the nodes up, self included, ascending, for the
    /// read-side critical section `guard` (any context; no allocation).
    /// Empty before the node is configured.
    pub(crate) fn members<'a>(&'a self, guard: &'a rcu::Guard) -> &'a [u32] {
        match self.work.st.get(guard) {
            Some(m) => m.ids(),
            None => &[],
        }
    }

    /// The membership (ids up, self included, and generation) for the
    /// read-side critical section `guard`; `None` before the node is
    /// configured.
    pub(crate) fn membership_ref<'a>(&'a self, guard: &'a rcu::Guard) -> Option<&'a Membership> {
        self.work.st.get(guard)
    }

    /// The generation and the ids of the nodes up, self included (process context).
    pub(crate) fn membership(&self) -> (u64, KVec<u32>) {
        let (generation, ids) = {
            let guard = rcu::Guard::new();
            match self.work.st.get(&guard) {
                Some(m) => (m.generation(), *m),
                None => return (0, KVec::new()),
            }
        };
        let mut v = KVec::new();
        for &id in ids.ids() {
            if v.push(id, GFP_KERNEL).is_err() {
                break;
            }
        }
        (generation, v)
    }
}

impl Drop for Channels {
    fn drop(&mut self) {
        let inner = &**self.work;
        {
            let mut o = inner.outbox.lock();
            o.closed = true;
            // The frames go with the channels (the hold's entries, whose
            // requests they carry, fall back or go with the namespace).
            o.items = KVec::new();
        }
        let mut w = inner.st.lock();
        let (_, st) = w.get();
        st.dead = true;
        st.txq = KVec::new();
        st.incoming = KVec::new();
        // Every socket restores its callbacks and is released (linger 0);
        // each gave back its reference to the work item.
        st.peers = KVec::new();
        st.listener = None;
        st.events = KVec::new();
        let me = st.me.take();
        drop(w);
        // Not the last reference: ours is still held.
        drop(me);
        // Ours is the last reference to the work: dropping it (after this
        // function) cancels the work and waits for a run under way, which
        // finds `dead` and reopens nothing.
    }
}

impl Inner {
    fn listen(&self, me: Option<&Arc<Worked<Inner>>>, addr: &SockAddr) -> Result<TcpSocket<Inner>> {
        let sock = TcpSocket::new(&self.ns, addr, me.ok_or(ENODEV)?)?;
        sock.bind(addr)?;
        sock.listen(LISTEN_BACKLOG)?;
        Ok(sock)
    }

    /// Publishes the membership if it changed.
    fn publish(&self, w: &mut crate::sys::rcu::RcuWriter<'_, State, Membership>) {
        let (_, st) = w.get();
        if !st.dirty {
            return;
        }
        let m = st.members;
        let configured = st.node.is_some();
        if w.replace(configured.then_some(m), GFP_KERNEL).is_ok() {
            let st = w.get().1;
            st.dirty = false;
            // Without memory the hold learns of it at the next change (or
            // its entries time out).
            let _ = st.incoming.push(
                Incoming {
                    peer: 0,
                    msg: InMsg::Members,
                },
                GFP_KERNEL,
            );
        }
    }

    /// Hands what the runs received (and the membership's changes) to the
    /// rest of the module, with no lock of ours held.
    fn dispatch(&self) {
        let items = {
            let mut w = self.st.lock();
            core::mem::take(&mut w.get().1.incoming)
        };
        if !items.is_empty() {
            super::dispatch(self.ns.get(), items);
        }
    }

    /// Moves the frames of the outbox to the state's transmit list.
    fn take_outbox(&self, st: &mut State) {
        let items = {
            let mut o = self.outbox.lock();
            o.bound.clear();
            core::mem::take(&mut o.items)
        };
        if st.txq.is_empty() {
            st.txq = items;
            return;
        }
        if st.txq.reserve(items.len(), GFP_KERNEL).is_err() {
            for it in items.into_iter() {
                st.unsent(it);
            }
            return;
        }
        for it in items.into_iter() {
            // Within the capacity reserved above: does not allocate or fail.
            let _ = st.txq.push(it, GFP_KERNEL);
        }
    }

    /// Sends the events collected under the mutex (none of our locks held:
    /// the family's code may take its own).
    fn flush_events(&self) {
        let events = {
            let mut w = self.st.lock();
            core::mem::take(&mut w.get().1.events)
        };
        for e in events.into_iter() {
            notify(self.ns.get(), e.event, e.id, &e.addr);
        }
    }
}

impl Run for Inner {
    fn run(&self) -> Option<u32> {
        let now = now_ms();
        let mut w = self.st.lock();
        let (_, st) = w.get();
        if st.dead {
            return None;
        }
        self.take_outbox(st);
        let next = st.step(&self.ns, now);
        self.publish(&mut w);
        drop(w);
        self.flush_events();
        self.dispatch();
        next
    }
}

/// What one run of the work needs besides the peer it looks at.
struct Ctx<'a> {
    ns: &'a Namespace,
    me: &'a Arc<Worked<Inner>>,
    own: u32,
    ctl: SockAddr,
    hb: u32,
    now: u64,
    generation: u64,
    stats: &'a mut NetStats,
    events: &'a mut KVec<Pending>,
    fwd: &'a Fwd,
    changes: KVec<Change>,
    /// Handoff frames received in this run.
    incoming: &'a mut KVec<Incoming>,
    /// The earliest time the work must run again.
    wake: u64,
}

impl Ctx<'_> {
    fn event(&mut self, event: Event, peer: &Peer) {
        // An event that finds no memory is lost; the counters still move.
        let _ = self.events.push(
            Pending {
                event,
                id: peer.id,
                addr: peer.addr,
            },
            GFP_KERNEL,
        );
    }

    fn change(&mut self, c: Change) {
        // Without memory the membership misses this change until the
        // peer's next one; the peer's own state is still right.
        let _ = self.changes.push(c, GFP_KERNEL);
    }

    fn wake_at(&mut self, t: u64) {
        self.wake = self.wake.min(t);
    }

    /// Counts a closed connection's reason.
    fn closed(&mut self, peer: &mut Peer, why: Close) {
        if let Close::Rejected(e) = why {
            peer.stats.rejected += 1;
            self.stats.rejected += 1;
            if e == FrameError::BadTag {
                self.event(Event::KeyRejected, peer);
            }
        }
    }

    fn peer_up(&mut self, peer: &mut Peer) {
        peer.stats.ups += 1;
        peer.backoff.reset();
        self.event(Event::PeerUp, peer);
        self.change(Change::Up(peer.id));
    }

    fn peer_down(&mut self, peer: &mut Peer) {
        self.fwd.peer_down(peer.id);
        peer.stats.downs += 1;
        self.event(Event::PeerDown, peer);
        self.change(Change::Down(peer.id));
        push_down(self.incoming, peer.id);
    }
}

/// Tells the rest of the module that the channel to `peer` went down
/// (after its forwarding did: nothing more arrives from it), after what it
/// received from the peer before.
fn push_down(incoming: &mut KVec<Incoming>, peer: u32) {
    // Without memory the back-end keeps what the peer handed it and never
    // confirmed (as before this message existed).
    let _ = incoming.push(
        Incoming {
            peer,
            msg: InMsg::PeerDown,
        },
        GFP_KERNEL,
    );
}

/// What a run did with a connection.
enum Progress {
    /// Nothing to report.
    Idle,
    /// The handshake completed: the connection is up.
    Upgraded,
}

/// What a verified frame asks for.
enum Action {
    /// Authenticated: derive the session key; the acceptor answers with its nonce.
    Up {
        session: [u8; TAG_LEN],
        reply: Option<[u8; NONCE_LEN]>,
    },
    Heartbeat,
    Other,
}

/// Checks a frame from `peer` in `phase` (every check of the design: the
/// header was checked by the reader).
fn check(
    f: &Frame<'_>,
    phase: &mut Phase,
    rx_seq: &mut RxSeq,
    peer: &Peer,
    own: u32,
    now: u64,
) -> Result<Action, Close> {
    let h = f.header;
    match phase {
        Phase::Connecting => Err(FrameError::Unexpected.into()),
        Phase::AwaitHello(nonce) => {
            f.verify(&peer.mac)?;
            rx_seq.check(&h)?;
            let hello = Hello::decode(f.payload())?;
            let role = if nonce.is_some() {
                Role::Connector
            } else {
                Role::Acceptor
            };
            frame::check_hello(role, &h, &hello, peer.id, own)?;
            match nonce {
                Some(mine) => Ok(Action::Up {
                    session: frame::derive_session_key(
                        &peer.mac,
                        own,
                        peer.id,
                        mine,
                        &hello.nonce,
                    )?,
                    reply: None,
                }),
                None => {
                    let mut mine = [0u8; NONCE_LEN];
                    crypto::random_bytes(&mut mine);
                    Ok(Action::Up {
                        session: frame::derive_session_key(
                            &peer.mac,
                            peer.id,
                            own,
                            &hello.nonce,
                            &mine,
                        )?,
                        reply: Some(mine),
                    })
                }
            }
        }
        Phase::Up { session, live, .. } => {
            f.verify(session)?;
            frame::check_frame(rx_seq, &h, peer.id)?;
            live.heard(now);
            if h.msg_type == MsgType::Heartbeat {
                Heartbeat::decode(f.payload())?;
                Ok(Action::Heartbeat)
            } else {
                Ok(Action::Other)
            }
        }
    }
}

/// Moves a connection on: handshake, frames in, heartbeats out, liveness,
/// and what waits to be sent.
fn pump(c: &mut Conn, peer: &mut Peer, cx: &mut Ctx<'_>) -> Result<Progress, Close> {
    let now = cx.now;
    let mut progress = Progress::Idle;
    if !c.is_up() && now >= c.deadline_ms {
        return Err(Close::Lost);
    }
    if let Phase::Connecting = c.phase {
        if c.sock.is_established() {
            let mut nonce = [0u8; NONCE_LEN];
            crypto::random_bytes(&mut nonce);
            let hello = Hello {
                nonce,
                receiver: peer.id,
                caps: CAPS,
                hb_interval_ms: cx.hb,
            };
            c.queue(cx.own, &hello, &peer.mac)?;
            peer.stats.frames_tx += 1;
            cx.stats.frames_tx += 1;
            c.phase = Phase::AwaitHello(Some(nonce));
        } else if c.sock.state() == crate::sys::sock::TCP_CLOSE {
            return Err(Close::Lost);
        }
    }
    if !matches!(c.phase, Phase::Connecting) {
        for i in 0..READ_BUDGET {
            if cx.incoming.len() >= INCOMING_MAX {
                // Enough for one run: the rest after the dispatch.
                cx.wake_at(now);
                break;
            }
            let Conn {
                sock,
                phase,
                rx,
                reader,
                rx_seq,
                ..
            } = c;
            let room = reader.unfilled(rx);
            if room.is_empty() {
                return Err(FrameError::TooLong.into());
            }
            let n = match sock.recv(room).map_err(|_| Close::Lost)? {
                Recv::WouldBlock => break,
                Recv::Eof => return Err(Close::Lost),
                Recv::Data(n) => n,
            };
            let Some(f) = reader.advance(rx, n)? else {
                continue;
            };
            let action = check(&f, phase, rx_seq, peer, cx.own, now)?;
            peer.stats.frames_rx += 1;
            cx.stats.frames_rx += 1;
            match action {
                Action::Heartbeat => peer.stats.heartbeats_rx += 1,
                Action::Other => {
                    if let Some(k) = kind(f.header.msg_type) {
                        peer.stats.handoff.rx[k] += 1;
                        cx.stats.handoff.rx[k] += 1;
                        let msg = received(&f)?;
                        // Without memory the frame is lost: the front-end
                        // times out, the back-end's entry lingers out.
                        let _ = cx
                            .incoming
                            .push(Incoming { peer: peer.id, msg }, GFP_KERNEL);
                    } else if let Some(msg) = dispatchers_msg(&f)? {
                        // Without memory it is lost: the receiver lacks
                        // the entries (counted by neither side).
                        let _ = cx
                            .incoming
                            .push(Incoming { peer: peer.id, msg }, GFP_KERNEL);
                    }
                }
                Action::Up { mut session, reply } => {
                    if let Some(nonce) = reply {
                        let hello = Hello {
                            nonce,
                            receiver: peer.id,
                            caps: CAPS,
                            hb_interval_ms: cx.hb,
                        };
                        c.queue(cx.own, &hello, &peer.mac)?;
                        peer.stats.frames_tx += 1;
                        cx.stats.frames_tx += 1;
                    }
                    let mac = HmacSha256::new(&session);
                    // The data plane's key: this session's (every new
                    // session starts its sequence numbers afresh).
                    cx.fwd.peer_up(peer.id, &peer.addr, &session);
                    crypto::zeroize(&mut session);
                    c.phase = Phase::Up {
                        session: mac.map_err(|_| Close::Lost)?,
                        live: Liveness::new(now, cx.hb),
                        next_hb_ms: now,
                        since_ms: now,
                    };
                    progress = Progress::Upgraded;
                }
            }
            if i + 1 == READ_BUDGET {
                // More may wait: run again at once.
                cx.wake_at(now);
            }
        }
    }
    if let Phase::Up {
        session,
        live,
        next_hb_ms,
        since_ms,
    } = &mut c.phase
    {
        if live.is_down(now) {
            return Err(Close::Lost);
        }
        if now >= *next_hb_ms {
            let hb = Heartbeat {
                generation: cx.generation,
                uptime_ms: now - *since_ms,
            };
            *next_hb_ms = now + u64::from(cx.hb);
            let mut b = [0u8; 256];
            let seq = c.tx_seq.take();
            let n = frame::write_frame(&mut b, cx.own, seq, KEY_ID, &hb, &*session)?;
            let room = c.tx.room(n).ok_or(Close::Overflow)?;
            room.copy_from_slice(&b[..n]);
            c.tx.end += n;
            peer.stats.frames_tx += 1;
            peer.stats.heartbeats_tx += 1;
            cx.stats.frames_tx += 1;
        }
        let (hb_at, down_at) = (*next_hb_ms, live.deadline_ms());
        cx.wake_at(hb_at.min(down_at));
    } else {
        cx.wake_at(c.deadline_ms);
    }
    c.tx.flush(&c.sock)?;
    Ok(progress)
}

impl State {
    /// Takes an accepted connection: kept only if it comes from a peer's
    /// address, before any byte is read.
    fn admit(&mut self, sock: TcpSocket<Inner>, now: u64, hb: u32) {
        let remote = match sock.peer_addr() {
            Ok(a) => a,
            Err(_) => return,
        };
        let Some(peer) = self.peers.iter_mut().find(|p| same_host(&remote, &p.addr)) else {
            self.stats.refused_nonpeer += 1;
            return;
        };
        self.stats.accepted += 1;
        // A newer connection replaces one still in its handshake.
        peer.incoming = Conn::new(sock, Phase::AwaitHello(None), now, hb).ok();
    }

    /// One run: returns in how many ms to run again.
    fn step(&mut self, ns: &Namespace, now: u64) -> Option<u32> {
        let node = self.node.as_ref()?;
        let (own, ctl, hb) = (node.id, node.ctl, node.hb_ms);
        let me = self.me.clone()?;
        let mut accept_more = false;
        if let Some(l) = self.listener.as_ref() {
            let mut taken = KVec::new();
            for _ in 0..ACCEPT_BUDGET {
                match l.accept() {
                    Ok(Some(sock)) => {
                        if taken.push(sock, GFP_KERNEL).is_err() {
                            break;
                        }
                    }
                    _ => break,
                }
            }
            accept_more = taken.len() == ACCEPT_BUDGET;
            for sock in taken.into_iter() {
                self.admit(sock, now, hb);
            }
        }
        let State {
            peers,
            stats,
            events,
            members,
            fwd,
            incoming,
            ..
        } = self;
        let mut cx = Ctx {
            ns,
            me: &me,
            own,
            ctl,
            hb,
            now,
            generation: members.generation(),
            stats,
            events,
            fwd,
            changes: KVec::new(),
            incoming,
            wake: if accept_more { now } else { u64::MAX },
        };
        for peer in peers.iter_mut() {
            step_peer(peer, &mut cx);
        }
        let changes = core::mem::take(&mut cx.changes);
        let mut wake = cx.wake;
        if let Ok(true) = self.members.apply(&changes) {
            self.dirty = true;
        }
        if self.send_queued(own) {
            wake = wake.min(now + TX_RETRY_MS);
        }
        if wake == u64::MAX {
            return None;
        }
        Some(wake.saturating_sub(now).min(u64::from(u32::MAX)) as u32)
    }
}

impl State {
    /// Counts a frame that was not sent; a HANDOFF_REQ goes back to the
    /// hold as [`InMsg::Unsent`].
    fn unsent(&mut self, it: Outgoing) {
        if let OutMsg::Req(r) = it.msg {
            self.stats.unsent += 1;
            let _ = self.incoming.push(
                Incoming {
                    peer: it.peer,
                    msg: InMsg::Unsent(r.head.tuple),
                },
                GFP_KERNEL,
            );
        }
    }

    /// Sends the frames taken from the outbox to their peers whose
    /// channel is up; returns whether some wait for room.
    fn send_queued(&mut self, own: u32) -> bool {
        if self.txq.is_empty() {
            return false;
        }
        if self.scratch.len() < FRAME_MAX {
            match KVVec::from_elem(0u8, FRAME_MAX, GFP_KERNEL) {
                Ok(b) => self.scratch = b,
                // No memory: try again at the next run.
                Err(_) => return true,
            }
        }
        let Ok(mut keep) = KVec::with_capacity(self.txq.len(), GFP_KERNEL) else {
            return true;
        };
        let items = core::mem::take(&mut self.txq);
        for it in items.into_iter() {
            let conn = self
                .peers
                .iter_mut()
                .find(|p| p.id == it.peer)
                .and_then(|p| {
                    p.conn
                        .as_mut()
                        .filter(|c| c.is_up())
                        .map(|c| (c, &mut p.stats))
                });
            let Some((c, pstats)) = conn else {
                self.unsent(it);
                continue;
            };
            match c.queue_out(own, &it.msg, &mut self.scratch) {
                Ok(true) => {
                    if let Some(k) = kind(it.msg.msg_type()) {
                        pstats.handoff.tx[k] += 1;
                        self.stats.handoff.tx[k] += 1;
                    }
                    pstats.frames_tx += 1;
                    self.stats.frames_tx += 1;
                }
                // Within the capacity reserved above: does not allocate or fail.
                Ok(false) => {
                    let _ = keep.push(it, GFP_KERNEL);
                }
                Err(_) => self.unsent(it),
            }
        }
        for p in self.peers.iter_mut() {
            if let Some(c) = p.conn.as_mut().filter(|c| c.is_up()) {
                // A failed send shows at the connection's next pump.
                let _ = c.tx.flush(&c.sock);
            }
        }
        let waiting = !keep.is_empty();
        self.txq = keep;
        waiting
    }
}

/// Copies a verified handoff frame out of the receive buffer.
fn received(f: &Frame<'_>) -> Result<InMsg, Close> {
    Ok(match Msg::of(f)? {
        Msg::HandoffReq(r) => {
            let mut request =
                KVec::with_capacity(r.request.len(), GFP_KERNEL).map_err(|_| Close::Lost)?;
            request
                .extend_from_slice(r.request, GFP_KERNEL)
                .map_err(|_| Close::Lost)?;
            InMsg::Req(ReqIn {
                head: HandoffReq { request: &[], ..r },
                request,
            })
        }
        Msg::HandoffAck(m) => InMsg::Ack(m),
        Msg::HandoffNack(m) => InMsg::Nack(m),
        Msg::Term(m) => InMsg::Term(m),
        // Only the four kinds reach here (`kind`).
        _ => return Err(FrameError::Unexpected.into()),
    })
}

/// A dispatchers' message (CONN_SYNC, TRANSFER, TRANSFER_ACK, CONN_END) as handed on; `None` for
/// the others, and for a TRANSFER whose entries find no memory.
fn dispatchers_msg(f: &Frame<'_>) -> Result<Option<InMsg>, Close> {
    Ok(match f.header.msg_type {
        MsgType::ConnSync => match Msg::of(f)? {
            Msg::ConnSync(s) => Some(InMsg::Sync(s)),
            _ => None,
        },
        MsgType::ConnEnd => match Msg::of(f)? {
            Msg::ConnEnd(e) => Some(InMsg::End(e)),
            _ => None,
        },
        MsgType::TransferAck => match Msg::of(f)? {
            Msg::TransferAck(a) => Some(InMsg::TransferAck(a)),
            _ => None,
        },
        MsgType::Transfer => match Msg::of(f)? {
            Msg::Transfer(t) => {
                // Decoding checked every entry and bounded their number.
                let Ok(mut entries) = KVec::with_capacity(t.len(), GFP_KERNEL) else {
                    return Ok(None);
                };
                for e in t.entries() {
                    // Within the capacity: does not allocate or fail.
                    let _ = entries.push(e, GFP_KERNEL);
                }
                Some(InMsg::Transfer(TransferMsg {
                    generation: t.generation,
                    batch: t.batch,
                    entries,
                }))
            }
            _ => None,
        },
        _ => None,
    })
}

/// One run for one peer: its handshake in progress, its connection, a
/// new connection attempt when due.
fn step_peer(peer: &mut Peer, cx: &mut Ctx<'_>) {
    if let Some(mut c) = peer.incoming.take() {
        match pump(&mut c, peer, cx) {
            Ok(Progress::Upgraded) => {
                // Verified: it replaces the connection in use, if any.
                let was_up = peer.conn.as_ref().is_some_and(Conn::is_up);
                peer.conn = Some(c);
                if !was_up {
                    cx.peer_up(peer);
                } else {
                    // The peer's new session ends the old one, whose
                    // frames in flight are lost as in a down.
                    push_down(cx.incoming, peer.id);
                }
            }
            Ok(Progress::Idle) => peer.incoming = Some(c),
            Err(why) => cx.closed(peer, why),
        }
    }
    if let Some(mut c) = peer.conn.take() {
        let was_up = c.is_up();
        match pump(&mut c, peer, cx) {
            Ok(p) => {
                peer.conn = Some(c);
                if let Progress::Upgraded = p {
                    cx.peer_up(peer);
                }
            }
            Err(why) => {
                drop(c);
                cx.closed(peer, why);
                if was_up {
                    cx.peer_down(peer);
                }
                if cx.own < peer.id {
                    peer.next_connect_ms = cx.now + u64::from(peer.backoff.next_delay_ms());
                }
            }
        }
    }
    if peer.conn.is_none() && cx.own < peer.id {
        if cx.now >= peer.next_connect_ms {
            match connect(peer, cx) {
                Ok(c) => {
                    peer.stats.connects += 1;
                    peer.conn = Some(c);
                    cx.wake_at(cx.now + HANDSHAKE_INTERVALS * u64::from(cx.hb));
                }
                Err(_) => {
                    peer.next_connect_ms = cx.now + u64::from(peer.backoff.next_delay_ms());
                }
            }
        }
        if peer.conn.is_none() {
            cx.wake_at(peer.next_connect_ms);
        }
    }
}

/// Starts connecting to `peer` from the node's control address.
fn connect(peer: &Peer, cx: &Ctx<'_>) -> Result<Conn> {
    let target = sock_addr(&peer.addr, peer.port);
    let sock = TcpSocket::new(cx.ns, &target, cx.me)?;
    sock.bind(&SockAddr { port: 0, ..cx.ctl })?;
    sock.connect(&target)?;
    Conn::new(sock, Phase::Connecting, cx.now, cx.hb)
}
