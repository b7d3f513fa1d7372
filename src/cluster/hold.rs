// SPDX-License-Identifier: GPL-2.0

//! The front-end hold (issue 11, part 2): BTCP below TCP, UTCP above it.
//!
//! **BTCP.** A LOCAL_IN hook (after conntrack's helpers) looks at the TCP
//! segments to a service's address and port whose socket is a request
//! socket (a handshake whose SYN-ACK was sent). The segment that completes
//! the handshake (`ack_seq` = our ISN + 1) is stolen instead of reaching
//! TCP, with everything the request socket learned (both ISNs, MSS, window
//! scales, SACK, timestamps, ECN); the request bytes that follow are stolen
//! too and reassembled in a 16 KiB buffer for the parser. Nothing is
//! allocated for a SYN: the entry is made for the completing ACK only.
//!
//! **UTCP.** Since TCP has not seen the completing ACK, it has created no
//! child socket: the application's `accept()` cannot return the connection
//! while it is held. Once the request's headers are complete (or malformed,
//! or a budget ran out) the rules decide, and the held segments are
//! re-injected in sequence order after our hook (as `nf_reinject` does):
//! TCP creates the child with the ACK, queues it for `accept()`, and
//! receives the request bytes in order.
//!
//! **Handoff (issue 12).** A decision for a peer (counted `remote`; the
//! rules chose it among the peers up) sends a HANDOFF_REQ built from the
//! learned state and the request bytes over the control channel, and the
//! connection stays held (`HandingOff`: its segments kept, the later ones
//! too, up to the budget) until the peer answers. HANDOFF_NACK, the peer
//! down (or the request not sent), or no answer within the service's
//! hold-timeout (default 2 s) after the decision: the held segments are
//! re-injected as for a local decision (`fallback-nack`, `fallback-peer-down`,
//! `fallback-timeout`; state `remote`: decided for a peer, served here).
//! After the timeout the peer is told to drop the connection (TERM, reason
//! TIMEOUT: it may adopt it late, and both would answer the client), and
//! so is a peer whose HANDOFF_ACK or verification comes for a connection
//! not handing off to it nor moved there.
//! HANDOFF_ACK: the request socket is dropped without a packet to the
//! client (`inet_csk_reqsk_queue_drop_and_put`), the held segments are
//! freed, the connection is `moved` (`handed-off`), and the client's later
//! segments that reach this hook are dropped (`moved-drop`), never answered
//! by TCP with a reset, until the entry lingers out; conntrack's entry of
//! the connection goes with it.
//!
//! **MSS clamp (issue 12).** On a node with a forwarding address, a
//! LOCAL_OUT hook, on with the LOCAL_IN one, lowers the MSS option of the
//! SYN-ACKs of the front-end services ([`mss_out`]): a connection handed
//! off has its client's packets forwarded with 108 bytes more in front.
//!
//! Decided connections stay listed (for `conn-get`) for 60 s, at most
//! [`DECIDED_MAX`] of them; later segments of a connection decided local
//! pass.

use super::channel::{Channels, OutMsg, ReqOut, TransferMsg, TRANSFER_BATCH};
use super::dispatcher::{new_slots, random_key, Dispatch, ADOPTED_MARK, FWD_MARK};
use super::fwd::Fwd;
use super::rules::{ServiceRules, Verdict as RuleVerdict};
use super::{AddrFamily, Config, Service};
use crate::logic::{
    encap::{self, EncapType, Proto},
    frame::{self, term, ConnEnd, ConnSync, Placement, Term, TransferAck, Tuple},
    handoff::build_req,
    linger::{self, Linger, LingerSlot, TIME_WAIT_MS},
    mss,
    owner::{self, Acked, Handover, Role},
    reasm::{Added, Reasm},
    request::{self, Kind, Parse, MAX_HEADER},
};
use crate::netns::NetState;
use crate::sys::{
    conntrack,
    crc32c::KernelCrc32c,
    lock::{new_spinlock_bh, SpinLockBh},
    net::Net,
    netfilter::{
        drop_request, now_ms, random_u32, tcp_clock_ms, HeldSkb, HookPacket, HookVerdict, IpPacket,
        OutPacket, ReqInfo, SegSock, TcpSeg,
    },
    rcu::{self, RcuCell},
    skb::{tcp_flags, Family},
    socket::Namespace,
    tcp::{self, Conn, Established},
    work::{Run, Worked},
};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use kernel::{
    alloc::{Flags, KVVec},
    prelude::*,
    sync::Arc,
};

/// At most this many connections held per namespace; more pass (counted `hold-full`).
pub(crate) const HOLD_MAX: usize = 4096;
/// At most this many decided connections listed per namespace (the oldest go).
pub(crate) const DECIDED_MAX: usize = 4096;
/// Decided connections are listed this long.
pub(crate) const DECIDED_KEEP_MS: u64 = 60_000;
/// At most this many segments held per connection; one more releases it
/// (counted `over-bytes`).
pub(crate) const SEGS_MAX: usize = 128;
/// At most this many segments held per namespace, all connections
/// together (a connection whose segment would pass it is released,
/// counted `over-bytes`).
pub(crate) const SEGS_TOTAL_MAX: usize = 16384;
/// At most this many moved connections per namespace: a decision for a
/// peer beyond it is served here (counted `fallback-unsent`).
pub(crate) const MOVED_MAX: usize = 16384;
/// A moved connection's entry stays this long after the back-end's TERM,
/// forwarding the late segments (a retransmitted FIN, the last ACK), so
/// that none reaches TCP here, which would answer it with a reset.
pub(crate) const LINGER_MS: u64 = 5_000;
/// How often the sweep looks at the socket of a connection served here
/// whose backup has its record, once its entry is due to go.
const END_CHECK_MS: u64 = 2_000;
/// How many moved connections that ended with a FIN are remembered after
/// their linger, for their back-end's `TIME_WAIT` (`super::linger`; the
/// oldest are forgotten first beyond it).
pub(crate) const LINGER_SLOTS: usize = 8192;
/// A moved connection without a segment from the client nor a TERM for
/// this long is forgotten (the back-end's node went away, or its TERM was
/// lost).
pub(crate) const MOVED_IDLE_MS: u64 = 600_000;
/// ... unless the other dispatchers were told where it went (the
/// association cache): they send its segments there, not here, and this
/// entry is forgotten only this long after the last segment or hint.
pub(crate) const HINTED_IDLE_MS: u64 = 3_600_000;
/// A segment of a moved connection that comes forwarded this long after
/// the last hint makes another (a cache that lost the line).
const HINT_AGAIN_MS: u64 = 1000;
/// The hold timeout when the service sets none.
pub(crate) const DEFAULT_HOLD_TIMEOUT_MS: u32 = 2000;
/// How often the sweep looks for expired holds while any connection is listed.
const SWEEP_MS: u32 = 50;
/// At most this many holds released per sweep run (the rest: the next run).
const SWEEP_BUDGET: usize = 256;
/// Hash buckets of the connection table.
const BUCKETS: usize = 1024;

/// The counters of a service's hold (attribute set `service-stats`).
#[derive(Default)]
pub(crate) struct HoldStats {
    pub(crate) held: AtomicU64,
    pub(crate) local: AtomicU64,
    pub(crate) remote: AtomicU64,
    pub(crate) over_bytes: AtomicU64,
    pub(crate) over_time: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) http1: AtomicU64,
    pub(crate) http2: AtomicU64,
    pub(crate) tls: AtomicU64,
    pub(crate) cookie_bypass: AtomicU64,
    pub(crate) tfo_bypass: AtomicU64,
    pub(crate) hold_full: AtomicU64,
    pub(crate) aborted: AtomicU64,
    pub(crate) dup: AtomicU64,
    /// Moved to their peer (HANDOFF_ACK).
    pub(crate) handed_off: AtomicU64,
    /// Decided for a peer, served here: the peer refused (HANDOFF_NACK).
    pub(crate) fallback_nack: AtomicU64,
    /// ... the peer went down, or its channel was not up to send to.
    pub(crate) fallback_peer_down: AtomicU64,
    /// ... no answer within the hold-timeout.
    pub(crate) fallback_timeout: AtomicU64,
    /// ... the HANDOFF_REQ could not be queued (outbox full, no memory).
    pub(crate) fallback_unsent: AtomicU64,
    /// Segments of moved connections dropped by the hook (never reset):
    /// not forwarded (no tunnel or key for the peer, no memory).
    pub(crate) moved_drop: AtomicU64,
    /// Segments of moved connections forwarded to their back-end (the
    /// segments held while handing off among them).
    pub(crate) moved_fwd: AtomicU64,
    /// Moved connections that ended (the back-end's TERM): they linger,
    /// then go.
    pub(crate) ended: AtomicU64,
    /// SYN-ACKs whose MSS option was lowered for the forwarding's overhead.
    pub(crate) mss_clamped: AtomicU64,
    /// Segments forwarded to their owner, another dispatcher.
    pub(crate) to_owner: AtomicU64,
    /// ... that could not be (dropped).
    pub(crate) to_owner_drop: AtomicU64,
    /// CONN_SYNCs sent to the backup owner.
    pub(crate) sync_tx: AtomicU64,
    /// CONN_SYNCs received and recorded.
    pub(crate) sync_rx: AtomicU64,
    /// CONN_SYNCs refused (`owner::check_sync`).
    pub(crate) sync_rejected: AtomicU64,
    /// Moved connections taken over from their owner's CONN_SYNC when the
    /// owner left the view.
    pub(crate) takeover: AtomicU64,
    /// Segments with no socket or entry dropped while the view changes
    /// (a takeover pending, or forwarded here by a dispatcher whose view
    /// differs), not answered with a reset.
    pub(crate) view_drop: AtomicU64,
    /// Segments this node owns under its view but holds no socket or
    /// entry of, forwarded to its backup, which held the connection before
    /// this node joined the view (or came back).
    pub(crate) to_backup: AtomicU64,
    /// Entries sent in TRANSFERs to a connection's new owner or backup
    /// after a change of the view.
    pub(crate) transfer_tx: AtomicU64,
    /// TRANSFER entries taken (a moved connection this node owns now, or
    /// a record as its backup).
    pub(crate) transfer_rx: AtomicU64,
    /// TRANSFER entries refused (`owner::check_entry`), or that could not
    /// be taken.
    pub(crate) transfer_rejected: AtomicU64,
    /// Entries this node handed to their new owner in a TRANSFER that the
    /// new owner acknowledged (TRANSFER_ACK): the entry goes unless this
    /// node backs the connection up.
    pub(crate) transfer_acked: AtomicU64,
    /// Segments of a moved connection that ended with a FIN, which came
    /// after its entry lingered out: forwarded to its back-end's
    /// `TIME_WAIT` ([`super::linger`]).
    pub(crate) late_fwd: AtomicU64,
    /// Moved entries of an earlier connection on a tuple (another client
    /// ISN), whose end never reached this node, replaced by the new
    /// connection's at a takeover or TRANSFER.
    pub(crate) stale_replaced: AtomicU64,
    /// CONN_ENDs sent: a moved connection ended here (its back-end's
    /// TERM), to the other dispatcher that lists it.
    pub(crate) end_tx: AtomicU64,
    /// Entries and records ended by a CONN_END.
    pub(crate) end_rx: AtomicU64,
    /// Segments this node (not their owner) forwarded straight to their
    /// back-end, or passed to its own TCP as their back-end, by its
    /// association cache.
    pub(crate) cache_hit: AtomicU64,
    /// Associations cached from an owner's CONN_SYNC.
    pub(crate) cache_fill: AtomicU64,
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// A service as the packet path sees it.
struct SvcEntry {
    id: u32,
    family: Family,
    /// Network order, IPv4 in the first 4 bytes.
    addr: [u8; 16],
    port: u16,
    hold_timeout_ms: u32,
    /// The configuration's, shared.
    rules: Arc<ServiceRules>,
    stats: Arc<HoldStats>,
    /// A front-end role (held); otherwise listed for the back-end's checks.
    front: bool,
    /// A back-end role (backend or both).
    role_backend: bool,
    /// Its SYN-ACKs' MSS is clamped for the forwarding's overhead: a
    /// front-end role on a node with a forwarding address.
    clamp_mss: bool,
}

/// The services of the namespace held by the front-end, rebuilt on every
/// configuration change (sharing the services' compiled rules) and
/// published under RCU.
pub(crate) struct Snapshot {
    self_id: u32,
    services: KVec<SvcEntry>,
}

impl Snapshot {
    fn find(&self, family: Family, daddr: &[u8; 16], dport: u16) -> Option<&SvcEntry> {
        self.services
            .iter()
            .find(|s| s.front && s.port == dport && s.family == family && &s.addr == daddr)
    }

