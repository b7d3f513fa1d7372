// SPDX-License-Identifier: GPL-2.0

//! The forwarding data plane (seed 004): a client's packet that another
//! node serves travels there inside one UDP datagram, behind the typed
//! header of `crate::logic::encap` (type, the flow's 4-tuple reference, a
//! sequence number, a MAC over header and packet), from this node's
//! forwarding address (`node-set fwd-addr/fwd-port`) to the peer's: the
//! peer's control address and the same port. The receiving node checks,
//! in this order, that the datagram comes from a peer whose channel is up
//! (before any cryptography), the header and the inner packet's 4-tuple,
//! the replay window, the MAC, and that the inner packet is for one of its
//! services; then it hands the packet to its own stack as if it had
//! arrived from the client, and its application answers the client
//! directly (the service address is on every node's `lo`).
//!
//! Keys: the MAC is HMAC-SHA256 under the session key of the pair's
//! control channel (derived at its HELLO): packets flow only between peers
//! whose channel is up, a new session (a reconnect) starts new sequence
//! numbers under a new key, and a peer that goes down takes its key away.
//!
//! UDP services (seed 004's UDP part): the first datagram of a flow
//! chooses its node with the service's `any` rule (a hash target: the
//! rendezvous hash of the flow's 4-tuple over the targets up), and the flow
//! is pinned there (`crate::logic::flows`) while it stays active; a node
//! that receives a forwarded flow pins it to itself, so that its own hook
//! lets the decapsulated datagrams through.
//!
//! Concurrency: the packet path reads an RCU snapshot (tunnel socket,
//! peers with their keys and windows, services); the control path (config
//! mutex, channel work) builds a new one under this module's mutex. The
//! tunnel socket goes only after the snapshots that hold it are gone
//! (`rcu::synchronize` and `rcu::barrier`), in process context.

use super::{
    channel::OutMsg, rules::ServiceRules, rules::Verdict, translated::Inbound, AddrFamily, Config,
    PROTO_TCP,
};
use crate::logic::{
    encap::{
        self, EncapError, EncapHeader, EncapType, Inner, Proto, ReplayWindow1024, TcpKind,
        HEADER_LEN, KEY_ID,
    },
    flows::{self, Pin, Slot},
    frame::{term, Family as TFamily, Term, Tuple},
    xlate,
};
use crate::netns::NetState;
use crate::sys::{
    crypto::HmacSha256,
    lock::{new_spinlock_bh, SpinLockBh},
    net::Net,
    netfilter::{now_ms, random_u32, HookPacket, HookVerdict, IpPacket},
    rcu::{self, RcuCell},
    skb::Family,
    tcp,
    udp_tunnel::{Datagram, Tunnel, TunnelRx},
};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{new_mutex, prelude::*, sync::Arc, sync::Mutex};

/// Slots of the UDP flow table (a power of two), allocated while a UDP
/// service is configured.
pub(crate) const FLOW_SLOTS: usize = 4096;
/// A UDP flow without a datagram for this long is forgotten.
pub(crate) const FLOW_IDLE_MS: u64 = 30_000;
/// The bytes of a packet read to find its flow.
const HEAD: usize = 128;

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// The data plane's counters (the spec's `stats` set, `fwd-*` and `udp-*`).
#[derive(Default)]
pub(crate) struct FwdStats {
    /// Packets sent to a peer.
    pub(crate) tx: AtomicU64,
    /// Packets that could not be sent (no tunnel, route or memory; a GSO
    /// packet): served here instead.
    pub(crate) tx_failed: AtomicU64,
    /// Packets received from a peer and handed to the stack.
    pub(crate) rx: AtomicU64,
    /// Datagrams from an address that is no peer's with its channel up.
    pub(crate) rx_nonpeer: AtomicU64,
    /// Datagrams refused by the header, the inner packet or the MAC.
    pub(crate) rx_refused: AtomicU64,
    /// Datagrams refused by the replay window (replayed or too old).
    pub(crate) rx_replay: AtomicU64,
    /// Datagrams whose inner packet is for no service of this node.
    pub(crate) rx_unknown: AtomicU64,
    /// UDP flows pinned (new flows of a service).
    pub(crate) udp_flows: AtomicU64,
    /// UDP flows that found no free slot (decided per datagram).
    pub(crate) udp_unpinned: AtomicU64,
    /// UDP datagrams served here.
    pub(crate) udp_local: AtomicU64,
    /// UDP datagrams forwarded to a peer.
    pub(crate) udp_forwarded: AtomicU64,
    /// Verifications (type 0x03) sent: a handed-off connection adopted.
    pub(crate) verified_tx: AtomicU64,
    /// Verifications received from the peer a connection was handed to.
    pub(crate) verified_rx: AtomicU64,
    /// Bare ACKs and FINs of a connection moved here of which TCP holds no
    /// socket (it ended here: a client's late duplicate, its `TIME_WAIT`'s
    /// answer to a FIN sent again, its FIN sent again): dropped, where TCP
    /// would answer with a reset.
    pub(crate) rx_late_ack: AtomicU64,
    /// SYNs of a connection moved here of which TCP holds no live socket
    /// (nothing, or `TIME_WAIT`): a new connection on the tuple, sent by a
    /// front-end whose entry of the old one is stale. Dropped, and that
    /// front-end told (TERM): the client's SYN sent again is placed anew.
    pub(crate) rx_stale_syn: AtomicU64,
}

