// SPDX-License-Identifier: GPL-2.0

//! The dispatchers' kernel side (issue 13, a first slice): which nodes
//! dispatch each service (service-new `dispatchers`), the [`View`] of those
//! up per service, published under RCU and recomputed on every change of
//! the configuration or of the membership, and the backup owner's table of
//! the connections its owners synced (CONN_SYNC).
//!
//! On the packet path (the hold's hook, `super::hold`), a segment of a
//! service with dispatchers at a node that is not its owner under the view
//! is forwarded to the owner in the encapsulation (type 0x01); the owner's
//! forwarding delivers it to its own stack marked [`FWD_MARK`], which its
//! hook takes as its own (never forwarded again, whatever its view says),
//! and its hold decides it as if received directly. The owner sends the
//! backup a CONN_SYNC when it decides, and again when the connection moved
//! to its back-end (placement forwarded).
//!
//! **Takeover.** When the membership changes, the backup's records of
//! connections moved to a back-end whose owner left the view, and which
//! this node owns under the new one (the old backup always does: it had the
//! second score), become this node's moved connections (in the hold's
//! work, `super::hold::Hold::take_over`): their segments, which the other
//! dispatchers now forward here, go on to the back-end, and the client's
//! TCP connection lives on. Records of connections this node neither owns nor backs up any
//! more go.
//!
//! A segment that a node delivers to its own stack as the back-end of a
//! connection (the replay's handshake and request, the client's segments
//! of a moved connection) carries [`ADOPTED_MARK`]: the hook lets it
//! through to TCP, which serves the connection, whatever its view says.
//!
//! **Changes of the view** (`super::hold`): the node that owned a moved
//! connection hands it to its new owner in a TRANSFER ([`Dispatch::on_entry`]
//! checks it on arrival), and a CONN_END ends the entries and records a
//! connection left behind ([`Dispatch::on_end`]).
//!
//! **The association cache** (claim 12, `logic::cache`): a dispatcher that
//! is not a connection's owner learns where the connection went from its
//! owner (a CONN_SYNC, placement forwarded, sent once per connection to
//! the other dispatchers of its view when a segment of it came forwarded
//! by another dispatcher; the backup learns it from its own CONN_SYNC),
//! and forwards its later segments straight to the back-end (type 0x02:
//! one hop instead of two). The back-end is not told (a hint must not
//! read as a takeover there: `on_reown`), and its own segments of the
//! connection still go by the owner. A SYN
//! on the tuple (a new connection), the owner's CONN_END and the
//! departure of the owner or the back-end from the membership drop the
//! line; the least recently used goes when the cache is full.

use crate::logic::membership::Membership;
use crate::logic::{
    cache::{Assoc, Cache, Slot},
    frame::{ConnEnd, ConnSync, Family as TFamily, Tuple},
    owner::{
        self, check_hint, check_reown, check_sync, check_transfer, record_fate, Fate, Pair,
        Refused, Role, View, MAX_DISPATCHERS,
    },
};
use crate::sys::{
    crc32c::KernelCrc32c,
    lock::{new_spinlock_bh, SpinLockBh},
    netfilter::{now_ms, random_u32},
    rcu::{self, RcuCell},
    skb::Family,
};
use kernel::{alloc::KVVec, new_spinlock, prelude::*, sync::SpinLock};

/// The `skb->mark` of a client's segment that another dispatcher forwarded
/// here to its owner ("SG" and 1): its owner's hook takes it as its own.
pub(crate) const FWD_MARK: u32 = 0x5347_0001;
/// The `skb->mark` of a segment this node delivers to its own stack as the
/// connection's back-end ("SG" and 2): the hook passes it to TCP.
pub(crate) const ADOPTED_MARK: u32 = 0x5347_0002;
/// At most this many connections recorded as backup (the oldest goes).
pub(crate) const SYNCED_MAX: usize = 4096;
/// The association cache's lines (allocated once, when a service is first
/// dispatched; 64 bytes each).
pub(crate) const CACHE_SLOTS: usize = 2048;

/// The dispatchers of a service as configured: 1 to
/// [`MAX_DISPATCHERS`] ids, no repeats, no 0.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Dispatchers {
    ids: [u32; MAX_DISPATCHERS],
    len: usize,
}

impl Dispatchers {
    /// The list of `ids`; `None` for more than [`MAX_DISPATCHERS`], a
    /// repeat or a 0.
    pub(crate) fn new(ids: &[u32]) -> Option<Self> {
        let mut d = Dispatchers::default();
        for &id in ids {
            if id == 0 || d.contains(id) || d.len == MAX_DISPATCHERS {
                return None;
            }
            d.ids[d.len] = id;
            d.len += 1;
        }
        Some(d)
    }