    /// The service whose SYN-ACKs from `saddr:sport` have their MSS
    /// clamped.
    fn find_clamped(&self, family: Family, saddr: &[u8; 16], sport: u16) -> Option<&SvcEntry> {
        self.services
            .iter()
            .find(|s| s.clamp_mss && s.port == sport && s.family == family && &s.addr == saddr)
    }

    /// Whether a TCP service with a back-end role (backend or both) is
    /// configured on `addr` (either family) and `port`; its family.
    pub(crate) fn backend_family(&self, addr: &[u8; 16], port: u16) -> Option<Family> {
        self.services
            .iter()
            .find(|s| s.role_backend && s.port == port && &s.addr == addr)
            .map(|s| s.family)
    }
}

/// Builds the snapshot of `cfg` (control path: config mutex held, GFP_KERNEL):
/// its TCP services; those with role frontend or both are held, those
/// with role backend or both take HANDOFF_REQs. `None`: no TCP service.
/// Each service's compiled rules are the configuration's, shared: a
/// snapshot compiles nothing (a change recompiled the rules it touched).
pub(crate) fn build_snapshot(cfg: &Config) -> Result<Option<Snapshot>> {
    let held = |s: &&Service| s.proto == super::PROTO_TCP;
    let n = cfg.services.iter().filter(held).count();
    if n == 0 {
        return Ok(None);
    }
    let mut services = KVec::with_capacity(n, GFP_KERNEL)?;
    let fwd = cfg.node.as_ref().is_some_and(|n| n.fwd_addr.is_some());
    for s in cfg.services.iter().filter(held) {
        let front = s.role != super::ROLE_BACKEND;
        let family = match s.addr.family {
            AddrFamily::V4 => Family::Inet,
            AddrFamily::V6 => Family::Inet6,
        };
        // Within the capacity reserved above: does not allocate or fail.
        services.push(
            SvcEntry {
                id: s.id,
                family,
                addr: s.addr.bytes,
                port: s.port,
                hold_timeout_ms: s.hold_timeout_ms,
                rules: s.rules.clone(),
                stats: s.stats.clone(),
                front,
                role_backend: s.role != super::ROLE_FRONTEND,
                clamp_mss: front && fwd,
            },
            GFP_KERNEL,
        )?;
    }
    Ok(Some(Snapshot {
        self_id: cfg.node.as_ref().map_or(0, |n| n.id),
        services,
    }))
}

/// A connection's 4-tuple.
#[derive(Clone, Copy, PartialEq, Eq)]
struct ConnKey {
    family: Family,
    saddr: [u8; 16],
    daddr: [u8; 16],
    sport: u16,
    dport: u16,
}

impl ConnKey {
    /// The key of a frame's tuple.
    fn of_tuple(t: &Tuple) -> Self {
        Self {
            family: match t.family {
                frame::Family::V4 => Family::Inet,
                frame::Family::V6 => Family::Inet6,
            },
            saddr: t.client,
            daddr: t.server,
            sport: t.client_port,
            dport: t.server_port,
        }
    }

    /// Its tuple on the wire.
    fn tuple(&self) -> Tuple {
        Tuple {
            family: match self.family {
                Family::Inet => frame::Family::V4,
                Family::Inet6 => frame::Family::V6,
            },
            client: self.saddr,
            server: self.daddr,
            client_port: self.sport,
            server_port: self.dport,
        }
    }

    /// The connection as this host's TCP (and conntrack) sees it.
    fn conn(&self) -> Conn {
        Conn {
            family: self.family,
            local: self.daddr,
            local_port: self.dport,
            remote: self.saddr,
            remote_port: self.sport,
        }
    }

    fn of(seg: &TcpSeg) -> Self {
        Self {
            family: seg.family,
            saddr: seg.saddr,
            daddr: seg.daddr,
            sport: seg.sport,
            dport: seg.dport,
        }
    }

    /// FNV-1a over the tuple, seeded per table (no chosen collisions).
    fn hash(&self, seed: u32) -> usize {
        let mut h: u32 = 0x811c_9dc5 ^ seed;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h = (h ^ u32::from(x)).wrapping_mul(0x0100_0193);
            }
        };
        eat(&self.saddr);
        eat(&self.daddr);
        eat(&self.sport.to_be_bytes());
        eat(&self.dport.to_be_bytes());
        h as usize % BUCKETS
    }
}

/// Where a connection stands (enum `conn-state`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ConnState {
    Held,
    Local,
    /// Decided for a peer and served here (a fallback).
    Remote,
    /// Held while its peer answers the HANDOFF_REQ.
    HandingOff,
    /// Moved to its peer: its later segments are dropped here.
    Moved,
    /// Recorded as its backup owner (CONN_SYNC; listed, never in the table).
    Synced,
}

impl ConnState {
    /// Whether the connection holds segments (counted in `Table::held`).
    fn holds(self) -> bool {
        matches!(self, ConnState::Held | ConnState::HandingOff)
    }
}

/// Why a handoff fell back to serving the connection here.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fallback {
    Nack,
    PeerDown,
    Timeout,
}

/// Why a hold ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// The rules decided (complete or malformed request).
    Decided(RuleVerdict, u32),
    /// Over the byte or segment budget: local.
    OverBytes,
    /// Over the time budget: local.
    OverTime,
    /// The client closed its side first: local, counted aborted.
    Fin,
    /// The service went: local.
    Removed,
}

/// A held or decided connection.
struct Entry {
    key: ConnKey,
    service: u32,
    stats: Arc<HoldStats>,
    info: ReqInfo,
    state: ConnState,
    started_ms: u64,
    deadline_ms: u64,
    decided_ms: u64,
    /// Its service went: released by the next sweep.
    orphan: bool,
    reasm: Reasm,
    /// The request's first bytes (allocated with the first data).
    buf: KVec<u8>,
    /// The held segments: (offset from the client's ISN + 1, arrival, packet).
    segs: KVec<(i32, u32, HeldSkb)>,
    arrivals: u32,
    bytes: u32,
    rule: u32,
    peer: u32,
    /// The window field of the client's last segment.
    window: u16,
    /// Moved: the last segment forwarded, and when the back-end's TERM
    /// came (0: not yet).
    last_ms: u64,
    term_ms: u64,
    /// Its end was a FIN (the TERM's reason, or a CONN_END): remembered
    /// after the linger for the back-end's `TIME_WAIT`.
    term_fin: bool,
    /// Owned here, its backup got its CONN_SYNC: served here, its backup
    /// gets a CONN_END once its socket ended (the sweep).
    synced: bool,
    /// Served here: when the sweep last found its socket alive.
    checked_ms: u64,
    /// Decided for a peer and served here: the peer was told to drop it
    /// (TERM, reason TIMEOUT).
    abort_sent: bool,
    /// Its owner and backup owner among the service's dispatchers when it
    /// was held (0: none).
    owner: u32,
    backup: u32,
    /// The dispatcher that handed it over here in a TRANSFER (0: none):
    /// the back-end's TERM goes there, which tells this node by CONN_END.
    from: u32,
    /// Moved, owned here: when the other dispatchers were last told where
    /// it went (the association cache's hint; 0: never; they get its
    /// CONN_END too).
    hinted_ms: u64,
    /// Moved, handed to its new owner in a TRANSFER, not acknowledged
    /// yet: this node keeps forwarding its segments.
    handed: Option<Handed>,
    /// Moved, TRANSFERred here: its back-end is to be told that this node
    /// owns it (its channel was not up yet).
    reown_due: bool,
}

/// The TRANSFER that handed a moved connection to its new owner.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Handed {
    /// The new owner.
    to: u32,
    /// The TRANSFER's batch number.
    batch: u32,
    /// Its entries (its TRANSFER_ACK acknowledges them only if it took
    /// all).
    len: u32,
}

/// A connection as `conn-get` reports it.
#[derive(Clone, Copy)]
pub(crate) struct ConnInfo {
    pub(crate) service: u32,
    pub(crate) family: Family,
    pub(crate) saddr: [u8; 16],
    pub(crate) daddr: [u8; 16],
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    pub(crate) state: ConnState,
    pub(crate) info: ReqInfo,
    pub(crate) bytes: u32,
    pub(crate) rule: u32,
    pub(crate) peer: u32,
    pub(crate) age_ms: u32,
    pub(crate) owner: u32,
    pub(crate) backup: u32,
}

impl ConnInfo {
    /// A connection recorded as backup owner (`super::dispatcher`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn synced(
        service: u32,
        family: Family,
        t: &Tuple,
        client_isn: u32,
        server_isn: u32,
        backend: u32,
        (owner, backup): (u32, u32),
        age_ms: u32,
    ) -> Self {
        ConnInfo {
            service,
            family,
            saddr: t.client,
            daddr: t.server,
            sport: t.client_port,
            dport: t.server_port,
            state: ConnState::Synced,
            info: ReqInfo {
                rcv_isn: client_isn,
                snt_isn: server_isn,
                ..ReqInfo::default()
            },
            bytes: 0,
            rule: 0,
            peer: backend,
            age_ms,
            owner,
            backup,
        }
    }
}

impl Entry {
    fn conn_info(&self, now: u64) -> ConnInfo {
        ConnInfo {
            service: self.service,
            family: self.key.family,
            saddr: self.key.saddr,
            daddr: self.key.daddr,
            sport: self.key.sport,
            dport: self.key.dport,
            state: self.state,
            info: self.info,
            bytes: self.bytes,
            rule: self.rule,
            peer: self.peer,
            age_ms: now.saturating_sub(self.started_ms).min(u64::from(u32::MAX)) as u32,
            owner: self.owner,
            backup: self.backup,
        }
    }
}

/// The connection table of a namespace.
struct Table {
    /// Set by `shutdown`: nothing is held any more.
    closed: bool,
    seed: u32,
    /// Slots of each bucket: a removed entry leaves `None`, which an
    /// insertion takes again (no allocation in the common case).
    buckets: KVec<KVec<Option<KBox<Entry>>>>,
    held: usize,
    decided: usize,
    /// Moved connections (not counted in `decided`).
    moved: usize,
    /// Segments held, all connections.
    segs: usize,
    /// A copy of the payload of the segment being added (under the lock).
    scratch: KVec<u8>,
    /// Moved connections that ended with a FIN, once their entry lingered
    /// out: late segments go to the back-end's `TIME_WAIT` (allocated when
    /// the first front-end service is published: [`publish`]).
    linger: Option<Linger<KVVec<LingerSlot>>>,
}

impl Table {
    fn find(&self, key: &ConnKey) -> Option<(usize, usize)> {
        let b = key.hash(self.seed);
        self.buckets
            .get(b)?
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| e.key == *key))
            .map(|i| (b, i))
    }

    fn get(&self, (b, i): (usize, usize)) -> Option<&Entry> {
        self.buckets.get(b)?.get(i)?.as_deref()
    }

    fn get_mut(&mut self, (b, i): (usize, usize)) -> Option<&mut Entry> {
        self.buckets.get_mut(b)?.get_mut(i)?.as_deref_mut()
    }

    /// Inserts a held entry; `None` when out of memory (the entry is dropped).
    fn insert(&mut self, e: KBox<Entry>) -> Option<(usize, usize)> {
        let b = e.key.hash(self.seed);
        let bucket = self.buckets.get_mut(b)?;
        let i = match bucket.iter().position(|s| s.is_none()) {
            Some(i) => {
                bucket[i] = Some(e);
                i
            }
            None => {
                bucket.push(Some(e), GFP_ATOMIC).ok()?;
                bucket.len() - 1
            }
        };
        self.held += 1;
        Some((b, i))
    }

    fn remove(&mut self, (b, i): (usize, usize)) -> Option<KBox<Entry>> {
        let e = self.buckets.get_mut(b)?.get_mut(i)?.take()?;
        self.segs -= e.segs.len();
        if e.state.holds() {
            self.held -= 1;
        } else if e.state == ConnState::Moved {
            self.moved -= 1;
        } else {
            self.decided -= 1;
        }
        Some(e)
    }

    fn len(&self) -> usize {
        self.held + self.decided + self.moved
    }
}

/// The namespace's hold: the services' snapshot and the connection table,
/// with the sweep that releases expired holds.
#[pin_data]
pub(crate) struct Hold {
    /// Its namespace (the sweep's conntrack and channels).
    ns: Namespace,
    snapshot: RcuCell<Snapshot>,
    #[pin]
    table: SpinLockBh<Table>,
    /// The services' dispatchers, their views, the backup's records.
    #[pin]
    pub(crate) disp: Dispatch,
    /// Takeovers asked for by membership changes, and the count the last
    /// one the work did had seen: while they differ a takeover is due, and
    /// a segment with no socket or entry may belong to a connection this
    /// node is about to take over.
    takeover_asked: AtomicU64,
    takeover_done: AtomicU64,
    /// The number of the next TRANSFER sent.
    transfer_batch: AtomicU64,
    /// Moved connections are to be handed over after a change of the
    /// view ([`Hold::transfer`]), some not sent yet. Only the work
    /// touches it.
    transfer_due: AtomicBool,
    /// Some connections TRANSFERred here wait for their back-end's
    /// channel to come up to be told of their new owner
    /// ([`Hold::send_reowns`], at the next change of the membership).
    reown_due: AtomicBool,
}