/// A snapshot of [`FwdStats`].
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct FwdCounts {
    pub(crate) tx: u64,
    pub(crate) tx_failed: u64,
    pub(crate) rx: u64,
    pub(crate) rx_nonpeer: u64,
    pub(crate) rx_refused: u64,
    pub(crate) rx_replay: u64,
    pub(crate) rx_unknown: u64,
    pub(crate) udp_flows: u64,
    pub(crate) udp_unpinned: u64,
    pub(crate) udp_local: u64,
    pub(crate) udp_forwarded: u64,
    /// UDP flows pinned and active now.
    pub(crate) udp_active: u64,
    pub(crate) verified_tx: u64,
    pub(crate) verified_rx: u64,
    pub(crate) rx_late_ack: u64,
    pub(crate) rx_stale_syn: u64,
}

/// A peer whose channel is up, as the data plane sees it: one per session
/// (a new session, a new one: its sequence numbers and window start
/// afresh), kept from snapshot to snapshot while the session lasts.
#[pin_data]
struct DataPeer {
    id: u32,
    /// Its control address (IPv4, network order), where its forwarding
    /// socket is too; the port is this node's (the snapshot's endpoint):
    /// every node forwards on the same one.
    addr: [u8; 4],
    /// The session key of the pair's channel.
    mac: HmacSha256,
    /// The last sequence number sent (the next is one more).
    tx_seq: AtomicU64,
    #[pin]
    window: SpinLockBh<ReplayWindow1024>,
}

impl DataPeer {
    /// The next sequence number; `None` once they are used up (the session
    /// must change first).
    fn next_seq(&self) -> Option<u64> {
        let s = self.tx_seq.fetch_add(1, Relaxed).checked_add(1)?;
        (s != u64::MAX).then_some(s)
    }
}

/// A service, for the check that a forwarded packet is for one of ours.
#[derive(Clone, Copy)]
struct SvcKey {
    proto: u8,
    family: TFamily,
    addr: [u8; 16],
    port: u16,
}

/// A UDP service this node forwards flows of.
struct UdpSvc {
    family: TFamily,
    addr: [u8; 16],
    port: u16,
    rules: Arc<ServiceRules>,
}

/// This node's forwarding endpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Endpoint {
    id: u32,
    addr: [u8; 4],
    port: u16,
}

/// What the packet path reads.
struct Snap {
    own: u32,
    /// The socket and this node's address and port (none: no forwarding).
    tunnel: Option<(Arc<Tunnel<FwdRx>>, Endpoint)>,
    peers: KVec<Arc<DataPeer>>,
    services: KVec<SvcKey>,
    udp: KVec<UdpSvc>,
}

impl Snap {
    fn peer(&self, id: u32) -> Option<&DataPeer> {
        self.peers.iter().find(|p| p.id == id).map(|p| &**p)
    }