    /// The ids, as configured.
    pub(crate) fn ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }

    /// Whether `id` is one.
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.ids().contains(&id)
    }

    /// Whether there is none (the service is not dispatched).
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A dispatched service as the packet path sees it.
struct SvcView {
    service: u32,
    view: View,
}

/// The views of the services with dispatchers, published under RCU.
struct Views {
    own: u32,
    services: KVec<SvcView>,
}

/// A connection recorded as backup (CONN_SYNC, or a TRANSFER's entry).
#[derive(Clone, Copy)]
struct Synced {
    sync: ConnSync,
    received_ms: u64,
    /// The dispatcher it came from: its owner (CONN_SYNC) or the sender
    /// of a TRANSFER; only it ends the record (CONN_END).
    from: u32,
    /// Its CONN_END came: not listed, not taken over; its slot is the
    /// next record's.
    ended: bool,
}

/// The namespace's dispatcher state.
#[pin_data]
pub(crate) struct Dispatch {
    views: RcuCell<Views>,
    /// The configured lists, this node's id and the last membership, under
    /// the writers' lock (the configuration's and the channels' work).
    #[pin]
    conf: SpinLock<Conf>,
    /// The connections this node backs up, oldest first.
    #[pin]
    synced: SpinLockBh<KVec<Synced>>,
    /// The association cache (`None` until a service is dispatched).
    #[pin]
    cache: SpinLockBh<Option<Cache<KVVec<Slot>>>>,
}

struct Conf {
    own: u32,
    lists: KVec<(u32, Dispatchers)>,
    members: Option<Membership>,
}

/// `n` slots of `fill` for a table in caller-owned slots (the
/// association cache, the front-end's memory of ended connections;
/// process context: it sleeps).
pub(crate) fn new_slots<T: Copy>(n: usize, fill: T) -> Result<KVVec<T>> {
    let mut slots = KVVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        // Within the capacity: does not allocate or fail.
        slots.push(fill, GFP_KERNEL)?;
    }
    Ok(slots)
}

/// A random key for a table's SipHash (clients cannot aim at one chain).
pub(crate) fn random_key() -> (u64, u64) {
    let r = || (u64::from(random_u32()) << 32) | u64::from(random_u32());
    (r(), r())
}