/// Segments to re-inject (or drop) once the table's lock is released.
type Release = KVec<(i32, u32, HeldSkb)>;

impl Hold {
    /// An empty hold of `net` (process context).
    pub(crate) fn new(net: &Net) -> Result<impl PinInit<Worked<Hold>>> {
        let ns = Namespace::new(net);
        let mut buckets = KVec::with_capacity(BUCKETS, GFP_KERNEL)?;
        for _ in 0..BUCKETS {
            buckets.push(KVec::new(), GFP_KERNEL)?;
        }
        let scratch = KVec::from_elem(0u8, MAX_HEADER, GFP_KERNEL)?;
        let table = Table {
            closed: false,
            seed: random_u32(),
            buckets,
            held: 0,
            decided: 0,
            moved: 0,
            segs: 0,
            scratch,
            linger: None,
        };
        Ok(Worked::new(pin_init!(Hold {
            ns,
            snapshot: RcuCell::new(),
            table <- new_spinlock_bh!(table, "sockgroup_hold"),
            disp <- Dispatch::new(),
            takeover_asked: AtomicU64::new(0),
            takeover_done: AtomicU64::new(0),
            transfer_batch: AtomicU64::new(0),
            transfer_due: AtomicBool::new(false),
            reown_due: AtomicBool::new(false),
        })))
    }
}

/// Publishes `snap` (control path, config mutex held); the old one is freed
/// after a grace period. The holds of services that went are released by
/// the sweep, run now. Returns whether any service is held.
pub(crate) fn publish(w: &Worked<Hold>, snap: Option<Snapshot>) -> Result<bool> {
    let mut ids = KVec::with_capacity(snap.as_ref().map_or(0, |s| s.services.len()), GFP_KERNEL)?;
    for s in snap.iter().flat_map(|s| s.services.iter()) {
        ids.push(s.id, GFP_KERNEL)?;
    }
    let on = snap
        .as_ref()
        .is_some_and(|s| s.services.iter().any(|x| x.front));
    if on {
        ensure_linger(w)?;
    }
    w.snapshot.replace(snap, GFP_KERNEL)?;
    let mut orphans = false;
    {
        let mut t = w.table.lock();
        for e in t.buckets.iter_mut().flat_map(|b| b.iter_mut()).flatten() {
            if e.state == ConnState::Held && !ids.contains(&e.service) {
                e.orphan = true;
                orphans = true;
            }
        }
    }
    if orphans {
        w.kick();
    }
    Ok(on)
}

/// Allocates the memory of ended connections ([`super::linger`]) if it is
/// not yet (process context, no lock held: it sleeps); it stays until the
/// namespace goes.
fn ensure_linger(w: &Hold) -> Result {
    if w.table.lock().linger.is_some() {
        return Ok(());
    }
    let l = Linger::new(new_slots(LINGER_SLOTS, linger::EMPTY)?, random_key());
    let mut t = w.table.lock();
    if t.linger.is_none() {
        t.linger = Some(l);
    }
    Ok(())
}

/// The hold's LOCAL_OUT hook (softirq or process context, under RCU): a
/// SYN-ACK of a service whose connections may be forwarded has its MSS
/// option lowered to what fits the forwarding's overhead on its route's
/// MTU (`crate::logic::mss`), counted `mss-clamped`. A malformed header, a
/// packet without a route, or one whose header cannot be made writable
/// leaves as it is.
pub(crate) fn mss_out(w: &Worked<Hold>, pkt: &mut OutPacket<'_>, guard: &rcu::Guard) {
    let Some(snap) = w.snapshot.get(guard) else {
        return;
    };
    let Some(seg) = pkt.tcp_seg() else {
        return;
    };
    let synack = tcp_flags::SYN | tcp_flags::ACK;
    if seg.flags & (synack | tcp_flags::RST) != synack {
        return;
    }
    let Some(svc) = snap.find_clamped(seg.family, &seg.saddr, seg.sport) else {
        return;
    };
    let Some(mtu) = pkt.dst_mtu() else {
        return;
    };
    let max = mss::forwarded_mss(mtu, seg.family == Family::Inet6);
    let r = pkt.rewrite_tcp(&seg, |hdr, mode| mss::clamp(hdr, max, mode));
    if let Some(Ok(mss::Clamp::Lowered { .. })) = r {
        inc(&svc.stats.mss_clamped);
    }
}

/// Re-injects the segments of a released hold in sequence order (the ACK
/// first), or drops them when their device went.
fn reinject(mut segs: Release) {
    segs.sort_unstable_by_key(|&(off, arrival, _)| (off, arrival));
    for (_, _, skb) in segs.into_iter() {
        if skb.dev_alive() {
            skb.reinject();
        }
    }
}

/// The hold hook (softirq, under RCU): see the module's documentation.
/// `up`: the ids of the nodes up; `chans`: where HANDOFF_REQs go.
pub(crate) fn hold_in<'a>(
    w: &Worked<Hold>,
    net: &Net,
    pkt: HookPacket<'a>,
    guard: &rcu::Guard,
    up: &[u32],
    chans: &Channels,
    fwd: &Fwd,
) -> HookVerdict<'a> {
    let mut pkt = pkt;
    // A segment of a connection this node serves as its back-end (the
    // replay's, or the client's forwarded to it): TCP's.
    if pkt.take_mark(ADOPTED_MARK) {
        return HookVerdict::Accept(pkt);
    }
    let Some(snap) = w.snapshot.get(guard) else {
        return HookVerdict::Accept(pkt);
    };
    let Some(seg) = pkt.tcp_seg() else {
        return HookVerdict::Accept(pkt);
    };
    let Some(svc) = snap.find(seg.family, &seg.daddr, seg.dport) else {
        return HookVerdict::Accept(pkt);
    };
    // A dispatched service: a segment whose owner is another dispatcher
    // goes there (once: one forwarded here is this node's).
    let forwarded_here = pkt.take_mark(FWD_MARK);
    let pair = w.disp.pair(svc.id, &ConnKey::of(&seg).tuple(), guard);
    if let Some(owner) = pair.map(|p| p.owner).filter(|&o| o != snap.self_id) {
        if !forwarded_here {
            let key = ConnKey::of(&seg);
            let tuple = key.tuple();
            if seg.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN {
                // A new connection on the tuple: placed anew.
                w.disp.uncache(&tuple, None);
            } else if let Some(a) = w.disp.cached(&tuple).filter(|a| a.backend != snap.self_id) {
                // Where it went, as its owner said: straight there (type
                // 0x02, as its owner would). Counted `cache-hit`
                // (`moved-drop` when it cannot be sent).
                let to = (a.backend, EncapType::Moved);
                let counts = (&svc.stats.cache_hit, &svc.stats.moved_drop);
                return forward_counted(net, fwd, to, &key, pkt, counts, guard);
            }
            // Type 0x01, counted `to-owner`; dropped when it cannot be
            // (`to-owner-drop`), never answered.
            let to = (owner, EncapType::HandingOff);
            let counts = (&svc.stats.to_owner, &svc.stats.to_owner_drop);
            return forward_counted(net, fwd, to, &ConnKey::of(&seg), pkt, counts, guard);
        }
    }
    let f = seg.flags;
    if f & tcp_flags::SYN != 0 {
        // A SYN on the tuple of a connection moved to a back-end that
        // still serves it (a late duplicate or a reordered retransmission
        // of the client's first SYN): the back-end's TCP answers it as any
        // server's does, with a challenge ACK. Here it would make a
        // request socket whose SYN-ACK draws the client's challenge ACK,
        // which that request socket answers with a reset that ends the
        // client's connection. Once the back-end's TERM came, a SYN is a
        // new connection, held as any.
        if f & tcp_flags::ACK == 0 {
            let key = ConnKey::of(&seg);
            if let Some(peer) = moved_live(w, &key) {
                return forward_moved(net, fwd, peer, &key, pkt, svc, guard);
            }
        }
        // A SYN with data to a Fast Open listener: TCP creates the child
        // at once, there is no handshake to hold.
        if f & tcp_flags::ACK == 0 && seg.payload_len > 0 && pkt.listener_fastopen(net, &seg) {
            inc(&svc.stats.tfo_bypass);
        }
        return HookVerdict::Accept(pkt);
    }
    let info = match pkt.sock(net, &seg) {
        SegSock::Request(info) => info,
        SegSock::Other => return HookVerdict::Accept(pkt),
        SegSock::None => {
            // A segment of a moved connection: its request socket is gone,
            // TCP would answer it with a reset. Forwarded to the back-end
            // that serves it. A new handshake on its tuple finds a request
            // socket of its own, and replaces the entry below.
            let key = ConnKey::of(&seg);
            if let Some(peer) = moved_to(w, &key) {
                if forwarded_here {
                    hint_others(w, &key, chans, guard);
                }
                return forward_moved(net, fwd, peer, &key, pkt, svc, guard);
            }
            // A dispatched service's segment while the view changes: a
            // connection this node is about to take over (its takeover
            // pending), or one whose sender's view makes this node the
            // owner and this node's does not (the views not yet agreed).
            // TCP's reset would end a connection the dispatchers still
            // serve: dropped, the client retransmits.
            let mine = pair.map(|p| p.owner == snap.self_id);
            if mine.is_some_and(|mine| (forwarded_here && !mine) || (mine && takeover_pending(w))) {
                inc(&svc.stats.view_drop);
                return HookVerdict::Stolen(pkt.discard());
            }
            // No request socket: a SYN cookie's ACK (TCP creates the child
            // from the cookie), or a stray segment.
            if f & (tcp_flags::ACK | tcp_flags::RST) == tcp_flags::ACK && pkt.syncookie_valid(&seg)
            {
                inc(&svc.stats.cookie_bypass);
                return HookVerdict::Accept(pkt);
            }
            // A late segment of one that ended with a FIN, after its entry
            // lingered out (the client's FIN sent again): to the back-end's
            // TIME_WAIT socket, which answers it as any server's does (a
            // cookie's ACK of a new connection on the tuple went above).
            if let Some(peer) = late_to(w, &key) {
                let counts = (&svc.stats.late_fwd, &svc.stats.moved_drop);
                return forward_counted(
                    net,
                    fwd,
                    (peer, EncapType::Moved),
                    &key,
                    pkt,
                    counts,
                    guard,
                );
            }
            // This node owns the connection under its view and knows
            // nothing of it: a node that joined the view (or came back)
            // took the ownership of connections another dispatcher served
            // or forwarded, which ranks second now (when one node joined):
            // its backup, which still has the socket or the moved entry.
            // Forwarded there (type 0x01: the backup never forwards it on
            // to an owner; only to its own backup if its view makes it the
            // owner and it knows nothing of it either, else it drops it).
            // The path ends (`owner::to_backup`): every such hop goes to a
            // dispatcher of a lower score, and a segment goes to an owner
            // only from the node that received it from the network.
            if let Some(backup) = owner::to_backup(pair, snap.self_id) {
                let to = (backup, EncapType::HandingOff);
                let counts = (&svc.stats.to_backup, &svc.stats.to_owner_drop);
                return forward_counted(net, fwd, to, &key, pkt, counts, guard);
            }
            // Forwarded here as to its owner, and this node's view has no
            // backup to ask: the sender's view has this node and itself,
            // this node's only itself so far (a node that joins counts
            // its peers in one by one, and may be counted in by one of
            // them first). The views do not agree yet: dropped as above,
            // where TCP's reset would end a connection the others serve.
            if forwarded_here {
                inc(&svc.stats.view_drop);
                return HookVerdict::Stolen(pkt.discard());
            }
            return HookVerdict::Accept(pkt);
        }
    };
    let key = ConnKey::of(&seg);
    let now = now_ms();
    let mut t = w.table.lock();
    if t.closed {
        return HookVerdict::Accept(pkt);
    }
    // The checksum is verified once per segment (a new hold's first one
    // is checked before its entry is made).
    let mut csum_checked = false;
    let found = t.find(&key);
    let same = found
        .and_then(|p| t.get(p))
        .map(|e| (e.info.snt_isn == info.snt_isn, e.state));
    let pos = match (found, same) {
        // The same handshake: held, or decided (then TCP's).
        (Some(pos), Some((true, state))) => {
            if state == ConnState::HandingOff {
                return handing_off(t, pos, pkt, &seg, svc);
            }
            if state == ConnState::Moved {
                // Moved, its request socket not dropped yet (`on_moved`
                // does it right after): TCP must not make a child of it.
                let peer = t.get(pos).map_or(0, |e| e.peer);
                drop(t);
                if forwarded_here {
                    hint_others(w, &key, chans, guard);
                }
                return forward_moved(net, fwd, peer, &key, pkt, svc, guard);
            }
            if state != ConnState::Held {
                return HookVerdict::Accept(pkt);
            }
            pos
        }
        (old, _) => {
            // A new handshake (its 4-tuple may have been decided before).
            if f & (tcp_flags::ACK | tcp_flags::RST) != tcp_flags::ACK
                || seg.ack_seq != info.snt_isn.wrapping_add(1)
            {
                return HookVerdict::Accept(pkt);
            }
            if t.held >= HOLD_MAX {
                inc(&svc.stats.hold_full);
                return HookVerdict::Accept(pkt);
            }
            if !pkt.csum_ok(&seg) {
                // TCP drops it.
                return HookVerdict::Accept(pkt);
            }
            csum_checked = true;
            if let Some(old) = old {
                drop(t.remove(old));
            }
            // A new connection on the tuple: the old one's memory goes.
            if let Some(l) = t.linger.as_mut() {
                l.forget(&key.tuple());
            }
            let Ok(segs) = KVec::with_capacity(8, GFP_ATOMIC) else {
                inc(&svc.stats.hold_full);
                return HookVerdict::Accept(pkt);
            };
            let entry = Entry {
                key,
                service: svc.id,
                stats: svc.stats.clone(),
                info,
                state: ConnState::Held,
                started_ms: now,
                deadline_ms: now + u64::from(svc.hold_timeout_ms),
                decided_ms: 0,
                orphan: false,
                reasm: Reasm::new(info.rcv_isn.wrapping_add(1)),
                buf: KVec::new(),
                segs,
                arrivals: 0,
                bytes: 0,
                rule: 0,
                peer: 0,
                window: seg.window,
                last_ms: 0,
                term_ms: 0,
                term_fin: false,
                synced: false,
                checked_ms: 0,
                abort_sent: false,
                owner: pair.map_or(0, |p| p.owner),
                backup: pair.map_or(0, |p| p.backup_id()),
                from: 0,
                hinted_ms: 0,
                handed: None,
                reown_due: false,
            };
            let Ok(entry) = KBox::new(entry, GFP_ATOMIC) else {
                inc(&svc.stats.hold_full);
                return HookVerdict::Accept(pkt);
            };
            let Some(pos) = t.insert(entry) else {
                inc(&svc.stats.hold_full);
                return HookVerdict::Accept(pkt);
            };
            inc(&svc.stats.held);
            if t.held == 1 {
                w.schedule_in(SWEEP_MS);
            }
            pos
        }
    };
    // A segment of a held connection.
    if f & tcp_flags::RST != 0 {
        return aborted(t, pos, pkt);
    }
    let Some(arrivals) = t.get(pos).map(|e| e.arrivals) else {
        return HookVerdict::Accept(pkt);
    };
    if seg.payload_len == 0 && f & tcp_flags::FIN == 0 && arrivals > 0 {
        // A repeated bare ACK (a window update, an answer to a SYN-ACK
        // sent again): nothing to keep.
        inc(&svc.stats.dup);
        return HookVerdict::Stolen(pkt.discard());
    }
    if !csum_checked && !pkt.csum_ok(&seg) {
        return HookVerdict::Accept(pkt);
    }
    let (held, stolen) = match pkt.steal() {
        Ok(x) => x,
        Err(pkt) => return HookVerdict::Accept(pkt),
    };
    if let Some(e) = t.get_mut(pos) {
        e.window = seg.window;
    }
    let end = add_segment(&mut t, pos, &seg, held, snap, svc, up);
    if let Some(end) = end {
        if let End::Decided(RuleVerdict::Peer(peer), rule) = end {
            if start_handoff(&mut t, pos, peer, rule, now, svc, chans) {
                sync_backup(w, &mut t, pos, peer, Placement::Pending, chans, guard);
                return HookVerdict::Stolen(stolen);
            }
            inc(&svc.stats.fallback_unsent);
        }
        sync_backup(w, &mut t, pos, snap.self_id, Placement::Local, chans, guard);
        let segs = finish(&mut t, pos, end, now);
        drop(t);
        reinject(segs);
    }
    HookVerdict::Stolen(stolen)
}