    fn serves(&self, proto: Proto, t: &Tuple) -> bool {
        self.services.iter().any(|s| {
            s.proto == proto as u8
                && s.family == t.family
                && s.addr == t.server
                && s.port == t.server_port
        })
    }
}

/// Called with a verification (type 0x03) from peer `peer` for `tuple`
/// (softirq, under RCU).
pub(crate) type OnVerified = fn(&Net, u32, &Tuple, &rcu::Guard);

/// The receiving half, shared with the tunnel socket.
#[pin_data]
pub(crate) struct FwdRx {
    snap: RcuCell<Snap>,
    verified: OnVerified,
    stats: FwdStats,
    seed: u32,
    #[pin]
    flows: SpinLockBh<KVVec<Slot>>,
}

/// What the control path keeps.
struct Ctl {
    node: Option<Endpoint>,
    tunnel: Option<Arc<Tunnel<FwdRx>>>,
    /// The peers whose channel is up, with or without an endpoint of this
    /// node's; a slot is emptied (not removed: no allocation) when its
    /// peer goes, and reused.
    peers: KVec<Option<Arc<DataPeer>>>,
    /// The configuration's services: all (`services`) and UDP (`udp`).
    services: KVec<SvcKey>,
    udp: KVec<(SvcKey, Arc<ServiceRules>)>,
    dead: bool,
}

/// The data plane of a namespace.
///
/// No `Drop` closes the tunnel: [`Fwd::shutdown`] does, and must run before
/// the last reference goes if a socket was opened (the snapshot holds the
/// tunnel, which holds the receiver: without it they would keep each other,
/// and the socket, alive). It does: only [`Fwd::configure`] opens one, and
/// only a netlink request calls that, which finds the namespace's state
/// once `init` published it; from then on the pernet core calls `pre_exit`
/// (`Cluster::shutdown_fwd`, from `pre_unpublish`) before `exit` drops the
/// state. A state that
/// `init` drops on its failure path, or a test's `Fwd`, never had a socket.
#[pin_data]
pub(crate) struct Fwd {
    #[pin]
    ctl: Mutex<Ctl>,
    rx: Arc<FwdRx>,
}

fn tfamily(f: AddrFamily) -> TFamily {
    match f {
        AddrFamily::V4 => TFamily::V4,
        AddrFamily::V6 => TFamily::V6,
    }
}

fn skb_family(f: TFamily) -> Family {
    match f {
        TFamily::V4 => Family::Inet,
        TFamily::V6 => Family::Inet6,
    }
}

impl Fwd {
    /// No forwarding yet (process context); `verified` takes the
    /// verifications received.
    pub(crate) fn new(verified: OnVerified) -> Result<impl PinInit<Self, Error>> {
        let rx = Arc::pin_init(
            pin_init!(FwdRx {
                snap: RcuCell::new(),
                verified,
                stats: FwdStats::default(),
                seed: random_u32(),
                flows <- new_spinlock_bh!(KVVec::new(), "sockgroup_flows"),
            }),
            GFP_KERNEL,
        )?;
        Ok(try_pin_init!(Fwd {
            ctl <- new_mutex!(
                Ctl {
                    node: None,
                    tunnel: None,
                    peers: KVec::new(),
                    services: KVec::new(),
                    udp: KVec::new(),
                    dead: false,
                },
                "sockgroup_fwd"
            ),
            rx,
        }? Error))
    }

