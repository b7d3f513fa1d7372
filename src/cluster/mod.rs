// SPDX-License-Identifier: GPL-2.0

//! The cluster node of one network namespace (capability 2): its
//! configuration (the node, its peers, services and rules), changed by the
//! `sockgroup` generic netlink family (`netlink`), and the control channels
//! to the peers (`channel`), which get the node and peers after every
//! accepted change.
//!
//! Every change is built aside, handed to the channels, and committed only
//! when they took it: a failed request leaves the configuration as it was.
//!
//! Each service keeps its rules compiled for the packet path
//! ([`rules::ServiceRules`], shared by reference count with the hold's
//! snapshots): a rule's change recompiles its own service's rules only,
//! and the snapshot that follows every change shares the others'.

pub(crate) mod backend;
pub(crate) mod channel;
pub(crate) mod dispatcher;
pub(crate) mod fwd;
pub(crate) mod hold;
pub(crate) mod netlink;
// The back-end's replay: called by the control channel (part 3, to come)
// and the KUnit suite.
#[allow(dead_code)]
pub(crate) mod replay;
pub(crate) mod rules;
pub(crate) mod translated;

use crate::logic::{
    frame::{nack, HandoffNack, HandoffReq, Placement, Tuple},
    handoff::{check_req, Invalid},
};
use crate::netns::NetState;
use crate::sys::{
    mem::zeroize,
    net::{Net, Pernet},
    netfilter::{HookPacket, HookVerdict, OutPacket},
    rcu,
    work::Worked,
};
use backend::Backend;
use channel::{Channels, InMsg, Incoming, OutMsg};
use fwd::Fwd;
use hold::{Fallback, Hold, HoldStats};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        lock::{mutex::MutexBackend, Guard},
        Arc, Mutex,
    },
};

/// At most this many peers per node.
pub(crate) const MAX_PEERS: usize = 64;
/// At most this many services per node.
pub(crate) const MAX_SERVICES: usize = 256;
/// At most this many rules per node (all services).
pub(crate) const MAX_RULES: usize = 1024;
/// The heartbeat interval when none is given, in milliseconds.
pub(crate) const DEFAULT_HB_INTERVAL_MS: u32 = 200;
/// The IP protocol number of TCP (enum `proto`).
pub(crate) const PROTO_TCP: u8 = 6;
/// The role of a front-end only (enum `role`): takes no HANDOFF_REQ.
pub(crate) const ROLE_FRONTEND: u32 = 0;
/// The role of a back-end only (enum `role`): not held.
pub(crate) const ROLE_BACKEND: u32 = 1;
/// Key lengths, in bytes.
pub(crate) const KEY_MIN: usize = 16;
pub(crate) const KEY_MAX: usize = 64;

/// An address family.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AddrFamily {
    V4,
    V6,
}

/// An IPv4 or IPv6 address (network order; IPv4 in `bytes[..4]`, the rest 0).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Addr {
    pub(crate) family: AddrFamily,
    pub(crate) bytes: [u8; 16],
}

impl Addr {
    /// The address of 4 (IPv4) or 16 (IPv6) bytes; `None` for any other length.
    pub(crate) fn from_bytes(b: &[u8]) -> Option<Self> {
        let family = match b.len() {
            4 => AddrFamily::V4,
            16 => AddrFamily::V6,
            _ => return None,
        };
        let mut bytes = [0; 16];
        bytes[..b.len()].copy_from_slice(b);
        Some(Self { family, bytes })
    }

    /// The 4 or 16 bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self.family {
            AddrFamily::V4 => &self.bytes[..4],
            AddrFamily::V6 => &self.bytes,
        }
    }
}

/// A pair's HMAC key, 16 to 64 bytes: never reported, zeroized when dropped.
pub(crate) struct Key {
    len: u8,
    bytes: [u8; KEY_MAX],
}

impl Key {
    /// The key of `b`; `None` unless it has 16 to 64 bytes.
    pub(crate) fn new(b: &[u8]) -> Option<Self> {
        if !(KEY_MIN..=KEY_MAX).contains(&b.len()) {
            return None;
        }
        let mut bytes = [0; KEY_MAX];
        bytes[..b.len()].copy_from_slice(b);
        Some(Self {
            len: b.len() as u8,
            bytes,
        })
    }