/// The bytes of an ICMP error read to find the connection it is about.
const ICMP_HEAD: usize = 128;

/// The hook (softirq, under RCU), for an ICMP or ICMPv6 error about a
/// packet a back-end sent to a client of a moved connection (a router's
/// "fragmentation needed" or "packet too big" for the back-end's reply,
/// which came back to the service address, here): forwarded to that
/// back-end, whose TCP then lowers its path MTU. `Err(pkt)`: not such an
/// error, the caller goes on.
pub(crate) fn icmp_in<'a>(
    w: &Worked<Hold>,
    net: &Net,
    pkt: HookPacket<'a>,
    guard: &rcu::Guard,
    fwd: &Fwd,
) -> Result<HookVerdict<'a>, HookPacket<'a>> {
    let Some(snap) = w.snapshot.get(guard) else {
        return Err(pkt);
    };
    if !matches!(pkt.ip_proto(), Some(IPPROTO_ICMP | IPPROTO_ICMPV6)) {
        return Err(pkt);
    }
    let mut buf = [0u8; ICMP_HEAD];
    let Some(flow) = pkt
        .head(&mut buf)
        .and_then(|(_, head)| encap::icmp_error_flow(head))
        .filter(|f| f.proto == Proto::Tcp)
    else {
        return Err(pkt);
    };
    let key = ConnKey::of_tuple(&flow.tuple);
    let Some(svc) = snap.find(key.family, &key.daddr, key.dport) else {
        return Err(pkt);
    };
    match moved_to(w, &key) {
        Some(peer) => Ok(forward_moved(net, fwd, peer, &key, pkt, svc, guard)),
        None => Err(pkt),
    }
}

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;

/// The peer that the connection `key` moved to, if it did (its last
/// segment's time is now).
fn moved_to(w: &Worked<Hold>, key: &ConnKey) -> Option<u32> {
    moved_peer(w, key, false)
}

/// The peer that the connection `key` moved to, if it did and the peer
/// has not ended it yet (no TERM).
fn moved_live(w: &Worked<Hold>, key: &ConnKey) -> Option<u32> {
    moved_peer(w, key, true)
}

/// The back-end of the connection `key` if it ended with a FIN and is
/// remembered for its back-end's `TIME_WAIT` ([`super::linger`]); the
/// memory starts again, as the back-end's `TIME_WAIT` does at a late
/// segment (`inet_twsk_reschedule`).
fn late_to(w: &Worked<Hold>, key: &ConnKey) -> Option<u32> {
    let mut t = w.table.lock();
    let l = t.linger.as_mut()?;
    let (tuple, now) = (key.tuple(), now_ms());
    let peer = l.peer(&tuple, now)?;
    l.add(tuple, peer, now + TIME_WAIT_MS);
    Some(peer)
}

fn moved_peer(w: &Worked<Hold>, key: &ConnKey, live: bool) -> Option<u32> {
    let mut t = w.table.lock();
    let pos = t.find(key)?;
    let e = t.get_mut(pos)?;
    if e.state != ConnState::Moved || (live && e.term_ms != 0) {
        return None;
    }
    e.last_ms = now_ms();
    Some(e.peer)
}

/// Forwards `pkt`, a client's segment of the connection `key` moved to
/// `peer`, to it (`moved-fwd`); dropped when it cannot be (`moved-drop`),
/// never answered.
fn forward_moved<'a>(
    net: &Net,
    fwd: &Fwd,
    peer: u32,
    key: &ConnKey,
    pkt: HookPacket<'a>,
    svc: &SvcEntry,
    guard: &rcu::Guard,
) -> HookVerdict<'a> {
    let to = (peer, EncapType::Moved);
    let counts = (&svc.stats.moved_fwd, &svc.stats.moved_drop);
    forward_counted(net, fwd, to, key, pkt, counts, guard)
}

/// Forwards `pkt` of `key` to node `to.0` as `to.1`, counted in
/// `counts.0` (sent) or `counts.1` (dropped); stolen either way.
fn forward_counted<'a>(
    net: &Net,
    fwd: &Fwd,
    (node, ty): (u32, EncapType),
    key: &ConnKey,
    pkt: HookPacket<'a>,
    (sent, dropped): (&AtomicU64, &AtomicU64),
    guard: &rcu::Guard,
) -> HookVerdict<'a> {
    let ok = fwd.forward_tcp(net, node, ty, &key.tuple(), &pkt, guard);
    inc(if ok { sent } else { dropped });
    HookVerdict::Stolen(pkt.discard())
}

/// The client reset the held connection at `pos`: what is held is dropped
/// (the application never sees the connection, counted `aborted`), the
/// reset goes on to end the request socket.
fn aborted<'a>(mut t: TableGuard<'_>, pos: (usize, usize), pkt: HookPacket<'a>) -> HookVerdict<'a> {
    let e = t.remove(pos);
    drop(t);
    if let Some(e) = e {
        inc(&e.stats.aborted);
    }
    HookVerdict::Accept(pkt)
}

/// The locked connection table.
type TableGuard<'a> = kernel::sync::lock::Guard<'a, Table, crate::sys::lock::SpinLockBhBackend>;

/// A segment of a connection whose HANDOFF_REQ is out: kept with the
/// others (data and FIN, within the budget; beyond it dropped, the client
/// sends it again), or dropped (a repeated bare ACK); a reset ends it
/// (counted `aborted`) and goes to TCP, which drops the request socket.
fn handing_off<'a>(
    mut t: TableGuard<'_>,
    pos: (usize, usize),
    pkt: HookPacket<'a>,
    seg: &TcpSeg,
    svc: &SvcEntry,
) -> HookVerdict<'a> {
    let f = seg.flags;
    if f & tcp_flags::RST != 0 {
        return aborted(t, pos, pkt);
    }
    let full = t.segs >= SEGS_TOTAL_MAX || t.get(pos).map_or(true, |e| e.segs.len() >= SEGS_MAX);
    if (seg.payload_len == 0 && f & tcp_flags::FIN == 0) || full || !pkt.csum_ok(seg) {
        inc(&svc.stats.dup);
        return HookVerdict::Stolen(pkt.discard());
    }
    let (mut held, stolen) = match pkt.steal() {
        Ok(x) => x,
        Err(pkt) => return HookVerdict::Accept(pkt),
    };
    held.detach_sock();
    let Some(e) = t.get_mut(pos) else {
        return HookVerdict::Stolen(stolen);
    };
    let off = seg.seq.wrapping_sub(e.info.rcv_isn.wrapping_add(1)) as i32;
    let arrival = e.arrivals;
    e.window = seg.window;
    if e.segs.push((off, arrival, held), GFP_ATOMIC).is_ok() {
        e.arrivals += 1;
        t.segs += 1;
    }
    HookVerdict::Stolen(stolen)
}

/// The owner's CONN_SYNC of the connection at `pos`, just decided for
/// `backend` (`placement`: pending, local) or moved there (forwarded), to
/// its backup owner, if it has one (counted `sync-tx`; an outbox that
/// refuses it loses it).
fn sync_backup(
    w: &Worked<Hold>,
    t: &mut Table,
    pos: (usize, usize),
    backend: u32,
    placement: Placement,
    chans: &Channels,
    guard: &rcu::Guard,
) {
    let own = svc_self(w, guard);
    let Some(e) = t.get_mut(pos) else {
        return;
    };
    if e.backup == 0 || e.owner != own {
        return;
    }
    let sync = conn_sync(w, e, backend, placement, guard);
    if chans.send(e.backup, OutMsg::Sync(sync)) {
        inc(&e.stats.sync_tx);
        e.synced = true;
    }
}

/// The CONN_SYNC of `e`, owned here, under the current view of its
/// service: its back-end `backend`, its placement `placement`.
fn conn_sync(
    w: &Hold,
    e: &Entry,
    backend: u32,
    placement: Placement,
    guard: &rcu::Guard,
) -> ConnSync {
    let generation = w
        .disp
        .view(e.service, guard)
        .map_or(0, |(_, v)| v.generation());
    ConnSync {
        tuple: e.key.tuple(),
        owner: e.owner,
        backup: e.backup,
        backend,
        generation,
        service: e.service,
        client_isn: e.info.rcv_isn,
        server_isn: e.info.snt_isn,
        placement,
    }
}