    /// Takes the configuration (its mutex held, process context): this
    /// node's forwarding endpoint (the socket is opened, moved or closed)
    /// and the services. Returns whether a UDP service is configured (the
    /// hook must see its datagrams).
    pub(crate) fn configure(&self, net: &Net, cfg: &Config) -> Result<bool> {
        let mut ctl = self.ctl.lock();
        if ctl.dead {
            return Err(ENODEV);
        }
        let node = cfg.node.as_ref().and_then(|n| {
            let a = n.fwd_addr.filter(|a| a.family == AddrFamily::V4)?;
            (n.fwd_port != 0).then(|| {
                let mut addr = [0u8; 4];
                addr.copy_from_slice(&a.bytes[..4]);
                Endpoint {
                    id: n.id,
                    addr,
                    port: n.fwd_port,
                }
            })
        });
        let mut services = KVec::with_capacity(cfg.services.len(), GFP_KERNEL)?;
        let mut udp = KVec::new();
        for s in cfg.services.iter() {
            let k = SvcKey {
                proto: s.proto,
                family: tfamily(s.addr.family),
                addr: s.addr.bytes,
                port: s.port,
            };
            services.push(k, GFP_KERNEL)?;
            if s.proto != PROTO_TCP && s.role != super::ROLE_BACKEND {
                udp.push((k, s.rules.clone()), GFP_KERNEL)?;
            }
        }
        let has_udp = !udp.is_empty();
        // The flow table, while a UDP service is there.
        {
            let want = if has_udp { FLOW_SLOTS } else { 0 };
            let cur = self.rx.flows.lock().len();
            if cur != want {
                // vmalloc-backed (the table is some 230 KB); the old one is
                // freed after the lock is released.
                let mut table = KVVec::from_elem(Slot::EMPTY, want, GFP_KERNEL)?;
                core::mem::swap(&mut *self.rx.flows.lock(), &mut table);
                drop(table);
            }
        }
        if node != ctl.node {
            // The old socket goes first (its port may be the new one's).
            if ctl.tunnel.is_some() {
                ctl.node = None;
                self.publish(&mut ctl)?;
                Self::close(&mut ctl);
            }
            if let Some(ep) = node {
                let t = Tunnel::new(net, ep.addr, ep.port, self.rx.clone())?;
                ctl.tunnel = Some(Arc::new(t, GFP_KERNEL)?);
            }
            ctl.node = node;
        }
        ctl.services = services;
        ctl.udp = udp;
        self.publish(&mut ctl)?;
        Ok(has_udp)
    }

    /// Drops the tunnel socket once no snapshot holds it.
    fn close(ctl: &mut Ctl) {
        // Readers of the old snapshots are done after a grace period; the
        // snapshots themselves are freed by RCU callbacks, which the
        // barrier waits for: ours is then the last reference.
        rcu::synchronize();
        rcu::barrier();
        ctl.tunnel = None;
    }

    /// Publishes the snapshot of `ctl`.
    fn publish(&self, ctl: &mut Ctl) -> Result {
        let mut peers = KVec::with_capacity(ctl.peers.len(), GFP_KERNEL)?;
        for p in ctl.peers.iter().flatten() {
            // The same `DataPeer`: its session's numbers and window go on.
            peers.push(p.clone(), GFP_KERNEL)?;
        }
        let mut services = KVec::with_capacity(ctl.services.len(), GFP_KERNEL)?;
        for s in ctl.services.iter() {
            services.push(*s, GFP_KERNEL)?;
        }
        let mut udp = KVec::with_capacity(ctl.udp.len(), GFP_KERNEL)?;
        for (k, rules) in ctl.udp.iter() {
            udp.push(
                UdpSvc {
                    family: k.family,
                    addr: k.addr,
                    port: k.port,
                    rules: rules.clone(),
                },
                GFP_KERNEL,
            )?;
        }
        let tunnel = match (&ctl.tunnel, ctl.node) {
            (Some(t), Some(ep)) => Some((t.clone(), ep)),
            _ => None,
        };
        let snap = Snap {
            own: ctl.node.map_or(0, |n| n.id),
            tunnel,
            peers,
            services,
            udp,
        };
        self.rx.snap.replace(Some(snap), GFP_KERNEL)
    }

    /// Publishes the snapshot of `ctl` after a peer's change; without
    /// memory, nothing (no forwarding, nothing accepted) rather than the
    /// old snapshot with a key that is no longer the peer's: the next
    /// change publishes again.
    fn publish_peers(&self, ctl: &mut Ctl) {
        if self.publish(ctl).is_err() {
            // `None` allocates nothing.
            let _ = self.rx.snap.replace(None, GFP_KERNEL);
        }
    }

    /// Forgets peer `id` in `ctl` (its slot emptied); whether it was there.
    fn forget(ctl: &mut Ctl, id: u32) -> bool {
        let mut found = false;
        for slot in ctl.peers.iter_mut() {
            if slot.as_ref().is_some_and(|p| p.id == id) {
                *slot = None;
                found = true;
            }
        }
        found
    }