    /// The key's bytes.
    #[allow(dead_code)]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Clone for Key {
    fn clone(&self) -> Self {
        Self {
            len: self.len,
            bytes: self.bytes,
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        zeroize(&mut self.bytes);
    }
}

/// This node.
#[derive(Clone)]
pub(crate) struct NodeConfig {
    pub(crate) id: u32,
    pub(crate) ctl_addr: Addr,
    pub(crate) ctl_port: u16,
    pub(crate) fwd_addr: Option<Addr>,
    pub(crate) fwd_port: u16,
    pub(crate) hb_interval_ms: u32,
    /// What this node's replays add to the front-end's ISN and timestamp
    /// clock (node-set replay-isn-offset, replay-ts-offset; 0: aligned).
    pub(crate) replay_offsets: crate::logic::xlate::Offsets,
}

/// A peer.
#[derive(Clone)]
pub(crate) struct PeerConfig {
    pub(crate) id: u32,
    pub(crate) addr: Addr,
    pub(crate) ctl_port: u16,
    /// Read by the channels only.
    #[allow(dead_code)]
    pub(crate) key: Key,
}

/// A service this node takes part in.
pub(crate) struct Service {
    pub(crate) id: u32,
    pub(crate) addr: Addr,
    pub(crate) port: u16,
    pub(crate) proto: u8,
    pub(crate) role: u32,
    /// The hold's time budget, in milliseconds.
    pub(crate) hold_timeout_ms: u32,
    /// The hold's counters, kept across snapshots.
    pub(crate) stats: Arc<HoldStats>,
    /// Its rules, compiled: those of [`Config::rules`] with this service,
    /// recompiled whenever one of them comes or goes; shared with the
    /// hold's snapshots.
    pub(crate) rules: Arc<rules::ServiceRules>,
    /// The nodes that dispatch it (none: not dispatched).
    pub(crate) dispatchers: dispatcher::Dispatchers,
}

/// Where a rule places a connection.
pub(crate) enum RuleTarget {
    /// This node.
    Local,
    /// One node (0: this node).
    Peer(u32),
    /// The node of this set (1 to `select::MAX_TARGETS` ids, 0: this node)
    /// that the rendezvous hash of the request's identifier chooses.
    Hash(KVec<u32>),
}

impl RuleTarget {
    /// The peer ids the target names (0, this node, included).
    pub(crate) fn peers(&self) -> &[u32] {
        match self {
            Self::Local => &[],
            Self::Peer(p) => core::slice::from_ref(p),
            Self::Hash(list) => list,
        }
    }
}

/// A rule of a service.
pub(crate) struct Rule {
    pub(crate) id: u32,
    pub(crate) service: u32,
    pub(crate) prio: u32,
    /// The spec's `match-type` (`select::MatchKind`).
    pub(crate) match_type: u32,
    /// The match's value, without a NUL (empty for `any` and `session-id`).
    pub(crate) match_value: KVec<u8>,
    pub(crate) target: RuleTarget,
    /// Its counters, shared with the compiled rules of the packet path.
    pub(crate) stats: Arc<rules::RuleStats>,
}

/// The configuration; every list is sorted by id.
pub(crate) struct Config {
    pub(crate) node: Option<NodeConfig>,
    pub(crate) peers: KVec<PeerConfig>,
    pub(crate) services: KVec<Service>,
    pub(crate) rules: KVec<Rule>,
}

impl Config {
    /// An empty configuration (no node).
    pub(crate) fn new() -> Self {
        Self {
            node: None,
            peers: KVec::new(),
            services: KVec::new(),
            rules: KVec::new(),
        }
    }

    /// Inserts `rule` at `at` of [`Config::rules`] (where its id goes) and
    /// recompiles its service's rules (the service is configured: `ENOENT`
    /// otherwise). Every allocation comes first: on failure nothing changed.
    pub(crate) fn insert_rule(&mut self, at: usize, rule: Rule) -> Result {
        let svc = position(&self.services, rule.service, |s| s.id).map_err(|_| ENOENT)?;
        let service = rule.service;
        let of = self.rules.iter().filter(move |r| r.service == service);
        // `Iterator::chain`: the kernel's `Init` has a `chain` too.
        let compiled = rules::ServiceRules::shared(Iterator::chain(of, core::iter::once(&rule)))?;
        self.rules.reserve(1, GFP_KERNEL)?;
        // Within the capacity reserved above: does not allocate or fail.
        insert_at(&mut self.rules, at, rule)?;
        self.services[svc].rules = compiled;
        Ok(())
    }