/// The association cache's hint (`super::dispatcher`): a segment of the
/// moved connection `key`, which this node owns, came forwarded by another
/// dispatcher; the first time, and again if one comes [`HINT_AGAIN_MS`]
/// after the last hint (a cache that lost its line: evicted, or the hint
/// lost), every other dispatcher of the service's view but its backup
/// (which has the owner's CONN_SYNC) and its back-end (for which a
/// CONN_SYNC means a takeover) gets a CONN_SYNC of it (counted `sync-tx`),
/// and its CONN_END when it ends (here, or at the dispatcher that
/// TRANSFERred it here: [`on_end`]).
fn hint_others(w: &Worked<Hold>, key: &ConnKey, chans: &Channels, guard: &rcu::Guard) {
    let own = svc_self(w, guard);
    let (sync, stats) = {
        let mut t = w.table.lock();
        let Some(e) = t.find(key).and_then(|pos| t.get_mut(pos)) else {
            return;
        };
        let now = now_ms();
        let again = e.hinted_ms == 0 || now >= e.hinted_ms + HINT_AGAIN_MS;
        if e.state != ConnState::Moved || !again || e.term_ms != 0 || own == 0 || e.owner != own {
            return;
        }
        e.hinted_ms = now;
        (
            conn_sync(w, e, e.peer, Placement::Forwarded, guard),
            e.stats.clone(),
        )
    };
    let Some((_, view)) = w.disp.view(sync.service, guard) else {
        return;
    };
    for &id in view.ids() {
        let told = id == own || id == sync.backup || id == sync.backend;
        if !told && chans.send(id, OutMsg::Sync(sync)) {
            inc(&stats.sync_tx);
        }
    }
}

/// This node's id as the dispatchers' views know it (0: none).
fn svc_self(w: &Hold, guard: &rcu::Guard) -> u32 {
    w.snapshot.get(guard).map_or(0, |s| s.self_id)
}

/// Sends the HANDOFF_REQ of the connection at `pos`, just decided for
/// `peer`, and keeps it held (`HandingOff`, counted `remote`): `false`
/// when the request could not be queued (nothing changed).
fn start_handoff(
    t: &mut Table,
    pos: (usize, usize),
    peer: u32,
    rule: u32,
    now: u64,
    svc: &SvcEntry,
    chans: &Channels,
) -> bool {
    if t.moved >= MOVED_MAX {
        return false;
    }
    let Some(e) = t.get_mut(pos) else {
        return false;
    };
    let len = (e.bytes as usize).min(e.buf.len());
    let Ok(mut request) = KVec::with_capacity(len, GFP_ATOMIC) else {
        return false;
    };
    if request
        .extend_from_slice(&e.buf[..len], GFP_ATOMIC)
        .is_err()
    {
        return false;
    }
    let head = build_req(e.key.tuple(), &e.info, tcp_clock_ms(), e.window, &[]);
    if !chans.send(peer, OutMsg::Req(ReqOut { head, request })) {
        return false;
    }
    inc(&e.stats.remote);
    e.state = ConnState::HandingOff;
    e.rule = rule;
    e.peer = peer;
    e.decided_ms = now;
    // The answer's bound: the service's hold budget, from the decision.
    e.deadline_ms = now + u64::from(svc.hold_timeout_ms);
    e.buf = KVec::new();
    true
}

/// Serves the connection at `pos`, handing off, here: its segments are
/// returned for re-injection.
fn fall_back(t: &mut Table, pos: (usize, usize), why: Fallback, now: u64) -> Release {
    let Some(e) = t.get_mut(pos) else {
        return KVec::new();
    };
    if e.state != ConnState::HandingOff {
        return KVec::new();
    }
    inc(match why {
        Fallback::Nack => &e.stats.fallback_nack,
        Fallback::PeerDown => &e.stats.fallback_peer_down,
        Fallback::Timeout => &e.stats.fallback_timeout,
    });
    e.state = ConnState::Remote;
    e.decided_ms = now;
    let segs = core::mem::take(&mut e.segs);
    t.held -= 1;
    t.decided += 1;
    t.segs -= segs.len();
    segs
}

/// The connection of `tuple` handing off to `peer`, if any.
fn handing_off_to(t: &Table, tuple: &Tuple, peer: u32) -> Option<(usize, usize)> {
    let pos = t.find(&ConnKey::of_tuple(tuple))?;
    let e = t.get(pos)?;
    (e.state == ConnState::HandingOff && e.peer == peer).then_some(pos)
}

/// The peer refused the connection of `tuple`, or it could not be sent
/// (process context): served here.
pub(crate) fn on_refused(w: &Worked<Hold>, peer: u32, tuple: &Tuple, why: Fallback) {
    let segs = {
        let mut t = w.table.lock();
        match handing_off_to(&t, tuple, peer) {
            Some(pos) => fall_back(&mut t, pos, why, now_ms()),
            None => return,
        }
    };
    reinject(segs);
}

/// The peer took the connection of `tuple` (HANDOFF_ACK, process
/// context, or its verification, softirq; under RCU): moved; its request
/// socket goes without a packet to the client, the segments held while
/// handing off are forwarded to the peer (in sequence order, as
/// `HandingOff` packets).
///
/// `true` when the peer must drop the connection instead ([`abort_term`]):
/// this node does not hold it as handing off to `peer` nor moved there, as
/// when it fell back after the hold-timeout and serves it itself, and
/// did not tell the peer yet.
#[must_use]
pub(crate) fn on_moved(
    w: &Worked<Hold>,
    net: &Net,
    peer: u32,
    tuple: &Tuple,
    (fwd, chans): (&Fwd, &Channels),
    guard: &rcu::Guard,
) -> bool {
    let (mut segs, key, snt_isn, stats) = {
        let mut t = w.table.lock();
        let Some(pos) = handing_off_to(&t, tuple, peer) else {
            let e = t.find(&ConnKey::of_tuple(tuple)).and_then(|p| t.get_mut(p));
            return match e {
                // Moved by the other of the answer and the verification.
                Some(e) if e.peer == peer && e.state == ConnState::Moved => false,
                // Served here: the peer is told once.
                Some(e) if e.peer == peer && e.state == ConnState::Remote => {
                    !core::mem::replace(&mut e.abort_sent, true)
                }
                _ => true,
            };
        };
        let Some(e) = t.get_mut(pos) else {
            return false;
        };
        inc(&e.stats.handed_off);
        e.state = ConnState::Moved;
        e.decided_ms = now_ms();
        e.last_ms = e.decided_ms;
        let segs = core::mem::take(&mut e.segs);
        let (key, isn, stats) = (e.key, e.info.snt_isn, e.stats.clone());
        t.held -= 1;
        t.moved += 1;
        t.segs -= segs.len();
        // The backup can take it over from now on.
        sync_backup(w, &mut t, pos, peer, Placement::Forwarded, chans, guard);
        (segs, key, isn, stats)
    };
    // The entry is moved first: a segment that finds no request socket
    // from now on is forwarded by the hook, not reset by TCP.
    segs.sort_unstable_by_key(|&(off, arrival, _)| (off, arrival));
    for (_, _, skb) in segs.into_iter() {
        let t = key.tuple();
        if fwd.forward_tcp(net, peer, EncapType::HandingOff, &t, &skb, guard) {
            inc(&stats.moved_fwd);
        } else {
            inc(&stats.moved_drop);
        }
    }
    drop_request(
        net, key.family, &key.saddr, key.sport, &key.daddr, key.dport, snt_isn,
    );
    false
}

/// The TERM that tells the back-end to which a connection was handed off
/// that the front-end serves it (it fell back after its hold-timeout, or
/// the answer came for a connection it no longer holds): the back-end
/// drops its replay or kills the connection it adopted, without a packet
/// to the client.
pub(crate) fn abort_term(tuple: Tuple) -> OutMsg {
    OutMsg::Term(Term {
        tuple,
        reason: term::TIMEOUT,
    })
}

/// The back-end `peer` saw the connection of `tuple` end (TERM, process
/// context, `reason` its `term::*`): its entry lingers [`LINGER_MS`],
/// forwarding late segments, then goes (one that ended with a FIN is
/// remembered for the back-end's `TIME_WAIT`: [`super::linger`]); the
/// other dispatchers that list it get a CONN_END ([`end_to`]).
pub(crate) fn on_term(
    w: &Worked<Hold>,
    peer: u32,
    tuple: &Tuple,
    reason: u32,
    chans: &Channels,
    guard: &rcu::Guard,
) {
    let own = svc_self(w, guard);
    let (to, hinted, service, stats, end) = {
        let mut t = w.table.lock();
        let Some(pos) = t.find(&ConnKey::of_tuple(tuple)) else {
            return;
        };
        let Some(e) = t.get_mut(pos) else {
            return;
        };
        if e.state != ConnState::Moved || e.peer != peer || e.term_ms != 0 {
            return;
        }
        e.term_ms = now_ms().max(1);
        e.term_fin = reason != term::RST;
        inc(&e.stats.ended);
        let end = ConnEnd {
            tuple: *tuple,
            client_isn: e.info.rcv_isn,
        };
        (
            end_to(e, own),
            e.hinted_ms != 0,
            e.service,
            e.stats.clone(),
            end,
        )
    };
    let send = |to: u32| {
        if chans.send(to, OutMsg::End(end)) {
            inc(&stats.end_tx);
        }
    };
    // The other dispatchers that list it: CONN_END (lost if the outbox
    // refuses it: the entry idles out there).
    for id in to.into_iter().flatten() {
        send(id);
    }
    // Those whose cache it is in (the hint went to every one).
    if hinted {
        end_hinted(
            w,
            &end,
            service,
            [Some(own), to[0], to[1]],
            chans,
            guard,
            &stats,
        );
    }
}

/// The CONN_END of a connection whose association cache hint went to the
/// other dispatchers of `service`'s view (`hint_others`): to every one
/// but those in `but` (counted `end-tx`; lost if the outbox refuses it:
/// the line goes when the cache needs it, or at the tuple's next SYN).
fn end_hinted(
    w: &Hold,
    end: &ConnEnd,
    service: u32,
    but: [Option<u32>; 3],
    chans: &Channels,
    guard: &rcu::Guard,
    stats: &HoldStats,
) {
    let Some((_, view)) = w.disp.view(service, guard) else {
        return;
    };
    for &id in view.ids() {
        if !but.contains(&Some(id)) && chans.send(id, OutMsg::End(*end)) {
            inc(&stats.end_tx);
        }
    }
}

/// Where CONN_ENDs of the dispatched connection `e` go once it ended
/// here: its backup if this node owns it (its record); its new owner and
/// backup if this node handed it over to them in a TRANSFER (their entry
/// and record name this node as the sender).
fn end_to(e: &Entry, own: u32) -> [Option<u32>; 2] {
    let other = |id: u32| Some(id).filter(|&id| id != 0 && id != own);
    if e.owner == own {
        [other(e.backup), None]
    } else {
        [other(e.owner), other(e.backup)]
    }
}

/// A CONN_END from `peer` (the channels' work, process context, under
/// RCU): this node's record of `tuple` as its backup goes if `peer` sent
/// it (its owner's CONN_SYNC, or a TRANSFER) or owns it (a TRANSFER's new
/// owner, which its back-end's TERM reached), and its moved entry of it
/// lingers out as at a TERM if `peer` handed it over here in a TRANSFER
/// (the back-end's TERM went to `peer`), or this node handed it to `peer`
/// and kept it as its backup. Counted `end-rx` by the service,
/// once. Its association cache line goes if `peer` owned it there; if
/// this node had told the other dispatchers where it went, they get its
/// CONN_END too.
pub(crate) fn on_end(
    w: &Worked<Hold>,
    peer: u32,
    end: &ConnEnd,
    chans: &Channels,
    guard: &rcu::Guard,
) {
    let own = svc_self(w, guard);
    let tuple = &end.tuple;
    // Its line in the association cache, if `peer` owned it there.
    w.disp.uncache(tuple, Some(peer));
    let record = w.disp.on_end(peer, end);
    let entry = {
        let mut t = w.table.lock();
        t.find(&ConnKey::of_tuple(tuple))
            .and_then(|pos| t.get_mut(pos))
            // Not a later connection on the tuple (the client reused its
            // port before this CONN_END came).
            .filter(|e| e.info.rcv_isn == end.client_isn)
            .filter(|e| e.state == ConnState::Moved && e.term_ms == 0)
            // Handed over here by `peer`, or by this node to `peer`.
            .filter(|e| e.from == peer || (e.owner == peer && e.owner != own))
            .map(|e| {
                e.term_ms = now_ms().max(1);
                // The reason is not told: its back-end may be in TIME_WAIT.
                e.term_fin = true;
                inc(&e.stats.ended);
                (e.service, e.hinted_ms != 0, e.stats.clone())
            })
    };
    if let Some((service, true, stats)) = &entry {
        end_hinted(
            w,
            end,
            *service,
            [Some(own), Some(peer), None],
            chans,
            guard,
            stats,
        );
    }
    let service = entry.map(|(id, _, _)| id).or(record);
    if let Some(st) = service.and_then(|id| service_stats(w, id, guard)) {
        inc(&st.end_rx);
    }
}