    /// The channel to peer `id` came up with `session` (process context):
    /// packets to and from it use that key, at its control address, as
    /// soon as this node has a forwarding endpoint (now or later). Its
    /// previous session's key is gone in any case, even when the new one
    /// cannot be kept (no memory: no forwarding with that peer).
    pub(crate) fn peer_up(&self, id: u32, addr: &super::Addr, session: &[u8]) {
        let mut ctl = self.ctl.lock();
        if ctl.dead {
            return;
        }
        Self::forget(&mut ctl, id);
        if let Some(peer) = Self::data_peer(id, addr, session) {
            match ctl.peers.iter_mut().find(|s| s.is_none()) {
                Some(slot) => *slot = Some(peer),
                None => {
                    // Without memory the peer is left out.
                    let _ = ctl.peers.push(Some(peer), GFP_KERNEL);
                }
            }
        }
        self.publish_peers(&mut ctl);
    }

    /// The data plane's peer for session `session` with `id` at `addr`
    /// (IPv4 only); `None` without memory.
    fn data_peer(id: u32, addr: &super::Addr, session: &[u8]) -> Option<Arc<DataPeer>> {
        if addr.family != AddrFamily::V4 {
            return None;
        }
        let mut a = [0u8; 4];
        a.copy_from_slice(&addr.bytes[..4]);
        let mac = HmacSha256::new(session).ok()?;
        Arc::pin_init(
            pin_init!(DataPeer {
                id,
                addr: a,
                mac,
                tx_seq: AtomicU64::new(0),
                window <- new_spinlock_bh!(ReplayWindow1024::new(), "sockgroup_fwd_window"),
            }),
            GFP_KERNEL,
        )
        .ok()
    }

    /// The channel to peer `id` went down: nothing more to or from it.
    pub(crate) fn peer_down(&self, id: u32) {
        let mut ctl = self.ctl.lock();
        if ctl.dead || !Self::forget(&mut ctl, id) {
            return;
        }
        self.publish_peers(&mut ctl);
    }

    /// Ends forwarding for good (the namespace's or the module's
    /// `pre_exit`): the socket is closed, nothing is published again.
    pub(crate) fn shutdown(&self) {
        let mut ctl = self.ctl.lock();
        ctl.dead = true;
        ctl.peers = KVec::new();
        let _ = self.rx.snap.replace(None, GFP_KERNEL);
        Self::close(&mut ctl);
        ctl.node = None;
    }

    /// The counters.
    pub(crate) fn counts(&self) -> FwdCounts {
        let s = &self.rx.stats;
        let active = {
            let t = self.rx.flows.lock();
            flows::live_count(&t, now_ms(), FLOW_IDLE_MS) as u64
        };
        FwdCounts {
            tx: s.tx.load(Relaxed),
            tx_failed: s.tx_failed.load(Relaxed),
            rx: s.rx.load(Relaxed),
            rx_nonpeer: s.rx_nonpeer.load(Relaxed),
            rx_refused: s.rx_refused.load(Relaxed),
            rx_replay: s.rx_replay.load(Relaxed),
            rx_unknown: s.rx_unknown.load(Relaxed),
            udp_flows: s.udp_flows.load(Relaxed),
            udp_unpinned: s.udp_unpinned.load(Relaxed),
            udp_local: s.udp_local.load(Relaxed),
            udp_forwarded: s.udp_forwarded.load(Relaxed),
            udp_active: active,
            verified_tx: s.verified_tx.load(Relaxed),
            verified_rx: s.verified_rx.load(Relaxed),
            rx_late_ack: s.rx_late_ack.load(Relaxed),
            rx_stale_syn: s.rx_stale_syn.load(Relaxed),
        }
    }