    /// Removes the rule at `at` of [`Config::rules`] and recompiles its
    /// service's rules. Every allocation comes first: on failure nothing
    /// changed.
    pub(crate) fn remove_rule(&mut self, at: usize) -> Result {
        let (id, service) = self
            .rules
            .get(at)
            .map(|r| (r.id, r.service))
            .ok_or(ENOENT)?;
        // The service is there: its rules go with it (service-del).
        let svc = position(&self.services, service, |s| s.id).ok();
        let of = self
            .rules
            .iter()
            .filter(move |r| r.service == service && r.id != id);
        let compiled = svc.map(|_| rules::ServiceRules::shared(of)).transpose()?;
        retain(&mut self.rules, |r| r.id != id)?;
        if let (Some(svc), Some(compiled)) = (svc, compiled) {
            self.services[svc].rules = compiled;
        }
        Ok(())
    }
}

/// Where `id` is in a list sorted by id: `Ok(index)` if present, else
/// `Err(index)` where it would go.
pub(crate) fn position<T>(list: &[T], id: u32, key: impl Fn(&T) -> u32) -> Result<usize, usize> {
    list.binary_search_by_key(&id, key)
}

/// The cluster node of one network namespace.
#[pin_data]
pub(crate) struct Cluster {
    /// The configuration; held across `Channels::apply`.
    #[pin]
    config: Mutex<Config>,
    #[pin]
    channels: Channels,
    /// The forwarding data plane (shared with the channels, which give it
    /// the peers' session keys).
    fwd: Arc<Fwd>,
    /// The front-end hold of the services.
    #[pin]
    hold: Worked<Hold>,
    /// The back-end: replays, answers, TERMs.
    #[pin]
    backend: Worked<Backend>,
}

impl Cluster {
    /// An unconfigured node for `net`.
    pub(crate) fn new(net: &Net) -> Result<Arc<Self>> {
        let hold = Hold::new(net)?;
        let fwd = Arc::pin_init(Fwd::new(on_verified)?, GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Cluster {
                config <- new_mutex!(Config::new(), "sockgroup_cluster"),
                channels <- Channels::new(net, fwd.clone()),
                fwd,
                hold <- hold,
                backend <- Backend::new(net),
            }? Error),
            GFP_KERNEL,
        )
    }

    /// The control channels.
    pub(crate) fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Rebuilds the services' snapshot of the hold from `cfg` (the locked
    /// configuration, just changed) and turns the hold hooks of `net` on
    /// while a service is held, off when none is.
    pub(crate) fn rebuild(&self, net: &Net, cfg: &Config) -> Result {
        let snap = hold::build_snapshot(cfg)?;
        let held = hold::publish(&self.hold, snap)?;
        let mut lists = KVec::new();
        for s in cfg.services.iter().filter(|s| !s.dispatchers.is_empty()) {
            lists.push((s.id, s.dispatchers), GFP_KERNEL)?;
        }
        let own = cfg.node.as_ref().map_or(0, |n| n.id);
        if !lists.is_empty() {
            // Before the read-side section: it may sleep.
            self.hold.disp.ensure_cache()?;
        }
        {
            let guard = rcu::Guard::new();
            let m = self.channels.membership_ref(&guard);
            self.hold.disp.configure(own, lists, m)?;
        }
        let udp = self.fwd.configure(net, cfg)?;
        Pernet::<crate::netns::NetState>::set_hold(net, held || udp)
    }