impl Dispatch {
    /// No dispatched service.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Dispatch {
            views: RcuCell::new(),
            conf <- new_spinlock!(Conf { own: 0, lists: KVec::new(), members: None }, "sockgroup_disp"),
            synced <- new_spinlock_bh!(KVec::new(), "sockgroup_synced"),
            cache <- new_spinlock_bh!(None, "sockgroup_assoc_cache"),
        })
    }

    /// The configuration changed (process context): this node's id and
    /// the services' dispatchers; the views are recomputed.
    pub(crate) fn configure(
        &self,
        own: u32,
        lists: KVec<(u32, Dispatchers)>,
        m: Option<&Membership>,
    ) -> Result {
        let mut c = self.conf.lock();
        c.own = own;
        c.lists = lists;
        c.members = m.copied();
        self.recompute(&c)
    }

    /// Allocates the association cache if it is not yet (process context,
    /// no lock or RCU read-side section held: it sleeps), when the first
    /// service is dispatched; it stays until the namespace goes.
    pub(crate) fn ensure_cache(&self) -> Result {
        if self.cache.lock().is_some() {
            return Ok(());
        }
        let cache = Cache::new(new_slots(CACHE_SLOTS, Slot::EMPTY)?, random_key());
        let mut c = self.cache.lock();
        if c.is_none() {
            *c = Some(cache);
        }
        Ok(())
    }

    /// The membership changed (any context but hardirq): the views are
    /// recomputed.
    pub(crate) fn on_members(&self, m: Option<&Membership>) {
        {
            let mut c = self.conf.lock();
            c.members = m.copied();
            // Out of memory: the last views stay (a later change retries).
            let _ = self.recompute(&c);
        }
        // The lines of a node that left go (claim 18).
        if let Some(cache) = self.cache.lock().as_mut() {
            match m {
                Some(m) => {
                    cache.flush(|_, a| !m.contains(a.owner) || !m.contains(a.backend));
                }
                None => cache.clear(),
            }
        }
    }

    /// The association of `t` in the cache, if any (any context).
    pub(crate) fn cached(&self, t: &Tuple) -> Option<Assoc> {
        self.cache.lock().as_mut()?.get(t)
    }

    /// Drops the cache's line of `t` (any context), if `owner` is `None`
    /// or its owner: whether there was one.
    pub(crate) fn uncache(&self, t: &Tuple, owner: Option<u32>) -> bool {
        let mut c = self.cache.lock();
        let Some(cache) = c.as_mut() else {
            return false;
        };
        if owner.is_some_and(|o| cache.peek(t).is_some_and(|a| a.owner != o)) {
            return false;
        }
        cache.remove(t).is_some()
    }

    /// A CONN_SYNC from `peer` that this node accepted as the backup or
    /// the back-end, or that `owner::check_hint` accepts under this node's
    /// view (process context, under RCU): a connection moved to a back-end
    /// (placement forwarded) is cached. `Ok(true)`: it was.
    pub(crate) fn on_hint(
        &self,
        peer: u32,
        s: &ConnSync,
        guard: &rcu::Guard,
    ) -> Result<bool, Refused> {
        let Some((own, view)) = self.view(s.service, guard) else {
            return Err(Refused::NotDispatcher);
        };
        check_hint(view, s, peer, own)?;
        if s.backend == own {
            // Its segments that reach this node go to its owner (type
            // 0x01), which knows the translation a replayed connection
            // may need; no line.
            return Ok(false);
        }
        let mut c = self.cache.lock();
        let Some(cache) = c.as_mut() else {
            return Ok(false);
        };
        let a = Assoc {
            owner: s.owner,
            backend: s.backend,
        };
        cache.insert(s.tuple, a);
        Ok(true)
    }

    fn recompute(&self, c: &Conf) -> Result {
        if c.lists.is_empty() {
            return self.views.replace(None, GFP_ATOMIC);
        }
        let mut services = KVec::with_capacity(c.lists.len(), GFP_ATOMIC)?;
        for &(service, dispatchers) in c.lists.iter() {
            let view = match &c.members {
                Some(m) => View::of_membership(&KernelCrc32c, m, |id| dispatchers.contains(id))
                    .unwrap_or(View::empty(m.generation())),
                None => View::empty(0),
            };
            // Within the capacity reserved above: does not allocate or fail.
            services.push(SvcView { service, view }, GFP_ATOMIC)?;
        }
        self.views.replace(
            Some(Views {
                own: c.own,
                services,
            }),
            GFP_ATOMIC,
        )
    }

    /// The view of `service` if it has dispatchers (under RCU), with this
    /// node's id.
    pub(crate) fn view<'a>(
        &'a self,
        service: u32,
        guard: &'a rcu::Guard,
    ) -> Option<(u32, &'a View)> {
        let v = self.views.get(guard)?;
        v.services
            .iter()
            .find(|s| s.service == service)
            .map(|s| (v.own, &s.view))
    }

    /// The owner and backup of `t` for `service` (under RCU); `None`: the
    /// service has no dispatcher up (or none configured).
    pub(crate) fn pair(&self, service: u32, t: &Tuple, guard: &rcu::Guard) -> Option<Pair> {
        self.view(service, guard)?.1.pair(&KernelCrc32c, t)
    }

    /// A CONN_SYNC from `peer` (process context): recorded if it passes
    /// `owner::check_sync` under this node's view of its service.
    pub(crate) fn on_sync(
        &self,
        peer: u32,
        s: &ConnSync,
        guard: &rcu::Guard,
    ) -> Result<(), Refused> {
        let Some((own, view)) = self.view(s.service, guard) else {
            return Err(Refused::NotDispatcher);
        };
        check_sync(view, s, peer, own)?;
        self.record(s, peer);
        Ok(())
    }

    /// A TRANSFER entry from `peer` (process context): checked by
    /// `owner::check_transfer` against the service's configured
    /// dispatchers, not the view of those up: a node that joins gets its
    /// TRANSFERs from a peer whose channel just came up, before its own
    /// membership counts that peer in (the peer is authenticated by its
    /// channel, must be one of the service's dispatchers, and must rank
    /// below the nodes it hands the connection to). One for this node as
    /// the backup is recorded as a CONN_SYNC's. Returns the role it names this node
    /// in.
    pub(crate) fn on_entry(&self, peer: u32, s: &ConnSync) -> Result<Role, Refused> {
        let (own, view) = self.configured(s.service)?;
        let role = check_transfer(&KernelCrc32c, &view, s, peer, own)?;
        if role == Role::Backup {
            self.record(s, peer);
        }
        Ok(role)
    }

    /// This node's id and the view of all the configured dispatchers of
    /// `service` (process context); `NotDispatcher`: it has none.
    fn configured(&self, service: u32) -> Result<(u32, View), Refused> {
        let (own, configured) = {
            let c = self.conf.lock();
            let d = c
                .lists
                .iter()
                .find(|(id, _)| *id == service)
                .map(|(_, d)| *d);
            (c.own, d)
        };
        configured
            .and_then(|d| View::new(&KernelCrc32c, 0, d.ids()).ok())
            .map(|v| (own, v))
            .ok_or(Refused::NotDispatcher)
    }

    /// This node's id (0: none configured).
    pub(crate) fn own(&self) -> u32 {
        self.conf.lock().own
    }

    /// A CONN_SYNC from `peer` for this node as the back-end (process
    /// context): checked by `owner::check_reown` against the service's
    /// configured dispatchers (a dispatcher that took over a connection
    /// handed off here; the back-end makes it the connection's front-end).
    pub(crate) fn on_reown(&self, peer: u32, s: &ConnSync) -> Result<(), Refused> {
        let (own, view) = self.configured(s.service)?;
        check_reown(&view, s, peer, own)
    }

    /// Records `s` as a connection this node backs up (one entry per
    /// tuple, the oldest goes past [`SYNCED_MAX`]), from `from`.
    fn record(&self, s: &ConnSync, from: u32) {
        let entry = Synced {
            sync: *s,
            received_ms: now_ms(),
            from,
            ended: false,
        };
        let mut t = self.synced.lock();
        if let Some(e) = t.iter_mut().find(|e| e.sync.tuple == s.tuple) {
            *e = entry;
            return;
        }
        // An ended record goes, else the oldest if the table is full; the
        // list stays in arrival order (the new one last).
        let free = t.iter().position(|e| e.ended);
        if let Some(at) = free.or((t.len() >= SYNCED_MAX).then_some(0)) {
            t[at..].rotate_left(1);
            if let Some(last) = t.last_mut() {
                *last = entry;
            }
            return;
        }
        // Out of memory: not recorded (accepted all the same).
        let _ = t.push(entry, GFP_ATOMIC);
    }

    /// After a change of the views (process context, outside any RCU
    /// read-side section: it allocates first): the records of connections
    /// moved to a back-end that this node owns now are taken out and
    /// returned, each with the view's generation and its new backup; the
    /// records of connections that it no longer backs up go; the others
    /// stay, in order. Decided under the records' lock (a bounded pass,
    /// no allocation but past the capacity reserved, atomically).
    pub(crate) fn take_over(&self) -> Result<KVVec<(ConnSync, u64, u32)>> {
        let n = self.synced.lock().len();
        if n == 0 {
            return Ok(KVVec::new());
        }
        let mut keep = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut taken = KVVec::with_capacity(n, GFP_KERNEL)?;
        let old = {
            let mut t = self.synced.lock();
            let guard = rcu::Guard::new();
            for e in t.iter().filter(|e| !e.ended) {
                let s = &e.sync;
                let Some((own, view)) = self.view(s.service, &guard) else {
                    continue;
                };
                match record_fate(&KernelCrc32c, view, s, own) {
                    Fate::TakeOver => {
                        let backup = view
                            .pair(&KernelCrc32c, &s.tuple)
                            .map_or(0, |p| p.backup_id());
                        taken.push((*s, view.generation(), backup), GFP_ATOMIC)?;
                    }
                    Fate::Keep => keep.push(*e, GFP_ATOMIC)?,
                    Fate::Drop => {}
                }
            }
            core::mem::replace(&mut *t, keep)
        };
        drop(old);
        Ok(taken)
    }

    /// Appends the connections recorded as backup to `out` (process
    /// context), as far as its capacity goes.
    pub(crate) fn synced_conns(&self, out: &mut KVVec<super::hold::ConnInfo>) -> Result {
        let now = now_ms();
        let t = self.synced.lock();
        for e in t.iter().filter(|e| !e.ended) {
            if out.len() == out.capacity() {
                break;
            }
            let s = &e.sync;
            let family = match s.tuple.family {
                TFamily::V4 => Family::Inet,
                TFamily::V6 => Family::Inet6,
            };
            // Within the capacity: no allocation.
            out.push(
                super::hold::ConnInfo::synced(
                    s.service,
                    family,
                    &s.tuple,
                    s.client_isn,
                    s.server_isn,
                    s.backend,
                    (s.owner, s.backup),
                    now.saturating_sub(e.received_ms).min(u64::from(u32::MAX)) as u32,
                ),
                GFP_ATOMIC,
            )?;
        }
        Ok(())
    }

    /// A CONN_END from `peer` (process context): the record of its
    /// connection goes ([`owner::ends`]: the same tuple and client ISN, from
    /// the record's sender or owner). Returns its service if it went.
    pub(crate) fn on_end(&self, peer: u32, end: &ConnEnd) -> Option<u32> {
        let mut t = self.synced.lock();
        let e = t
            .iter_mut()
            .find(|e| !e.ended && owner::ends(&e.sync, e.from, peer, end))?;
        e.ended = true;
        Some(e.sync.service)
    }

    /// How many connections are recorded as backup.
    pub(crate) fn synced_len(&self) -> usize {
        self.synced.lock().iter().filter(|e| !e.ended).count()
    }
}