    /// The hook (softirq, under RCU), for a packet that is not TCP: a
    /// datagram of a UDP service goes to its flow's node (`Err(pkt)`: not
    /// one of ours, the caller goes on).
    pub(crate) fn udp_in<'a>(
        &self,
        net: &Net,
        pkt: HookPacket<'a>,
        guard: &rcu::Guard,
        up: &[u32],
    ) -> Result<HookVerdict<'a>, HookPacket<'a>> {
        let Some(snap) = self.rx.snap.get(guard) else {
            return Err(pkt);
        };
        if snap.udp.is_empty() {
            return Err(pkt);
        }
        // Only what may be UDP is copied (TCP and the rest go on at once).
        let udp = pkt.ip_proto().map(|p| encap::may_carry(p, Proto::Udp));
        if udp != Some(true) {
            return Err(pkt);
        }
        let mut buf = [0u8; HEAD];
        let Some((len, flow)) = pkt
            .head(&mut buf)
            .and_then(|(len, head)| Some((len, encap::flow_of(head)?)))
        else {
            return Err(pkt);
        };
        if flow.proto != Proto::Udp {
            return Err(pkt);
        }
        let t = flow.tuple;
        let Some(svc) = snap
            .udp
            .iter()
            .find(|s| s.family == t.family && s.addr == t.server && s.port == t.server_port)
        else {
            return Err(pkt);
        };
        let stats = &self.rx.stats;
        let ident = t.encode();
        let pin = {
            let mut table = self.rx.flows.lock();
            flows::pin(
                &mut table,
                self.rx.seed,
                &t,
                now_ms(),
                FLOW_IDLE_MS,
                || match svc.rules.decide_flow(&ident, snap.own, up) {
                    Verdict::Local => snap.own,
                    Verdict::Peer(p) => p,
                },
            )
        };
        match pin {
            Pin::New(_) => inc(&stats.udp_flows),
            Pin::Unpinned(_) => inc(&stats.udp_unpinned),
            Pin::Known(_) => {}
        }
        let node = pin.node();
        if node == snap.own || node == 0 {
            inc(&stats.udp_local);
            return Ok(HookVerdict::Accept(pkt));
        }
        match self.send(
            net,
            snap,
            node,
            EncapType::Moved,
            Proto::Udp,
            &t,
            Some(&pkt),
            len,
        ) {
            Ok(()) => {
                inc(&stats.udp_forwarded);
                Ok(HookVerdict::Stolen(pkt.discard()))
            }
            Err(()) => {
                // Served here rather than lost.
                inc(&stats.tx_failed);
                inc(&stats.udp_local);
                Ok(HookVerdict::Accept(pkt))
            }
        }
    }

    /// Sends `pkt` (an IP packet of `len` bytes of flow `t`; none for a
    /// verification) to peer `node`, encapsulated as `ty`.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        net: &Net,
        snap: &Snap,
        node: u32,
        ty: EncapType,
        proto: Proto,
        t: &Tuple,
        pkt: Option<&impl IpPacket>,
        len: usize,
    ) -> Result<(), ()> {
        let (tunnel, ep) = snap.tunnel.as_ref().ok_or(())?;
        let peer = snap.peer(node).ok_or(())?;
        let own = snap.own;
        let build = |buf: &mut [u8]| {
            if buf.len() < HEADER_LEN {
                return false;
            }
            let (hdr, inner) = buf.split_at_mut(HEADER_LEN);
            match pkt.map_or(Some(None), |p| p.copy_ip(inner)) {
                None => return false,
                Some(Some((start, off))) => {
                    if !xlate::complete_partial(inner, start, off) {
                        return false;
                    }
                }
                Some(None) => {}
            }
            let Some(seq) = peer.next_seq() else {
                return false;
            };
            let h = EncapHeader {
                ty,
                proto,
                sender: own,
                key_id: KEY_ID,
                seq,
                tuple: *t,
            };
            match h.seal(inner, &peer.mac) {
                Ok(b) => {
                    hdr.copy_from_slice(&b);
                    true
                }
                Err(_) => false,
            }
        };
        tunnel
            .send(
                net,
                (ep.addr, ep.port),
                (peer.addr, ep.port),
                HEADER_LEN + len,
                build,
            )
            .map_err(|_| ())?;
        inc(&self.rx.stats.tx);
        Ok(())
    }
}