    /// The hold hook (softirq, under RCU).
    pub(crate) fn hold_in<'a>(
        &self,
        net: &Net,
        pkt: HookPacket<'a>,
        guard: &rcu::Guard,
    ) -> HookVerdict<'a> {
        let up = self.channels.members(guard);
        let pkt = match self.fwd.udp_in(net, pkt, guard, up) {
            Ok(verdict) => return verdict,
            Err(pkt) => pkt,
        };
        let pkt = match hold::icmp_in(&self.hold, net, pkt, guard, &self.fwd) {
            Ok(verdict) => return verdict,
            Err(pkt) => pkt,
        };
        hold::hold_in(&self.hold, net, pkt, guard, up, &self.channels, &self.fwd)
    }

    /// The hold's LOCAL_OUT hook (softirq or process context, under RCU):
    /// the MSS clamp of the services' SYN-ACKs.
    pub(crate) fn hold_out(&self, pkt: &mut OutPacket<'_>, guard: &rcu::Guard) {
        hold::mss_out(&self.hold, pkt, guard);
    }

    /// A message of the channels (process context, under RCU: nothing
    /// here sleeps), routed to the front-end's hold or the back-end.
    fn on_incoming(&self, net: &Net, it: Incoming, guard: &rcu::Guard) {
        let peer = it.peer;
        match it.msg {
            InMsg::Req(r) => {
                let tuple = r.head.tuple;
                let checked = self.check_handoff_req(&r.msg(), guard);
                let queued = checked.and_then(|()| backend::submit(&self.backend, peer, r));
                if let Err(reason) = queued {
                    // A NACK the outbox refuses is lost (counted): the
                    // front-end times out and serves the connection.
                    let nack = HandoffNack { tuple, reason };
                    self.channels.send(peer, OutMsg::Nack(nack));
                }
            }
            InMsg::Ack(a) => {
                let via = (&*self.fwd, &self.channels);
                if hold::on_moved(&self.hold, net, peer, &a.tuple, via, guard) {
                    self.channels.send(peer, hold::abort_term(a.tuple));
                }
            }
            InMsg::Nack(n) => hold::on_refused(&self.hold, peer, &n.tuple, Fallback::Nack),
            InMsg::Unsent(t) => hold::on_refused(&self.hold, peer, &t, Fallback::PeerDown),
            InMsg::Members => {
                self.hold
                    .disp
                    .on_members(self.channels.membership_ref(guard));
                hold::on_members(&self.hold, self.channels.members(guard));
                hold::request_takeover(&self.hold);
            }
            InMsg::Sync(s) => {
                let own = self.hold.disp.own();
                let disp = &self.hold.disp;
                let reown = || {
                    // A dispatcher took over a connection handed off here.
                    let r = disp.on_reown(peer, &s);
                    if r.is_ok() {
                        backend::reown(&self.backend, peer, s.tuple);
                    }
                    r
                };
                let done = if s.backup == own {
                    // The backup's record (and, if it is the back-end
                    // too, the takeover's news).
                    if s.backend == own {
                        let _ = reown();
                    }
                    disp.on_sync(peer, &s, guard)
                } else if s.backend == own {
                    reown()
                } else {
                    Ok(())
                };
                // A connection moved to a back-end goes into the cache: as
                // told to this node as its backup or back-end, or as a
                // hint to another dispatcher (checked by `on_hint` alone).
                let hint_only = s.backup != own && s.backend != own;
                let hint = if hint_only || (s.placement == Placement::Forwarded && done.is_ok()) {
                    disp.on_hint(peer, &s, guard)
                } else {
                    Ok(false)
                };
                let done = if hint_only { hint.map(|_| ()) } else { done };
                if let Some(st) = hold::service_stats(&self.hold, s.service, guard) {
                    hold::inc(match done {
                        Ok(()) => &st.sync_rx,
                        Err(_) => &st.sync_rejected,
                    });
                    if hint == Ok(true) {
                        hold::inc(&st.cache_fill);
                    }
                }
            }
            InMsg::Transfer(m) => {
                hold::on_transfer(&self.hold, net, peer, &m, &self.channels, guard)
            }
            InMsg::TransferAck(a) => {
                hold::on_transfer_ack(&self.hold, peer, &a, &self.channels, guard)
            }
            // What the peer handed off here and never confirmed goes.
            InMsg::PeerDown => backend::peer_down(&self.backend, peer),
            // The front-end of a connection handed off here withdrew it.
            InMsg::Term(t) if t.withdraws_handoff() => backend::abort(&self.backend, peer, t.tuple),
            InMsg::Term(t) => {
                hold::on_term(&self.hold, peer, &t.tuple, t.reason, &self.channels, guard)
            }
            InMsg::End(e) => hold::on_end(&self.hold, peer, &e, &self.channels, guard),
        }
    }

    /// The back-end's check of a HANDOFF_REQ (bounds, the tuple's family,
    /// a TCP service with a back-end role on the tuple's address and
    /// port) before it is queued for replay; `Err`: the NACK reason.
    fn check_handoff_req(&self, req: &HandoffReq<'_>, guard: &rcu::Guard) -> Result<(), u32> {
        let Some(family) = hold::backend_family(&self.hold, guard, &req.tuple) else {
            return Err(nack::NO_LISTENER);
        };
        check_req(req, family).map_err(|e| match e {
            Invalid::Family | Invalid::Mss | Invalid::Port | Invalid::RequestLength => {
                nack::INVALID
            }
        })
    }

    /// Ends the forwarding (the namespace's or the module's `pre_exit`,
    /// with the hooks still on): no segment is received or sent in the
    /// encapsulation from then on.
    pub(crate) fn shutdown_fwd(&self) {
        self.fwd.shutdown();
    }

    /// Ends every hold and the back-end (the namespace's or the module's
    /// `pre_exit`, after [`Self::shutdown_fwd`]).
    pub(crate) fn shutdown_hold(&self, net: &Net) {
        backend::shutdown(&self.backend);
        hold::shutdown(&self.hold, net);
    }

    /// This node took over, as its backup, a connection it serves as its
    /// back-end ([`backend::taken_here`]).
    pub(crate) fn taken_here(&self, tuple: Tuple) {
        backend::taken_here(&self.backend, tuple);
    }

    /// The back-end's counters.
    pub(crate) fn backend_counts(&self) -> backend::BackendCounts {
        self.backend.counts()
    }

    /// Sends the verification that `tuple`, handed off by `peer`, is
    /// adopted here (the back-end, under RCU).
    pub(crate) fn send_verified(&self, net: &Net, peer: u32, tuple: &Tuple, guard: &rcu::Guard) {
        self.fwd.send_verified(net, peer, tuple, guard);
    }

    /// The forwarding counters.
    pub(crate) fn fwd_counts(&self) -> fwd::FwdCounts {
        self.fwd.counts()
    }

    /// The connections held and decided.
    pub(crate) fn conns(&self) -> Result<kernel::alloc::KVVec<hold::ConnInfo>> {
        hold::conns(&self.hold)
    }

    /// Locks the configuration (process context, sleeps).
    pub(crate) fn lock(&self) -> Guard<'_, Config, MutexBackend> {
        self.config.lock()
    }

    /// Hands a new node and peer list to the channels and commits them into
    /// `cfg` (the locked configuration) when they took it; on failure the
    /// channels get the old configuration back and `cfg` is unchanged.
    /// `peers`: `None` keeps the current list.
    pub(crate) fn commit(
        &self,
        cfg: &mut Config,
        node: Option<NodeConfig>,
        peers: Option<KVec<PeerConfig>>,
    ) -> Result {
        let applied = self
            .channels
            .apply(node.as_ref(), peers.as_deref().unwrap_or(&cfg.peers));
        if let Err(e) = applied {
            // Best effort: the channels keep what they had if this fails too.
            let _ = self.channels.apply(cfg.node.as_ref(), &cfg.peers);
            return Err(e);
        }
        if let Some(n) = &node {
            backend::set_interval(&self.backend, n.hb_interval_ms);
        }
        cfg.node = node;
        if let Some(peers) = peers {
            cfg.peers = peers;
        }
        Ok(())
    }
}