/// The membership changed (the channels' work, after the dispatchers'
/// views): the hold's work takes over what this node now owns
/// ([`Hold::take_over`]), outside the channels' RCU read-side section.
pub(crate) fn request_takeover(w: &Worked<Hold>) {
    w.takeover_asked.fetch_add(1, Relaxed);
    w.kick();
}

/// A takeover was asked of `w` and is not done yet.
fn takeover_pending(w: &Hold) -> bool {
    w.takeover_asked.load(Relaxed) != w.takeover_done.load(Relaxed)
}

impl Hold {
    /// The hold's work (process context, no lock held): the connections
    /// moved to a back-end that this node backed up and owns now
    /// (`Dispatch::take_over`) become its own moved connections, whose
    /// segments it forwards to that back-end, counted `takeover`; their
    /// new backup and their back-end get their CONN_SYNC (the back-end's
    /// TERM comes here now). One whose back-end is not up, or
    /// already listed here, is left (TCP answers its segments).
    /// Fails only when it could not allocate (nothing taken: it is to
    /// run again).
    fn take_over(&self, net: &Net) -> Result {
        let taken = self.disp.take_over()?;
        for &(s, generation, backup) in taken.iter() {
            let (own, stats) = {
                let guard = rcu::Guard::new();
                let Some((own, stats)) = self.adoptable(net, &s, true, &guard) else {
                    // This node serves it: nothing to take over, but its
                    // back-end's retransmissions backed off meanwhile.
                    if s.backend == svc_self(self, &guard) {
                        if let Some(st) = NetState::of(net, &guard) {
                            st.cluster_ref().taken_here(s.tuple);
                        }
                    }
                    continue;
                };
                (own, stats)
            };
            if !self.adopt(&s, (own, backup, 0), &stats, GFP_KERNEL) {
                continue;
            }
            inc(&stats.takeover);
            let sync = ConnSync {
                owner: own,
                backup,
                generation,
                ..s
            };
            // To the new backup, and to the back-end (its TERM comes here
            // now; it need not wait for the client's next segment to keep
            // the connection), unless that is the backup.
            let to_backend = (s.backend != backup).then_some(s.backend);
            let guard = rcu::Guard::new();
            if let Some(st) = NetState::of(net, &guard) {
                let chans = st.cluster_ref().channels();
                for to in [Some(backup).filter(|&b| b != 0), to_backend]
                    .into_iter()
                    .flatten()
                {
                    if chans.send(to, OutMsg::Sync(sync)) {
                        inc(&stats.sync_tx);
                    }
                }
            }
        }
        Ok(())
    }

    /// This node's id and the counters of `s`'s service, if this node can
    /// serve `s` as a moved connection: its service is held here and its
    /// back-end is another node, up in this node's membership if `need_up`
    /// (a TRANSFER's sender vouches for it: a node that joins may count
    /// the back-end in only a moment after the TRANSFER came).
    fn adoptable(
        &self,
        net: &Net,
        s: &ConnSync,
        need_up: bool,
        guard: &rcu::Guard,
    ) -> Option<(u32, Arc<HoldStats>)> {
        let snap = self.snapshot.get(guard)?;
        let stats = snap
            .services
            .iter()
            .find(|x| x.id == s.service)?
            .stats
            .clone();
        let up = !need_up
            || NetState::of(net, guard).is_some_and(|st| {
                st.cluster_ref()
                    .channels()
                    .members(guard)
                    .contains(&s.backend)
            });
        (up && s.backend != snap.self_id).then_some((snap.self_id, stats))
    }

    /// Lists `s` as this node's own moved connection (owner `own`, backup
    /// `backup`, handed over by `from`, 0 for none): its segments go to its
    /// back-end from here on. `false` when not listed: no memory, the
    /// table full or closed, or the tuple already listed for this
    /// connection or a handshake. A moved entry of an earlier connection
    /// on the tuple (another client ISN: the client reused its port) whose
    /// end never reached this node (its TERM went to the owner of the
    /// time) is stale: it would send the new connection's segments to the
    /// old back-end. It is replaced, counted `stale-replaced`.
    fn adopt(
        &self,
        s: &ConnSync,
        (own, backup, from): (u32, u32, u32),
        stats: &Arc<HoldStats>,
        flags: Flags,
    ) -> bool {
        let now = now_ms();
        let entry = Entry {
            key: ConnKey::of_tuple(&s.tuple),
            service: s.service,
            stats: stats.clone(),
            info: ReqInfo {
                rcv_isn: s.client_isn,
                snt_isn: s.server_isn,
                ..ReqInfo::default()
            },
            state: ConnState::Moved,
            started_ms: now,
            deadline_ms: 0,
            decided_ms: now,
            orphan: false,
            reasm: Reasm::new(s.client_isn.wrapping_add(1)),
            buf: KVec::new(),
            segs: KVec::new(),
            arrivals: 0,
            bytes: 0,
            rule: 0,
            peer: s.backend,
            window: 0,
            last_ms: now,
            term_ms: 0,
            term_fin: false,
            synced: false,
            checked_ms: 0,
            abort_sent: false,
            owner: own,
            backup,
            from,
            hinted_ms: 0,
            handed: None,
            reown_due: false,
        };
        let Ok(entry) = KBox::new(entry, flags) else {
            return false;
        };
        let mut t = self.table.lock();
        if t.closed {
            return false;
        }
        if let Some(pos) = t.find(&entry.key) {
            let stale = t
                .get(pos)
                .is_some_and(|e| e.state == ConnState::Moved && e.info.rcv_isn != s.client_isn);
            if !stale {
                return false;
            }
            drop(t.remove(pos));
            inc(&stats.stale_replaced);
        }
        if t.moved >= MOVED_MAX {
            return false;
        }
        if t.insert(entry).is_none() {
            return false;
        }
        // Inserted as held: it is moved.
        t.held -= 1;
        t.moved += 1;
        true
    }

    /// Marks the moved connection `tuple`, TRANSFERred here, as one whose
    /// back-end is still to be told ([`Self::send_reowns`]).
    fn reown_later(&self, tuple: &Tuple) {
        let mut t = self.table.lock();
        if let Some(e) = t
            .find(&ConnKey::of_tuple(tuple))
            .and_then(|pos| t.get_mut(pos))
        {
            e.reown_due = true;
            self.reown_due.store(true, Relaxed);
        }
    }

    /// The hold's work, after a change of the membership: the back-ends
    /// of connections TRANSFERred here that were not told yet, and whose
    /// channel is up now, get their CONN_SYNC (counted `sync-tx`).
    /// Returns whether some still wait (for their back-end to come up, or
    /// for room in the outbox).
    fn send_reowns(&self, net: &Net) -> Result<bool> {
        let n = self.table.lock().moved;
        let mut due: KVVec<(ConnSync, Arc<HoldStats>)> = KVVec::with_capacity(n, GFP_KERNEL)?;
        let guard = rcu::Guard::new();
        let Some(st) = NetState::of(net, &guard) else {
            return Ok(false);
        };
        let chans = st.cluster_ref().channels();
        let up = chans.members(&guard);
        let own = svc_self(self, &guard);
        let mut left = false;
        {
            let mut t = self.table.lock();
            for b in 0..t.buckets.len() {
                for i in 0..t.buckets[b].len() {
                    let Some(e) = t.get_mut((b, i)) else { continue };
                    if !e.reown_due {
                        continue;
                    }
                    // Ended, or handed on to another owner since: that
                    // one tells the back-end.
                    if e.state != ConnState::Moved || e.term_ms != 0 || e.owner != own {
                        e.reown_due = false;
                        continue;
                    }
                    if !up.contains(&e.peer) || due.len() == due.capacity() {
                        left = true;
                        continue;
                    }
                    e.reown_due = false;
                    let sync = conn_sync(self, e, e.peer, Placement::Forwarded, &guard);
                    // Within the capacity: no allocation.
                    due.push((sync, e.stats.clone()), GFP_ATOMIC)?;
                }
            }
        }
        for (sync, stats) in due.iter() {
            if chans.send(sync.backend, OutMsg::Sync(*sync)) {
                inc(&stats.sync_tx);
            } else {
                left = true;
                self.reown_later(&sync.tuple);
            }
        }
        Ok(left)
    }

    /// Whether `tuple` is listed here as moved to `backend`.
    fn lists_moved(&self, tuple: &Tuple, backend: u32) -> bool {
        let t = self.table.lock();
        t.find(&ConnKey::of_tuple(tuple))
            .and_then(|pos| t.get(pos))
            .is_some_and(|e| e.state == ConnState::Moved && e.peer == backend)
    }

    /// After a change of the view (the hold's work, process context): the
    /// moved connections this node owns, or owned while the owner it
    /// handed them to is not in the view any more, go to their new owner
    /// and backup in TRANSFERs (counted `transfer-tx`, per
    /// `owner::handover`); this node keeps its entry and forwards the
    /// segments that still reach it (a node that joined ranks it second:
    /// it is the backup the new owner forwards to until the TRANSFER came,
    /// `to-backup`). An entry is marked handed over only once its TRANSFER
    /// to the new owner is queued. The backup of one it still owns
    /// changed: the new backup gets its CONN_SYNC. Returns `false` when
    /// some could not be sent (no memory, the outbox full): the work runs
    /// again soon and sends the rest.
    fn transfer(&self, net: &Net) -> Result<bool> {
        let n = self.table.lock().moved;
        if n == 0 {
            return Ok(true);
        }
        let mut complete = true;
        // (destination, entry), decided under the table's lock.
        let mut out: KVVec<(u32, ConnSync, Arc<HoldStats>)> =
            KVVec::with_capacity(2 * n, GFP_KERNEL)?;
        let mut syncs: KVVec<(ConnSync, Arc<HoldStats>)> = KVVec::with_capacity(n, GFP_KERNEL)?;
        {
            let guard = rcu::Guard::new();
            let own = svc_self(self, &guard);
            let mut t = self.table.lock();
            let nb = t.buckets.len();
            'all: for b in 0..nb {
                for i in 0..t.buckets[b].len() {
                    let Some(e) = t.get_mut((b, i)) else { continue };
                    if e.state != ConnState::Moved || e.term_ms != 0 || own == 0 || e.owner == 0 {
                        continue;
                    }
                    let Some((_, view)) = self.disp.view(e.service, &guard) else {
                        continue;
                    };
                    // Handed over to an owner that is still up: its own.
                    if e.owner != own && view.contains(e.owner) {
                        continue;
                    }
                    if out.len() + 2 > out.capacity() || syncs.len() == syncs.capacity() {
                        // More than counted above: the rest at the next run.
                        complete = false;
                        break 'all;
                    }
                    let tuple = e.key.tuple();
                    let Some(pair) = view.pair(&KernelCrc32c, &tuple) else {
                        continue;
                    };
                    let sync = ConnSync {
                        tuple,
                        owner: pair.owner,
                        backup: pair.backup_id(),
                        backend: e.peer,
                        generation: view.generation(),
                        service: e.service,
                        client_isn: e.info.rcv_isn,
                        server_isn: e.info.snt_isn,
                        placement: Placement::Forwarded,
                    };
                    // Within the capacities reserved: no allocation.
                    match owner::handover(&KernelCrc32c, view, own, e.backup, &tuple) {
                        Handover::Keep => {}
                        Handover::Resync(_) => syncs.push((sync, e.stats.clone()), GFP_ATOMIC)?,
                        Handover::Transfer { to, .. } => {
                            for to in to.into_iter().flatten() {
                                out.push((to, sync, e.stats.clone()), GFP_ATOMIC)?;
                            }
                            continue;
                        }
                    }
                    e.owner = own;
                    e.backup = sync.backup;
                }
            }
        }
        out.sort_unstable_by_key(|x| x.0);
        // One TRANSFER per destination and batch of entries: (first,
        // end, batch number) into `out`.
        let mut groups: KVVec<(usize, usize, u32)> =
            KVVec::with_capacity(out.len().div_ceil(TRANSFER_BATCH) + 2, GFP_KERNEL)?;
        let mut i = 0;
        while i < out.len() {
            let mut j = i;
            while j < out.len() && out[j].0 == out[i].0 && j - i < TRANSFER_BATCH {
                j += 1;
            }
            let batch = self.transfer_batch.fetch_add(1, Relaxed) as u32;
            groups.push((i, j, batch), GFP_KERNEL)?;
            i = j;
        }
        // The entries handed to their new owner are marked before their
        // TRANSFER goes (its TRANSFER_ACK may come back before this work
        // looks again).
        self.mark_handed(&out, &groups);
        // Whether each group's TRANSFER was queued.
        let mut sent: KVVec<bool> = KVVec::with_capacity(groups.len(), GFP_KERNEL)?;
        {
            let guard = rcu::Guard::new();
            let Some(st) = NetState::of(net, &guard) else {
                return Ok(true);
            };
            let chans = st.cluster_ref().channels();
            for (sync, stats) in syncs.iter() {
                if chans.send(sync.backup, OutMsg::Sync(*sync)) {
                    inc(&stats.sync_tx);
                }
            }
            for &(i, j, batch) in groups.iter() {
                let mut ok = false;
                if let Ok(mut entries) = KVec::with_capacity(j - i, GFP_ATOMIC) {
                    for x in &out[i..j] {
                        // Within the capacity: no allocation.
                        let _ = entries.push(x.1, GFP_ATOMIC);
                    }
                    let msg = TransferMsg {
                        generation: out[i].1.generation,
                        batch,
                        entries,
                    };
                    ok = chans.send(out[i].0, OutMsg::Transfer(msg));
                }
                if ok {
                    for (_, _, stats) in &out[i..j] {
                        inc(&stats.transfer_tx);
                    }
                } else {
                    complete = false;
                }
                // Within the capacity: no allocation.
                sent.push(ok, GFP_ATOMIC)?;
            }
        }
        // Those sent to their new owner name it from now on; the others
        // are not handed over (the work runs again).
        let mut t = self.table.lock();
        for (&(i, j, batch), &ok) in groups.iter().zip(sent.iter()) {
            for (to, sync, _) in &out[i..j] {
                if *to != sync.owner {
                    continue;
                }
                let Some(e) = t
                    .find(&ConnKey::of_tuple(&sync.tuple))
                    .and_then(|pos| t.get_mut(pos))
                else {
                    continue;
                };
                if e.state != ConnState::Moved {
                    continue;
                }
                if ok {
                    e.owner = sync.owner;
                    e.backup = sync.backup;
                } else if e.handed.is_some_and(|h| h.to == *to && h.batch == batch) {
                    e.handed = None;
                }
            }
        }
        Ok(complete)
    }

    /// Marks the entries of `out` (by TRANSFER: `groups`, each its first,
    /// its end and its batch number) that go to their new owner as handed
    /// over in their TRANSFER.
    fn mark_handed(&self, out: &[(u32, ConnSync, Arc<HoldStats>)], groups: &[(usize, usize, u32)]) {
        let mut t = self.table.lock();
        for &(i, j, batch) in groups {
            let len = (j - i) as u32;
            for (to, sync, _) in &out[i..j] {
                if *to != sync.owner {
                    continue;
                }
                if let Some(e) = t
                    .find(&ConnKey::of_tuple(&sync.tuple))
                    .and_then(|pos| t.get_mut(pos))
                {
                    if e.state == ConnState::Moved {
                        e.handed = Some(Handed {
                            to: *to,
                            batch,
                            len,
                        });
                    }
                }
            }
        }
    }
}