impl Fwd {
    /// Forwards `pkt`, a client's TCP segment of connection `t`, which
    /// moved (or is moving: `ty`) to `peer` (softirq or process context,
    /// under RCU); a GSO packet segment by segment. `false`: not all sent
    /// (no tunnel or key for the peer, no route or memory), counted
    /// `tx-failed`.
    pub(crate) fn forward_tcp(
        &self,
        net: &Net,
        peer: u32,
        ty: EncapType,
        t: &Tuple,
        pkt: &impl IpPacket,
        guard: &rcu::Guard,
    ) -> bool {
        let stats = &self.rx.stats;
        let sent = self
            .rx
            .snap
            .get(guard)
            .is_some_and(|snap| match pkt.segments() {
                Some(segs) => {
                    // Every segment is tried, whatever became of the others.
                    let mut all = true;
                    for s in segs {
                        all &= self.send_tcp(net, snap, peer, ty, t, &s);
                    }
                    all
                }
                None => self.send_tcp(net, snap, peer, ty, t, pkt),
            });
        if !sent {
            inc(&stats.tx_failed);
        }
        sent
    }

    /// Sends one TCP packet of `t` (not GSO) to `peer` as `ty`.
    fn send_tcp(
        &self,
        net: &Net,
        snap: &Snap,
        peer: u32,
        ty: EncapType,
        t: &Tuple,
        p: &impl IpPacket,
    ) -> bool {
        p.ip_len().is_some_and(|len| {
            self.send(net, snap, peer, ty, Proto::Tcp, t, Some(p), len)
                .is_ok()
        })
    }

    /// Tells `peer` that the connection `t` it handed off is adopted here:
    /// a verification (type 0x03, no inner packet), on which it moves the
    /// connection if the HANDOFF_ACK has not done so yet (any context,
    /// under RCU). `false`: not sent (counted `tx-failed`).
    pub(crate) fn send_verified(
        &self,
        net: &Net,
        peer: u32,
        t: &Tuple,
        guard: &rcu::Guard,
    ) -> bool {
        let stats = &self.rx.stats;
        let none: Option<&HookPacket<'_>> = None;
        let sent = self.rx.snap.get(guard).is_some_and(|snap| {
            self.send(net, snap, peer, EncapType::Verified, Proto::Tcp, t, none, 0)
                .is_ok()
        });
        inc(if sent {
            &stats.verified_tx
        } else {
            &stats.tx_failed
        });
        sent
    }
}