/// A verification (type 0x03) from `peer` that it adopted `tuple`: the
/// front-end moves the connection as on HANDOFF_ACK (softirq, under RCU).
fn on_verified(net: &Net, peer: u32, tuple: &Tuple, guard: &rcu::Guard) {
    if let Some(state) = NetState::of(net, guard) {
        let c = state.cluster_ref();
        if hold::on_moved(&c.hold, net, peer, tuple, (&c.fwd, &c.channels), guard) {
            c.channels.send(peer, hold::abort_term(*tuple));
        }
    }
}

/// Hands the channels' messages of `net` to its cluster node (the channels'
/// work, process context, none of their locks held). The node is borrowed
/// under RCU, never referenced: its last reference is the namespace's.
pub(crate) fn dispatch(net: &Net, items: KVec<Incoming>) {
    let guard = rcu::Guard::new();
    let Some(state) = NetState::of(net, &guard) else {
        return;
    };
    let cluster = state.cluster_ref();
    for it in items.into_iter() {
        cluster.on_incoming(net, it, &guard);
    }
}

/// Inserts `item` at `at`, keeping the order.
pub(crate) fn insert_at<T>(v: &mut KVec<T>, at: usize, item: T) -> Result {
    v.push(item, GFP_KERNEL)?;
    v[at..].rotate_right(1);
    Ok(())
}

/// Keeps the items that `keep` accepts, in order. The new list is
/// allocated first: on failure nothing changed.
pub(crate) fn retain<T>(v: &mut KVec<T>, keep: impl Fn(&T) -> bool) -> Result {
    let mut out = KVec::with_capacity(v.iter().filter(|x| keep(x)).count(), GFP_KERNEL)?;
    for x in core::mem::take(v) {
        if keep(&x) {
            // Within the capacity reserved above: does not allocate or fail.
            out.push(x, GFP_KERNEL)?;
        }
    }
    *v = out;
    Ok(())
}

/// Clones a peer list (allocating).
pub(crate) fn clone_peers(peers: &[PeerConfig], extra: usize) -> Result<KVec<PeerConfig>> {
    let mut v = KVec::with_capacity(peers.len() + extra, GFP_KERNEL)?;
    for p in peers {
        v.push(p.clone(), GFP_KERNEL)?;
    }
    Ok(v)
}