/// A TRANSFER_ACK from `peer` (the channels' work, process context, under
/// RCU): if `peer` took every entry of that TRANSFER, the connections this
/// node handed over in it are `peer`'s (counted `transfer-acked`), and
/// each that this node does not back up under its view lingers out as at a
/// TERM ([`LINGER_MS`], forwarding the segments still on their way to it;
/// claim 17: the old owner that is neither owner nor backup deletes it),
/// and the dispatchers it told where the connection went get its CONN_END
/// (their cache lines name this node). One that `peer` serves itself stays
/// (its TERM comes here). Otherwise nothing changes: the entries stay
/// until the back-end's TERM, or idle out.
pub(crate) fn on_transfer_ack(
    w: &Worked<Hold>,
    peer: u32,
    ack: &TransferAck,
    chans: &Channels,
    guard: &rcu::Guard,
) {
    let own = svc_self(w, guard);
    // Those whose cache hint went out.
    let mut hinted: KVec<Unhint> = KVec::new();
    {
        let now = now_ms();
        let mut t = w.table.lock();
        let n = t.buckets.len();
        for b in 0..n {
            for i in 0..t.buckets[b].len() {
                let Some(e) = t.get_mut((b, i)) else { continue };
                let Some(h) = e.handed.filter(|h| h.to == peer && h.batch == ack.batch) else {
                    continue;
                };
                if e.state != ConnState::Moved || ack.accepted != h.len {
                    continue;
                }
                e.handed = None;
                inc(&e.stats.transfer_acked);
                let pair = w.disp.pair(e.service, &e.key.tuple(), guard);
                if owner::acked(pair, own, peer, e.peer) == Acked::Keep || e.term_ms != 0 {
                    continue;
                }
                e.term_ms = now.max(1);
                if e.hinted_ms != 0 {
                    let u = Unhint {
                        end: ConnEnd {
                            tuple: e.key.tuple(),
                            client_isn: e.info.rcv_isn,
                        },
                        service: e.service,
                        but: [Some(own), Some(peer), Some(e.backup)],
                        stats: e.stats.clone(),
                    };
                    // Without memory its lines go by LRU or the next SYN.
                    let _ = hinted.push(u, GFP_ATOMIC);
                }
            }
        }
    }
    for u in hinted.iter() {
        end_hinted(w, &u.end, u.service, u.but, chans, guard, &u.stats);
    }
}

/// A connection whose association cache hint is to be ended (CONN_END to
/// the dispatchers of its service's view but `but`).
struct Unhint {
    end: ConnEnd,
    service: u32,
    but: [Option<u32>; 3],
    stats: Arc<HoldStats>,
}

/// A TRANSFER from `peer` (the channels' work, process context, under
/// RCU): each entry checked (`owner::check_transfer`, against the
/// service's configured dispatchers); one for this node as the owner
/// becomes its moved connection (its segments go to the back-end from
/// here on; one this node serves itself as the back-end needs nothing),
/// one for it as the backup its record. Counted `transfer-rx` or
/// `transfer-rejected` by the entry's service.
pub(crate) fn on_transfer(
    w: &Worked<Hold>,
    net: &Net,
    peer: u32,
    m: &TransferMsg,
    chans: &Channels,
    guard: &rcu::Guard,
) {
    let mut adopted = false;
    let mut accepted = 0u32;
    for s in m.entries.iter() {
        let Some(stats) = service_stats(w, s.service, guard) else {
            continue;
        };
        let taken = match w.disp.on_entry(peer, s) {
            Ok(Role::Owner) => match w.adoptable(net, s, false, guard) {
                Some((own, arc)) => {
                    let done = w.adopt(s, (own, s.backup, peer), &arc, GFP_ATOMIC);
                    adopted |= done;
                    if done {
                        // Its back-end's TERM comes here from now on
                        // (`backend::reown`); told when its channel is up
                        // (a node that joins gets its TRANSFERs before all
                        // its channels are).
                        let sync = ConnSync { owner: own, ..*s };
                        if chans.members(guard).contains(&s.backend)
                            && chans.send(s.backend, OutMsg::Sync(sync))
                        {
                            inc(&stats.sync_tx);
                        } else {
                            w.reown_later(&s.tuple);
                        }
                    }
                    // Listed already (the same entry twice): taken.
                    done || w.lists_moved(&s.tuple, s.backend)
                }
                // This node serves it (TCP has its socket): nothing to do.
                None => s.backend == svc_self(w, guard),
            },
            Ok(_) => true,
            Err(_) => false,
        };
        accepted += u32::from(taken);
        inc(if taken {
            &stats.transfer_rx
        } else {
            &stats.transfer_rejected
        });
    }
    // Lost if the outbox refuses it: the sender keeps its entries (they
    // end at the back-end's TERM, or idle out).
    let ack = TransferAck {
        generation: m.generation,
        batch: m.batch,
        accepted,
    };
    chans.send(peer, OutMsg::TransferAck(ack));
    // The sweep forgets it when its time comes (the work may be idle).
    if adopted {
        w.kick();
    }
}

/// The membership changed (process context): connections handing off to
/// a peer that is not up any more are served here.
pub(crate) fn on_members(w: &Worked<Hold>, up: &[u32]) {
    let mut out: KVec<Release> = KVec::new();
    {
        let now = now_ms();
        let mut t = w.table.lock();
        let n = t.buckets.len();
        for b in 0..n {
            for i in 0..t.buckets[b].len() {
                let gone = t
                    .get((b, i))
                    .is_some_and(|e| e.state == ConnState::HandingOff && !up.contains(&e.peer));
                if gone && out.reserve(1, GFP_ATOMIC).is_ok() {
                    let segs = fall_back(&mut t, (b, i), Fallback::PeerDown, now);
                    // Within the capacity reserved above: does not allocate or fail.
                    let _ = out.push(segs, GFP_ATOMIC);
                }
            }
        }
    }
    for segs in out {
        reinject(segs);
    }
}

/// Adds a stolen segment to the held connection at `pos`; `Some` when the
/// hold ends with it.
fn add_segment(
    t: &mut Table,
    pos: (usize, usize),
    seg: &TcpSeg,
    held: HeldSkb,
    snap: &Snapshot,
    svc: &SvcEntry,
    up: &[u32],
) -> Option<End> {
    let Table {
        buckets,
        scratch,
        segs: total,
        ..
    } = t;
    let Some(e) = buckets
        .get_mut(pos.0)
        .and_then(|b| b.get_mut(pos.1))
        .and_then(|e| e.as_deref_mut())
    else {
        // Not reached: `pos` is the entry's.
        return Some(End::OverBytes);
    };
    let base = e.info.rcv_isn.wrapping_add(1);
    let off = seg.seq.wrapping_sub(base) as i32;
    let fin = seg.flags & tcp_flags::FIN != 0;
    let mut keep = e.arrivals == 0 || fin;
    let mut end = None;
    if seg.payload_len > 0 {
        if e.buf.is_empty() {
            match KVec::from_elem(0u8, MAX_HEADER, GFP_ATOMIC) {
                Ok(buf) => e.buf = buf,
                // No memory for the request: serve it locally now.
                Err(_) => end = Some(End::OverBytes),
            }
        }
        if end.is_none() {
            // The part of the payload that may fall in the buffer.
            let skip = if off < 0 { off.unsigned_abs() } else { 0 };
            let room = (MAX_HEADER as i64 - i64::from(off.max(0))).max(0) as u32;
            let take = seg.payload_len.saturating_sub(skip).min(room);
            let data_seq = seg.seq.wrapping_add(skip);
            let chunk = &mut scratch[..take as usize];
            if take == 0 || !held.copy_payload(seg, skip, chunk) {
                // Entirely before the base (a retransmission of what TCP
                // needs anyway) or past the buffer: keep it for TCP.
                keep = true;
            } else {
                match e.reasm.add(&mut e.buf, data_seq, chunk) {
                    Added::New(_) | Added::Beyond => keep = true,
                    Added::Duplicate => {}
                    Added::Fragmented => {
                        keep = true;
                        end = Some(End::OverBytes);
                    }
                }
            }
        }
    }
    // BTCP acknowledges the request bytes it holds while the headers are
    // incomplete, as TCP would: a client whose request does not fit in its
    // first flight (10 segments) sends the rest (a repeated segment: the
    // ACK got lost, say it again). Those bytes reach TCP on release (or the
    // connection ends with the hold). Once the headers are complete the
    // decision comes now: the node that serves the connection acknowledges
    // (this node's TCP, or the back-end's, directly to the client), so a
    // handed-off connection never had a packet from here but the SYN-ACK.
    if end.is_none() && seg.payload_len > 0 {
        let contiguous = e.reasm.contiguous();
        if matches!(request::parse(&e.buf[..contiguous]), Parse::Incomplete) {
            held.ack_request(base.wrapping_add(contiguous as u32));
        }
    }
    if !keep {
        inc(&e.stats.dup);
        drop(held);
        return end;
    }
    // A held segment keeps no reference on the request socket (what it
    // learned is in the entry): the listener, and with it the namespace,
    // can go while connections are held (a closing listener drops its
    // requests; the released ACK then finds none and TCP resets it). On
    // release TCP looks the socket up again: the first segment finds the
    // request and makes the child, the later ones find the child.
    let mut held = held;
    held.detach_sock();
    if e.segs.push((off, e.arrivals, held), GFP_ATOMIC).is_err() {
        // Out of memory (the segment is dropped: the client sends it
        // again): serve what is held.
        end = Some(End::OverBytes);
    } else {
        *total += 1;
        if e.segs.len() >= SEGS_MAX || *total >= SEGS_TOTAL_MAX {
            // At a segment budget: serve what is held.
            end = Some(End::OverBytes);
        }
    }
    e.arrivals += 1;
    if end.is_some() {
        return end;
    }
    let contiguous = e.reasm.contiguous();
    e.bytes = contiguous as u32;
    if contiguous == 0 && !fin {
        return None;
    }
    let parsed = request::parse(&e.buf[..contiguous]);
    match &parsed {
        Parse::Complete(r) => inc(match r.kind() {
            Kind::Http1 => &e.stats.http1,
            Kind::Http2 => &e.stats.http2,
            Kind::Tls => &e.stats.tls,
        }),
        Parse::Malformed => inc(&e.stats.malformed),
        Parse::Incomplete => {
            return if contiguous >= MAX_HEADER {
                Some(End::OverBytes)
            } else if fin {
                Some(End::Fin)
            } else {
                None
            };
        }
    }
    let (verdict, rule) = svc.rules.decide(&parsed, snap.self_id, up);
    Some(End::Decided(verdict, rule))
}