impl TunnelRx for FwdRx {
    fn rx(&self, mut dgram: Datagram<'_>) {
        let guard = rcu::Guard::new();
        let stats = &self.stats;
        let Some(snap) = self.snap.get(&guard) else {
            return;
        };
        let (family, src) = dgram.source();
        let peer = match family {
            Family::Inet => snap.peers.iter().find(|p| src[..4] == p.addr),
            Family::Inet6 => None,
        };
        let Some(peer) = peer else {
            // Before any cryptography.
            inc(&stats.rx_nonpeer);
            return;
        };
        let Some(payload) = dgram.payload() else {
            inc(&stats.rx_refused);
            return;
        };
        let opened = {
            let mut w = peer.window.lock();
            encap::open(payload, peer.id, &peer.mac, &mut w)
        };
        // What a client's segment of a connection moved here asks of a
        // node without its socket (below); parsed for those alone, once,
        // the window's lock released.
        let opened = opened.map(|p| {
            let moved_tcp = p.header.ty == EncapType::Moved
                && p.header.proto == Proto::Tcp
                && p.kind == Inner::Flow;
            let seg_kind = if moved_tcp {
                encap::tcp_kind(p.inner)
            } else {
                TcpKind::Other
            };
            (p.header, p.kind, seg_kind)
        });
        let (h, kind, seg_kind) = match opened {
            Ok(x) => x,
            Err(EncapError::Replay | EncapError::TooOld) => {
                inc(&stats.rx_replay);
                return;
            }
            Err(_) => {
                inc(&stats.rx_refused);
                return;
            }
        };
        if h.ty == EncapType::Verified && kind == Inner::None {
            // The connection handed to this peer is adopted there: moved
            // here (if the HANDOFF_ACK did not move it first); dropped.
            inc(&stats.verified_rx);
            (self.verified)(dgram.net(), peer.id, &h.tuple, &guard);
            return;
        }
        // A packet of the flow, or an ICMP error about the server's
        // packet to the client (the back-end's TCP lowers its path MTU).
        if kind == Inner::None || h.ty == EncapType::Verified {
            inc(&stats.rx_unknown);
            return;
        }
        if !snap.serves(h.proto, &h.tuple) {
            inc(&stats.rx_unknown);
            return;
        }
        if h.proto == Proto::Udp {
            // This node's flow from now on: its hook lets it through (a
            // node that forwards no UDP service has no table, and no hook
            // decision to make).
            let mut table = self.flows.lock();
            if !table.is_empty()
                && !flows::pin_to(
                    &mut table,
                    self.seed,
                    &h.tuple,
                    now_ms(),
                    FLOW_IDLE_MS,
                    snap.own,
                )
            {
                inc(&stats.udp_unpinned);
            }
        }
        // A connection whose server side runs in another sequence space
        // here (`super::translated`): the client's packet (or the ICMP
        // error's quote) in this node's.
        if h.proto == Proto::Tcp {
            if let Some(state) = NetState::of(dgram.net(), &guard) {
                let d = &mut dgram;
                let inner = move || {
                    let d = d;
                    d.payload_mut().and_then(|p| p.get_mut(HEADER_LEN..))
                };
                let icmp = kind == Inner::IcmpError;
                if state
                    .replays_ref()
                    .xlate
                    .inbound(&h.tuple, icmp, inner, &guard)
                    == Inbound::Drop
                {
                    return;
                }
            }
        }
        // A bare ACK or FIN of a connection moved here that ended here
        // (passive close: no `TIME_WAIT` keeps the tuple): the client's
        // duplicate of its last ACK, its `TIME_WAIT`'s answer to a FIN this
        // node sent again and whose first ACK came meanwhile, or its FIN
        // sent again before this node's ACK of it reached it (a delayed
        // ACK) and come after the close. TCP would answer it with a reset
        // from the listener; dropped, as a `TIME_WAIT` would take it (a
        // lost reset of a connection reset here is still answered again at
        // the client's next data).
        if matches!(seg_kind, TcpKind::BareAck | TcpKind::BareFin)
            && !tcp::holds(dgram.net(), &super::replay::conn_of(&h.tuple))
        {
            inc(&stats.rx_late_ack);
            return;
        }
        // A SYN of a connection moved here of which TCP holds no live
        // socket: the front-end forwards a SYN on a moved connection's
        // tuple only while it has no TERM of it (a late duplicate of the
        // first, which the live socket answers with a challenge ACK). The
        // connection ended here and its TERM never reached that front-end
        // (it went to the owner of the time): the SYN is a new connection
        // on the tuple (the client reused its port), which TCP here would
        // accept from the listener or the `TIME_WAIT`, placed by no rule.
        // Dropped, and the front-end told (TERM, reason RST: nothing to
        // remember): its entry lingers out, and the client's SYN sent
        // again is held and placed anew there.
        if seg_kind == TcpKind::Syn
            && !matches!(
                tcp::established(dgram.net(), &super::replay::conn_of(&h.tuple), false),
                tcp::Established::Full(_)
            )
        {
            inc(&stats.rx_stale_syn);
            if let Some(state) = NetState::of(dgram.net(), &guard) {
                let term = Term {
                    tuple: h.tuple,
                    reason: term::RST,
                };
                state
                    .cluster_ref()
                    .channels()
                    .send(peer.id, OutMsg::Term(term));
            }
            return;
        }
        inc(&stats.rx);
        // A segment sent to its owner by another dispatcher (or held for a
        // handoff): marked, so that a dispatcher's hook takes it as its own;
        // a client's segment of a connection moved here: marked, so that
        // the hook passes it to TCP (this node is its back-end, whatever
        // its dispatchers' view says).
        let mark = match (h.ty, h.proto, kind) {
            (EncapType::HandingOff, Proto::Tcp, _) => super::dispatcher::FWD_MARK,
            (EncapType::Moved, Proto::Tcp, Inner::Flow) => super::dispatcher::ADOPTED_MARK,
            _ => 0,
        };
        dgram.deliver(HEADER_LEN, skb_family(h.tuple.family), mark);
    }
}