/// Ends the hold of the connection at `pos`: it is decided (listed on),
/// its segments are returned for re-injection.
fn finish(t: &mut Table, pos: (usize, usize), end: End, now: u64) -> Release {
    let Some(e) = t.get_mut(pos) else {
        return KVec::new();
    };
    let (state, rule, peer) = match end {
        End::Decided(RuleVerdict::Local, rule) => (ConnState::Local, rule, 0),
        End::Decided(RuleVerdict::Peer(p), rule) => (ConnState::Remote, rule, p),
        _ => (ConnState::Local, 0, 0),
    };
    match end {
        End::OverBytes => inc(&e.stats.over_bytes),
        End::OverTime => inc(&e.stats.over_time),
        End::Fin => inc(&e.stats.aborted),
        End::Decided(..) | End::Removed => {}
    }
    inc(match state {
        ConnState::Remote => &e.stats.remote,
        _ => &e.stats.local,
    });
    e.state = state;
    e.rule = rule;
    e.peer = peer;
    e.decided_ms = now;
    e.buf = KVec::new();
    let segs = core::mem::take(&mut e.segs);
    t.held -= 1;
    t.decided += 1;
    t.segs -= segs.len();
    segs
}

impl Run for Hold {
    /// The sweep: releases holds past their timeout (served locally,
    /// counted `over-time`), forgets decided connections after 60 s or
    /// beyond the bound, drops holds whose device went; bounded work per run.
    fn run(&self) -> Option<u32> {
        // The takeovers asked before this one looks at the records (the
        // views they follow are published): one asked meanwhile runs again.
        let asked = self.takeover_asked.load(Relaxed);
        if asked != self.takeover_done.load(Relaxed) {
            if self.take_over(self.ns.get()).is_err() {
                // Out of memory: again at the next run, pending meanwhile.
                return Some(SWEEP_MS);
            }
            self.takeover_done.store(asked, Relaxed);
            self.transfer_due.store(true, Relaxed);
        }
        // What could not be sent goes at a later run (the forwarding
        // through the backup serves the connections meanwhile).
        let transfer_due =
            self.transfer_due.load(Relaxed) && !matches!(self.transfer(self.ns.get()), Ok(true));
        self.transfer_due.store(transfer_due, Relaxed);
        // Those left wait for the next change of the membership (which
        // runs this work again).
        if self.reown_due.swap(false, Relaxed)
            && !matches!(self.send_reowns(self.ns.get()), Ok(false))
        {
            self.reown_due.store(true, Relaxed);
        }
        let mut out: KVec<Release> = match KVec::with_capacity(SWEEP_BUDGET, GFP_KERNEL) {
            Ok(v) => v,
            Err(_) => return Some(SWEEP_MS),
        };
        // Moved connections forgotten (their conntrack entries go too) and
        // handoffs given up (their peers are told).
        let mut gone: KVec<Conn> = match KVec::with_capacity(SWEEP_BUDGET, GFP_KERNEL) {
            Ok(v) => v,
            Err(_) => return Some(SWEEP_MS),
        };
        let mut aborts: KVec<(u32, Tuple)> = match KVec::with_capacity(SWEEP_BUDGET, GFP_KERNEL) {
            Ok(v) => v,
            Err(_) => return Some(SWEEP_MS),
        };
        // Connections served here that ended: their backups get a CONN_END.
        let mut ends: KVec<(u32, ConnEnd, Arc<HoldStats>)> =
            match KVec::with_capacity(SWEEP_BUDGET, GFP_KERNEL) {
                Ok(v) => v,
                Err(_) => return Some(SWEEP_MS),
            };
        let net = self.ns.get();
        let now = now_ms();
        let more = {
            let mut t = self.table.lock();
            if t.closed {
                return None;
            }
            // Ended connections whose TIME_WAIT passed (the others go when
            // looked up, or when the memory needs room).
            if let Some(l) = t.linger.as_mut() {
                l.expire(now, SWEEP_BUDGET);
            }
            // Beyond the bound of decided ones, the oldest go first: the
            // cut-off age that leaves at most DECIDED_MAX.
            let excess = t.decided.saturating_sub(DECIDED_MAX);
            let age_cut = now.saturating_sub(DECIDED_KEEP_MS);
            // Beyond the bound: decided before this (0: none).
            let mut bound_cut = 0;
            if excess > 0 {
                // Find the decided time of the `excess`-th oldest (a
                // linear pass per step: rare, bounded by the table).
                let mut oldest = u64::MAX;
                for bucket in t.buckets.iter() {
                    for e in bucket.iter().flatten() {
                        if !e.state.holds() && e.state != ConnState::Moved {
                            oldest = oldest.min(e.decided_ms);
                        }
                    }
                }
                bound_cut = oldest.saturating_add(1);
            }
            let cutoff = age_cut.max(bound_cut);
            // Sockets of connections served here looked up in this run.
            let mut checks = 0;
            for b in 0..t.buckets.len() {
                for i in 0..t.buckets[b].len() {
                    let Some(e) = t.get((b, i)) else {
                        continue;
                    };
                    let held = e.state.holds();
                    let dead = held && e.segs.iter().any(|s| !s.2.dev_alive());
                    let handoff_late = e.state == ConnState::HandingOff && now >= e.deadline_ms;
                    let expired = e.state == ConnState::Held && (now >= e.deadline_ms || e.orphan);
                    let why = if e.orphan {
                        End::Removed
                    } else {
                        End::OverTime
                    };
                    let moved = e.state == ConnState::Moved;
                    // Served here, its backup told (CONN_SYNC): kept while
                    // its socket lives (looked at every END_CHECK_MS once
                    // it is due to go, at most SWEEP_BUDGET a run); once it
                    // ended, its backup's record goes too (CONN_END, the
                    // entry kept until there is room to send it). Beyond
                    // the bound (the oldest first, these included) it goes
                    // either way.
                    let served =
                        e.synced && matches!(e.state, ConnState::Local | ConnState::Remote);
                    let mut forget = false;
                    if served && e.decided_ms < cutoff {
                        let bound = e.decided_ms < bound_cut;
                        let due = now >= e.checked_ms + END_CHECK_MS;
                        if (bound || due) && checks < SWEEP_BUDGET {
                            checks += 1;
                            let alive = matches!(
                                tcp::established(net, &e.key.conn(), false),
                                Established::Full(_) | Established::Request(_)
                            );
                            if alive && !bound {
                                if let Some(e) = t.get_mut((b, i)) {
                                    e.checked_ms = now;
                                }
                                continue;
                            }
                            if !alive {
                                if ends.len() == ends.capacity() {
                                    // The next run sends it.
                                    continue;
                                }
                                // Within the capacity: no allocation.
                                let end = ConnEnd {
                                    tuple: e.key.tuple(),
                                    client_isn: e.info.rcv_isn,
                                };
                                let _ = ends.push((e.backup, end, e.stats.clone()), GFP_ATOMIC);
                            }
                            forget = true;
                        }
                    }
                    let Some(e) = t.get((b, i)) else {
                        continue;
                    };
                    let forget = if served {
                        forget
                    } else if moved {
                        (e.term_ms != 0 && now >= e.term_ms + LINGER_MS)
                            || (e.hinted_ms == 0 && now >= e.last_ms + MOVED_IDLE_MS)
                            || now >= e.last_ms.max(e.hinted_ms) + HINTED_IDLE_MS
                    } else {
                        !held && e.decided_ms < cutoff
                    };
                    if dead {
                        // Its device went: the packets cannot go anywhere.
                        inc(&e.stats.aborted);
                        drop(t.remove((b, i)));
                    } else if forget && !moved {
                        drop(t.remove((b, i)));
                    } else if forget && gone.len() < gone.capacity() {
                        // Within the capacity: no allocation.
                        let _ = gone.push(e.key.conn(), GFP_ATOMIC);
                        let late = (e.term_ms != 0 && e.term_fin)
                            .then(|| (e.key.tuple(), e.peer, e.term_ms + TIME_WAIT_MS));
                        drop(t.remove((b, i)));
                        if let (Some((tuple, peer, until)), Some(l)) = (late, t.linger.as_mut()) {
                            l.add(tuple, peer, until);
                        }
                    } else if handoff_late && out.len() < out.capacity() {
                        let (peer, tuple) = (e.peer, e.key.tuple());
                        let segs = fall_back(&mut t, (b, i), Fallback::Timeout, now);
                        if let Some(e) = t.get_mut((b, i)) {
                            e.abort_sent = true;
                        }
                        // Within the capacities: no allocation.
                        let _ = out.push(segs, GFP_ATOMIC);
                        let _ = aborts.push((peer, tuple), GFP_ATOMIC);
                    } else if expired && out.len() < out.capacity() {
                        let segs = finish(&mut t, (b, i), why, now);
                        // Within the capacity: no allocation.
                        let _ = out.push(segs, GFP_ATOMIC);
                    }
                }
            }
            t.len() > 0
        };
        // Outside the lock: the peers first (their copies go before this
        // node's TCP answers the client), then TCP runs.
        if !aborts.is_empty() || !ends.is_empty() {
            let guard = rcu::Guard::new();
            if let Some(state) = NetState::of(net, &guard) {
                let chans = state.cluster_ref().channels();
                for (peer, tuple) in aborts {
                    // A TERM the outbox refuses is lost (counted): the peer
                    // serves the connection too, until the client resets it.
                    chans.send(peer, abort_term(tuple));
                }
                for (backup, end, stats) in ends {
                    // Lost if the outbox refuses it: the record stays
                    // until its table's bound or a change of the view.
                    if chans.send(backup, OutMsg::End(end)) {
                        inc(&stats.end_tx);
                    }
                }
            }
        }
        for segs in out {
            reinject(segs);
        }
        for c in gone.iter() {
            conntrack::forget(net, c);
        }
        (more || transfer_due).then_some(SWEEP_MS)
    }
}

/// Ends every hold of the namespace (its or the module's `pre_exit`): the
/// held segments are re-injected when the namespace lives on (the module
/// goes: TCP gets them, without the hook), dropped when it goes; no hold
/// is made afterwards; the sweep is cancelled.
pub(crate) fn shutdown(w: &Worked<Hold>, net: &Net) {
    let buckets = {
        let mut t = w.table.lock();
        t.closed = true;
        t.held = 0;
        t.decided = 0;
        t.moved = 0;
        t.segs = 0;
        core::mem::take(&mut t.buckets)
    };
    w.cancel_sync();
    let alive = net.alive();
    for bucket in buckets {
        for mut e in bucket.into_iter().flatten() {
            let segs = core::mem::take(&mut e.segs);
            if alive {
                reinject(segs);
                if e.state == ConnState::Moved {
                    conntrack::forget(net, &e.key.conn());
                }
            }
        }
    }
}

/// The family of the TCP service with a back-end role on the tuple's
/// server address and port, if one is configured.
pub(crate) fn backend_family(
    w: &Worked<Hold>,
    guard: &rcu::Guard,
    tuple: &Tuple,
) -> Option<frame::Family> {
    let f = w
        .snapshot
        .get(guard)?
        .backend_family(&tuple.server, tuple.server_port)?;
    Some(match f {
        Family::Inet => frame::Family::V4,
        Family::Inet6 => frame::Family::V6,
    })
}

/// The counters of service `id` (under RCU), if it is held.
pub(crate) fn service_stats<'a>(
    w: &'a Worked<Hold>,
    id: u32,
    guard: &'a rcu::Guard,
) -> Option<&'a HoldStats> {
    let snap = w.snapshot.get(guard)?;
    snap.services.iter().find(|s| s.id == id).map(|s| &*s.stats)
}

/// The connections listed (process context): a copy, at most `HOLD_MAX +
/// DECIDED_MAX` (plus those the sweep did not trim yet).
pub(crate) fn conns(w: &Worked<Hold>) -> Result<KVVec<ConnInfo>> {
    let n = w.table.lock().len() + w.disp.synced_len();
    let mut v = KVVec::with_capacity(n + 64, GFP_KERNEL)?;
    let now = now_ms();
    let t = w.table.lock();
    'out: for bucket in t.buckets.iter() {
        for e in bucket.iter().flatten() {
            if v.len() == v.capacity() {
                break 'out;
            }
            // Within the capacity: no allocation.
            v.push(e.conn_info(now), GFP_ATOMIC)?;
        }
    }
    drop(t);
    w.disp.synced_conns(&mut v)?;
    Ok(v)
}
