// SPDX-License-Identifier: GPL-2.0

//! Service groups of one network namespace.
//!
//! The groups of a namespace are one immutable [`Snapshot`], published under
//! RCU: the packet path reads it without locks; every change builds a new
//! one under the namespace's mutex, with sleeping allocations accounted to
//! the caller's memory cgroup, and replaces the old, which is freed after a
//! grace period. The snapshot holds a reference on every member socket, so
//! a member it names is always safe to read. Counters live in their own
//! reference-counted objects and survive the snapshots that share them.
//!
//! A member that stops listening (close, shutdown) is seen by a hook in
//! atomic context, which cannot allocate a new snapshot: it marks the
//! member and queues the namespace's sweep, a work item that rebuilds the
//! snapshot without every marked or non-listening member and retries until
//! it succeeds. This matters beyond the group: the snapshot's reference on
//! a closed member keeps the socket, and a socket keeps its network
//! namespace, so a removal that were lost would pin a dead namespace.

use crate::logic::{
    fmt::SockAddr,
    ring::{self, Choice, Load, Policy},
    stall::{self, Action, Sample, Tracker},
    uapi::{self, Candidate, Fam, Info, MemberInfo, Refusal, Request},
};
use crate::sys::{
    fault::SweepFault,
    net::{NatTarget, Net, SeqFile},
    netfilter::now_ms,
    rcu::{Guard, RcuMutex, RcuWriter},
    request_sock::Queued,
    skb::{tcp_flags, Family, SkBuff, Verdict},
    sock::Sock,
    work::{Run, Worked},
};
use core::{
    fmt::Write,
    sync::atomic::{
        fence, AtomicBool, AtomicU64, AtomicUsize,
        Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst},
    },
};
use kernel::{new_mutex, prelude::*, sync::Arc, types::ARef};

/// Allocations of the control path: process context, under the mutex,
/// accounted to the memory cgroup of the caller (the sweep's kworker: none).
const GFP: kernel::alloc::Flags = GFP_KERNEL_ACCOUNT;

/// The sweep's first retry after a failure, and the longest wait between two.
const RETRY_MIN_MS: u32 = 10;
const RETRY_MAX_MS: u32 = 1000;

/// A member's counters, its stall state, and its end.
#[derive(Default)]
struct Counters {
    redirected_away: AtomicU64,
    redirected_in: AtomicU64,
    dropped: AtomicU64,
    /// It stopped listening (the listen-stop hook): the sweep takes it out,
    /// even if it listens again before the sweep runs.
    stopped: AtomicBool,
    /// Connections moved from its accept queue to a sibling, and to its
    /// accept queue from a stalled sibling.
    rescued_away: AtomicU64,
    rescued_in: AtomicU64,
    stall: StallState,
}

/// A member's stall detection ([`Tracker`]), written by the sampler only,
/// read by the packet path and the replies; and its probes, which the
/// packet path lets through.
#[derive(Default)]
struct StallState {
    head: AtomicU64,
    since_ms: AtomicU64,
    /// When it became stalled, plus one (0: serving).
    stalled_at: AtomicU64,
    probing: AtomicBool,
    /// The head's identity at the last sample or rescue (0: empty): the
    /// packet path compares it with the queue's head to see an accept at
    /// once.
    mark: AtomicUsize,
    /// A probe was let through since the last sample.
    probed: AtomicBool,
    /// When the next probe may go (ms).
    next_probe_ms: AtomicU64,
}

impl StallState {
    fn tracker(&self) -> Tracker {
        Tracker {
            head: self.head.load(Relaxed),
            since_ms: self.since_ms.load(Relaxed),
            stalled_at: self.stalled_at.load(Relaxed).checked_sub(1),
            probing: self.probing.load(Relaxed),
        }
    }

    /// Publishes the sampler's state; `mark` is the head's identity.
    fn store(&self, t: &Tracker, mark: usize) {
        self.head.store(t.head, Relaxed);
        self.since_ms.store(t.since_ms, Relaxed);
        self.probing.store(t.probing, Relaxed);
        self.mark.store(mark, Relaxed);
        self.stalled_at
            .store(t.stalled_at.map_or(0, |at| at + 1), Release);
    }

    /// Whether the member takes no connection now: stalled, and neither
    /// did it accept since the last sample (its marked head left), nor is
    /// this SYN the probe of an empty queue.
    fn stalled_now(&self, sk: &Sock, stall_ms: u32) -> bool {
        if self.stalled_at.load(Acquire) == 0 {
            return false;
        }
        let (head, mark) = (sk.accept_head_id(), self.mark.load(Relaxed));
        if head != 0 {
            // The same head, or one that arrived in an empty queue.
            return head == mark || mark == 0;
        }
        if mark != 0 {
            // The marked head left, and only the sampler moves heads away:
            // accepted.
            return false;
        }
        if sk.reqsk_queue_len() != 0 {
            return true;
        }
        let now = now_ms();
        let next = self.next_probe_ms.load(Relaxed);
        if now < next {
            return true;
        }
        let after = now + u64::from(stall::probe_interval_ms(stall_ms));
        if self
            .next_probe_ms
            .compare_exchange(next, after, AcqRel, Relaxed)
            .is_err()
        {
            return true;
        }
        self.probed.store(true, Release);
        false
    }
}

/// A member of a group, in a snapshot.
struct Member {
    sk: ARef<Sock>,
    fam: Fam,
    /// Index of its group in [`Snapshot::groups`].
    group: usize,
    counters: Arc<Counters>,
}

impl Member {
    /// Where a rewritten connection would go on this member (see `rewrite_target`).
    fn rewrite_target(&self, v4: bool) -> Option<Option<[u8; 16]>> {
        uapi::rewrite_target(v4, self.fam, &self.sk.local_addr())
    }

    fn load(&self, v4: bool, rewrite: bool, stall_ms: u32) -> Load {
        let sk = &self.sk;
        let takes = if rewrite {
            self.rewrite_target(v4).is_some()
        } else {
            self.fam.takes(v4)
        };
        let handshakes = sk.reqsk_queue_len();
        let limit = sk.max_ack_backlog();
        Load {
            listening: takes && sk.is_listening(),
            accept_queue: sk.ack_backlog(),
            handshakes,
            limit,
            // `tcp_conn_request` answers with a cookie when the request
            // queue is over the backlog (`inet_csk_reqsk_queue_is_full`).
            // A steered connection's cookie ACK would be looked up on the
            // addressed listener; a rewritten one's is translated to this
            // member, which checks its own cookie: only steering minds.
            cookie: !rewrite && handshakes > limit,
            // Groups without stall rescue read nothing more.
            stalled: stall_ms != 0 && self.counters.stall.stalled_now(sk, stall_ms),
        }
    }
}

/// A group, in a snapshot.
struct Group {
    id: u64,
    policy: Policy,
    flags: u32,
    /// Stall rescue's threshold (0: off).
    stall_ms: u32,
    /// Indices into [`Snapshot::members`], in ring order.
    ring: KVec<usize>,
}

/// Every group of a namespace, immutable once published.
struct Snapshot {
    /// Sorted by socket identity, for lookups by socket (up to
    /// `MAX_NET_MEMBERS`: vmalloc when large).
    members: KVVec<Member>,
    groups: KVec<Group>,
}

impl Snapshot {
    fn find(&self, sk: &Sock) -> Option<usize> {
        self.members
            .binary_search_by_key(&sk.key(), |m| m.sk.key())
            .ok()
    }

    fn group_of(&self, sk: &Sock) -> Option<&Group> {
        self.find(sk).map(|m| &self.groups[self.members[m].group])
    }

    fn ring<'a>(&'a self, g: &'a Group) -> impl Iterator<Item = &'a Member> + 'a {
        g.ring.iter().map(|&m| &self.members[m])
    }

    /// The group's choice for a new connection (`v4`: IPv4) addressed to
    /// listener `sk`: `None` unless `sk` is a member of a group of the
    /// given mode (`rewrite`) that is full. The packet path's decision
    /// after its listener lookup (see `NetGroups::decide`).
    fn choose(&self, sk: &Sock, v4: bool, rewrite: bool) -> Option<Decision<'_>> {
        let m = self.find(sk)?;
        let addressed = &self.members[m];
        let g = &self.groups[addressed.group];
        if (g.flags & uapi::F_REWRITE != 0) != rewrite {
            return None;
        }
        let pos = g.ring.iter().position(|&i| i == m)?;
        let choice = ring::choose(g.policy, g.ring.len(), pos, |i| {
            self.members[g.ring[i]].load(v4, rewrite, g.stall_ms)
        });
        let target = match choice {
            Choice::Addressed => return None,
            Choice::Redirect(i) => Some(&self.members[g.ring[i]]),
            Choice::AllFull => None,
        };
        Some(Decision { addressed, target })
    }
}

/// A group as the next snapshot will have it.
struct Plan {
    id: u64,
    policy: Policy,
    flags: u32,
    stall_ms: u32,
    members: KVec<(ARef<Sock>, Fam, Arc<Counters>)>,
}

/// Builds and publishes a snapshot of `plans` (none: no snapshot at all, so
/// that the packet path of a namespace without groups stops at one load).
/// On error nothing changed.
fn publish(w: &mut Writer<'_>, plans: KVec<Plan>) -> Result {
    let plans: KVec<Plan> = {
        let mut kept = KVec::with_capacity(plans.len(), GFP)?;
        for p in plans {
            if !p.members.is_empty() {
                kept.push(p, GFP)?;
            }
        }
        kept
    };
    if plans.is_empty() {
        return w.replace(None, GFP);
    }
    let total = plans.iter().map(|p| p.members.len()).sum();
    let mut members = KVVec::with_capacity(total, GFP)?;
    let mut groups = KVec::with_capacity(plans.len(), GFP)?;
    for (g, plan) in plans.into_iter().enumerate() {
        let mut ring = KVec::with_capacity(plan.members.len(), GFP)?;
        for (pos, (sk, fam, counters)) in plan.members.into_iter().enumerate() {
            // The ring position, for now; indices are fixed after sorting.
            ring.push(pos, GFP)?;
            members.push(
                (
                    Member {
                        sk,
                        fam,
                        group: g,
                        counters,
                    },
                    pos,
                ),
                GFP,
            )?;
        }
        groups.push(
            Group {
                id: plan.id,
                policy: plan.policy,
                flags: plan.flags,
                stall_ms: plan.stall_ms,
                ring,
            },
            GFP,
        )?;
    }
    members.sort_unstable_by_key(|(m, _)| m.sk.key());
    for (i, (m, pos)) in members.iter().enumerate() {
        groups[m.group].ring[*pos] = i;
    }
    let mut sorted = KVVec::with_capacity(members.len(), GFP)?;
    for (m, _) in members {
        sorted.push(m, GFP)?;
    }
    w.replace(
        Some(Snapshot {
            members: sorted,
            groups,
        }),
        GFP,
    )
}

/// The plans of every group of `snap` but the one with id `except`, with
/// the members that `keep`.
fn plans(
    snap: Option<&Snapshot>,
    except: Option<u64>,
    keep: impl Fn(&Member) -> bool,
) -> Result<KVec<Plan>> {
    let Some(snap) = snap else {
        return Ok(KVec::new());
    };
    let mut plans = KVec::with_capacity(snap.groups.len(), GFP)?;
    for g in snap.groups.iter().filter(|g| Some(g.id) != except) {
        let mut members = KVec::with_capacity(g.ring.len(), GFP)?;
        for m in snap.ring(g).filter(|m| keep(m)) {
            members.push((m.sk.clone(), m.fam, m.counters.clone()), GFP)?;
        }
        plans.push(
            Plan {
                id: g.id,
                policy: g.policy,
                flags: g.flags,
                stall_ms: g.stall_ms,
                members,
            },
            GFP,
        )?;
    }
    Ok(plans)
}

/// Whether the sweep takes `m` out: it stopped listening.
fn gone(m: &Member) -> bool {
    m.counters.stopped.load(Acquire) || !m.sk.is_listening()
}

/// What grouping checks of a socket.
fn fam_of(sk: &Sock) -> Option<Fam> {
    if !sk.is_tcp() {
        return None;
    }
    match sk.family()? {
        Family::Inet => Some(Fam::V4),
        Family::Inet6 if sk.ipv6only() => Some(Fam::V6Only),
        Family::Inet6 => Some(Fam::V6Dual),
    }
}

/// The errno of a refusal, as the uapi header documents it.
pub(crate) fn errno(r: Refusal) -> Error {
    use crate::sys::errno;
    match r {
        Refusal::Invalid => EINVAL,
        Refusal::TooBig => E2BIG,
        Refusal::NotTcp => errno::eopnotsupp(),
        Refusal::OtherNet => EXDEV,
        Refusal::OtherFamily => errno::eafnosupport(),
        Refusal::InOtherGroup => EBUSY,
        Refusal::NoRoom => ENOSPC,
    }
}

/// What the writers of a namespace's groups keep, under the mutex.
struct Book {
    next_id: u64,
    /// The sweep's failed attempts since it last succeeded.
    failures: u32,
}

type Writer<'a> = RcuWriter<'a, Book, Snapshot>;

/// A namespace's groups: the published snapshot, its writers' mutex and
/// the sweep. Reference-counted, so that a request that sleeps keeps them.
#[pin_data]
pub(crate) struct Groups {
    #[pin]
    cell: RcuMutex<Book, Snapshot>,
}

impl Groups {
    /// The current snapshot, for the read-side critical section `guard`.
    fn get<'a>(&'a self, guard: &'a Guard) -> Option<&'a Snapshot> {
        self.cell.get(guard)
    }

    /// Publishes the snapshot without the members that stopped listening.
    fn sweep(&self, w: &mut Writer<'_>) -> Result {
        let (snap, _) = w.get();
        if !snap.is_some_and(|s| s.members.iter().any(gone)) {
            return Ok(());
        }
        if SweepFault::should_fail() {
            return Err(ENOMEM);
        }
        let plans = plans(snap, None, |m| !gone(m))?;
        publish(w, plans)
    }
}

impl Run for Groups {
    /// The sweep, in a kworker: on failure it runs again, later and later
    /// (up to [`RETRY_MAX_MS`]), until it succeeds; the marks it looks for
    /// stay until then.
    fn run(&self) -> Option<u32> {
        let sweep = self.run_sweep();
        // Without the mutex: the rescue takes listeners' socket locks.
        let scan = self.scan();
        match (sweep, scan) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Groups {
    fn run_sweep(&self) -> Option<u32> {
        let mut w = self.cell.lock();
        let result = self.sweep(&mut w);
        let book = w.get().1;
        match result {
            Ok(()) => {
                if book.failures > 0 {
                    pr_info!(
                        "closed members removed after {} failed attempts\n",
                        book.failures
                    );
                }
                book.failures = 0;
                None
            }
            Err(e) => {
                if book.failures == 0 {
                    pr_warn!("could not remove closed members ({:?}); retrying\n", e);
                }
                let wait = RETRY_MIN_MS << book.failures.min(7);
                book.failures = book.failures.saturating_add(1);
                Some(wait.min(RETRY_MAX_MS))
            }
        }
    }
}

/// The request path's handle on a namespace's groups (process context).
pub(crate) struct Control(Arc<Worked<Groups>>);

/// The most connections one rescue moves from a member before the next
/// sample (its listener's lock is held meanwhile).
const RESCUE_BATCH: usize = 1024;

/// When to sample again after no memory for the sample's list.
const SAMPLE_RETRY_MS: u32 = 100;

/// A member that the sampler works on, outside the snapshot.
struct Sampled {
    sk: ARef<Sock>,
    fam: Fam,
    counters: Arc<Counters>,
}

impl Sampled {
    /// Its load as the target of a rescued connection: it must be of the
    /// connection's family (an IPv4 socket accepts IPv4 children, an IPv6
    /// one IPv6 children, IPv4-mapped ones only if it is not IPv6-only),
    /// serving, and have room.
    fn rescue_load(&self, child: &Queued) -> Load {
        let sk = &self.sk;
        let takes = match (child.family, self.fam) {
            (Family::Inet, Fam::V4) => true,
            (Family::Inet6, Fam::V6Dual) => true,
            (Family::Inet6, Fam::V6Only) => !child.mapped,
            _ => false,
        };
        Load {
            listening: takes && sk.is_listening(),
            accept_queue: sk.ack_backlog(),
            handshakes: sk.reqsk_queue_len(),
            limit: sk.max_ack_backlog(),
            cookie: false,
            stalled: self.counters.stall.stalled_at.load(Acquire) != 0,
        }
    }
}

/// A group with stall rescue, as the sampler works on it.
struct StallGroup {
    policy: Policy,
    stall_ms: u32,
    members: KVec<Sampled>,
}

impl StallGroup {
    /// Samples member `i`, and rescues its connections if it is stalled.
    fn sample(&self, i: usize) {
        let m = &self.members[i];
        if !m.sk.is_listening() {
            return;
        }
        let st = &m.counters.stall;
        let now = now_ms();
        // A probe let through less than a tick ago may not have made its
        // request socket yet: it is taken into account from the next sample,
        // so that an empty queue then means it came and went.
        let interval = u64::from(stall::probe_interval_ms(self.stall_ms));
        let probe_at = st.next_probe_ms.load(Relaxed).saturating_sub(interval);
        let settled = now.saturating_sub(probe_at) >= u64::from(stall::tick_ms(self.stall_ms));
        let probed = settled && st.probed.swap(false, AcqRel);
        let head = m.sk.accept_head();
        let sample = Sample {
            now_ms: now,
            head: head.map_or(0, |h| h.cookie),
            handshakes: m.sk.reqsk_queue_len(),
            probed,
        };
        let mut t = st.tracker();
        let was = t.is_stalled();
        let action = t.observe(&sample, self.stall_ms);
        if t.is_stalled() && !was {
            let first = now + u64::from(stall::probe_interval_ms(self.stall_ms));
            st.next_probe_ms.store(first, Relaxed);
        }
        // Published before the rescue: new SYNs go to siblings meanwhile.
        st.store(&t, head.map_or(0, |h| h.id));
        if action == Action::Rescue {
            let left = self.rescue(i);
            t.rescued(left.map_or(0, |h| h.cookie), now_ms());
            st.store(&t, left.map_or(0, |h| h.id));
        }
    }

    /// Moves the connections waiting in member `i`'s accept queue, oldest
    /// first, to siblings chosen by the group's policy that serve and have
    /// room; returns the head it stopped at (`None`: it moved them all).
    ///
    /// The stalled member's socket lock is owned throughout, so that it
    /// neither accepts nor closes meanwhile; each target's is owned for its
    /// move. Only this work takes two listeners' locks, always the stalled
    /// one's first.
    fn rescue(&self, i: usize) -> Option<Queued> {
        let from = &self.members[i];
        let owned = from.sk.lock_owned();
        for _ in 0..RESCUE_BATCH {
            let head = owned.sk().accept_head()?;
            let choice = ring::choose(self.policy, self.members.len(), i, |j| {
                self.members[j].rescue_load(&head)
            });
            let Choice::Redirect(j) = choice else {
                return Some(head);
            };
            let to = &self.members[j];
            let target = to.sk.lock_owned_nested();
            if owned.move_head(&head, &target).is_err() {
                return owned.sk().accept_head();
            }
            from.counters.rescued_away.fetch_add(1, Relaxed);
            to.counters.rescued_in.fetch_add(1, Relaxed);
        }
        owned.sk().accept_head()
    }
}

impl Groups {
    /// The groups with stall rescue, with a reference on each member,
    /// read under the mutex (the list is allocated, so not under RCU).
    fn stall_groups(&self) -> Result<KVec<StallGroup>> {
        let mut w = self.cell.lock();
        let Some(snap) = w.get().0 else {
            return Ok(KVec::new());
        };
        let mut out = KVec::new();
        for g in snap.groups.iter().filter(|g| g.stall_ms != 0) {
            let mut members = KVec::with_capacity(g.ring.len(), GFP)?;
            for m in snap.ring(g) {
                let sampled = Sampled {
                    sk: m.sk.clone(),
                    fam: m.fam,
                    counters: m.counters.clone(),
                };
                members.push(sampled, GFP)?;
            }
            let group = StallGroup {
                policy: g.policy,
                stall_ms: g.stall_ms,
                members,
            };
            out.push(group, GFP)?;
        }
        Ok(out)
    }

    /// Stall rescue's sampler: samples every member of every group with a
    /// threshold; returns when to sample next (`None`: no such group).
    fn scan(&self) -> Option<u32> {
        let groups = match self.stall_groups() {
            Ok(groups) => groups,
            Err(_) => return Some(SAMPLE_RETRY_MS),
        };
        let mut next: Option<u32> = None;
        for g in groups.iter() {
            let tick = stall::tick_ms(g.stall_ms);
            next = Some(next.map_or(tick, |n| n.min(tick)));
            for i in 0..g.members.len() {
                g.sample(i);
            }
        }
        next
    }
}

impl Control {
    /// Makes `anchor` and `listed`, in that order, one group; or, when
    /// `listed` is empty, takes `anchor` out of its group.
    pub(crate) fn regroup(&self, anchor: &Sock, listed: &[&Sock], req: &Request) -> Result {
        let mut w = self.0.cell.lock();
        self.regroup_locked(&mut w, anchor, listed, req)?;
        // A member that stopped listening since `validate` saw it listening
        // may have missed the hook (which only marks members it finds
        // published): the snapshot is published (above) before the states
        // are read (below), and TCP sets the state before the hook reads the
        // snapshot, both with full fences (see `listen_stopped`), so one of
        // the two sees the other's change and queues the sweep.
        fence(SeqCst);
        if listed.iter().any(|sk| !sk.is_listening()) || !anchor.is_listening() {
            self.0.kick();
        }
        // Stall rescue's sampler runs while a group has a threshold.
        if req.stall_ms != 0 {
            self.0.kick();
        }
        Ok(())
    }

    fn regroup_locked(
        &self,
        w: &mut Writer<'_>,
        anchor: &Sock,
        listed: &[&Sock],
        req: &Request,
    ) -> Result {
        let (snap, book) = w.get();
        let old = snap.and_then(|s| s.group_of(anchor));
        let old_id = old.map(|g| g.id);
        if listed.is_empty() {
            if old.is_none() {
                return Ok(());
            }
            let key = anchor.key();
            let plans = plans(snap, None, |m| m.sk.key() != key)?;
            return publish(w, plans);
        }
        validate_in(snap, anchor, listed)?;
        uapi::check_room(
            snap.map_or(0, |s| s.groups.len()),
            snap.map_or(0, |s| s.members.len()),
            old.map(|g| g.ring.len()),
            listed.len() + 1,
        )
        .map_err(errno)?;

        let mut members = KVec::with_capacity(listed.len() + 1, GFP)?;
        for sk in Iterator::chain(core::iter::once(anchor), listed.iter().copied()) {
            // Members that stay keep their counters, unless they stopped
            // listening meanwhile (then they are new members).
            let counters = snap
                .and_then(|s| s.find(sk).map(|m| &s.members[m].counters))
                .filter(|c| !c.stopped.load(Acquire))
                .cloned();
            let counters = match counters {
                Some(c) => c,
                None => Arc::new(Counters::default(), GFP)?,
            };
            // `validate` checked the family.
            members.push((sk.into(), fam_of(sk).ok_or(EINVAL)?, counters), GFP)?;
        }
        let mut plans = plans(snap, old_id, |_| true)?;
        let id = match old_id {
            Some(id) => id,
            None => book.next_id + 1,
        };
        plans.push(
            Plan {
                id,
                policy: req.policy,
                flags: req.flags,
                stall_ms: req.stall_ms,
                members,
            },
            GFP,
        )?;
        publish(w, plans)?;
        // Only once it succeeded: a failed request changes nothing.
        let book = w.get().1;
        book.next_id = book.next_id.max(id);
        Ok(())
    }

    /// Checks a request as `regroup` would, without changing anything.
    pub(crate) fn validate(&self, anchor: &Sock, listed: &[&Sock]) -> Result {
        let mut w = self.0.cell.lock();
        validate_in(w.get().0, anchor, listed)
    }

    /// The getsockopt reply of `version` for `sk`'s group (`ENOENT`: in
    /// no group).
    pub(crate) fn info(&self, sk: &Sock, version: u32) -> Result<KVec<u8>> {
        let mut w = self.0.cell.lock();
        let snap = w.get().0.ok_or(ENOENT)?;
        let g = snap.group_of(sk).ok_or(ENOENT)?;
        let v2 = version == uapi::VERSION_2;
        let (info_len, member_len) = if v2 {
            (uapi::INFO2_LEN, uapi::MEMBER2_LEN)
        } else {
            (uapi::INFO_LEN, uapi::MEMBER_LEN)
        };
        let mut out = KVec::with_capacity(info_len + g.ring.len() * member_len, GFP_KERNEL)?;
        let dropped = snap.ring(g).map(|m| m.counters.dropped.load(Relaxed)).sum();
        let info = Info {
            flags: g.flags,
            policy: g.policy as u32,
            count: g.ring.len() as u32,
            group_id: g.id,
            dropped,
            stall_ms: g.stall_ms,
        };
        if v2 {
            out.extend_from_slice(&info.encode_v2(), GFP_KERNEL)?;
        } else {
            out.extend_from_slice(&info.encode(), GFP_KERNEL)?;
        }
        let now = now_ms();
        for m in snap.ring(g) {
            let mi = member_info(m, now);
            if v2 {
                out.extend_from_slice(&mi.encode_v2(), GFP_KERNEL)?;
            } else {
                out.extend_from_slice(&mi.encode(), GFP_KERNEL)?;
            }
        }
        Ok(out)
    }
}

fn validate_in(snap: Option<&Snapshot>, anchor: &Sock, listed: &[&Sock]) -> Result {
    let candidate = |sk: &Sock| Candidate {
        fam: fam_of(sk),
        same_net: sk.net() == anchor.net(),
        listening: sk.is_listening(),
        key: sk.key(),
        group: snap.and_then(|s| s.group_of(sk)).map(|g| g.id),
    };
    let mut cands = KVec::with_capacity(listed.len(), GFP)?;
    for sk in listed {
        cands.push(candidate(sk), GFP)?;
    }
    uapi::validate(&candidate(anchor), &cands).map_err(errno)
}

/// The service groups of one network namespace (part of its
/// [`crate::netns::NetState`]).
pub(crate) struct NetGroups {
    snap: Arc<Worked<Groups>>,
}

impl NetGroups {
    /// The groups of `sk`'s namespace.
    pub(crate) fn of<'a>(sk: &'a Sock, guard: &'a Guard) -> Option<&'a NetGroups> {
        crate::netns::NetState::of(sk.net(), guard).map(|s| &s.groups)
    }

    /// The handle for a request, which may sleep (it keeps the groups even
    /// if the namespace goes meanwhile).
    pub(crate) fn control(&self) -> Control {
        Control(self.snap.clone())
    }

    /// A listener stopped listening (atomic context, the socket locked): if
    /// it is a member, it is marked and the sweep takes it out.
    pub(crate) fn listen_stopped(&self, sk: &Sock) {
        // TCP set the state (no longer LISTEN) before calling the hook; this
        // full fence orders that before reading the snapshot (see `regroup`).
        fence(SeqCst);
        let guard = Guard::new();
        let Some(snap) = self.snap.get(&guard) else {
            return;
        };
        let Some(m) = snap.find(sk) else {
            return;
        };
        snap.members[m].counters.stopped.store(true, Release);
        // Now, even if the sampler's next run is queued for later.
        self.snap.kick();
    }

    /// The decision for a packet: `None` unless it is a pure SYN for a member
    /// of a group of the given mode (`rewrite`) that is full, and TCP has no
    /// socket for its 4-tuple yet.
    fn decide<'a>(
        snap: &'a Snapshot,
        net: &Net,
        skb: &SkBuff,
        family: Family,
        rewrite: bool,
        guard: &'a Guard,
    ) -> Option<Decision<'a>> {
        let tcp = skb.tcp(family)?;
        let mask = tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST | tcp_flags::FIN;
        if tcp.flags & mask != tcp_flags::SYN {
            return None;
        }
        let listener = skb.listener(net, family, &tcp, guard)?;
        let d = snap.choose(listener, family == Family::Inet, rewrite)?;
        // A SYN whose 4-tuple TCP already knows is TCP's: a retransmission
        // for a handshake under way (its request socket is what makes the
        // member full; on a sibling it would be a second one), or a new
        // connection on a TIME_WAIT 4-tuple (`tcp_timewait_state_process`
        // decides). Early demux attaches such a socket, but not on loopback
        // nor with `tcp_early_demux` off, so look, as TPROXY does; only for
        // the few SYNs that would be redirected or counted.
        if skb.has_established(net, family, &tcp) {
            return None;
        }
        Some(d)
    }

    /// Steer mode's decision for a new IPv4 connection addressed to
    /// listener `sk`, as [`Self::steer`] takes it once the packet's
    /// listener is known: the namespace's snapshot (none without groups),
    /// the listener's group, the ring choice. `None`: the kernel's own path
    /// (no group, not a member, or it has room); `Some(Some(key))`: the
    /// sibling with this socket key takes it; `Some(None)`: every member is
    /// full. For the KUnit suite's microbenchmark (`rust/kunit.rs`).
    #[cfg(CONFIG_KUNIT)]
    pub(crate) fn steer_choice(&self, sk: &Sock) -> Option<Option<usize>> {
        let guard = Guard::new();
        let d = self.snap.get(&guard)?.choose(sk, true, false)?;
        Some(d.target.map(|t| t.sk.key()))
    }

    /// Steer mode's decision for a packet at LOCAL_IN (see [`Self::decide`]).
    fn steer_decision<'a>(
        &'a self,
        net: &Net,
        skb: &SkBuff,
        family: Family,
        guard: &'a Guard,
    ) -> Option<Decision<'a>> {
        let snap = self.snap.get(guard)?;
        if skb.has_sock() {
            return None;
        }
        // With `tcp_syncookies=2` every listener answers every SYN with a
        // cookie, and the ACK of a steered one would be looked up on the
        // addressed listener: leave them all to the kernel.
        if net.tcp_syncookies() == 2 {
            return None;
        }
        Self::decide(snap, net, skb, family, false, guard)
    }

    /// [`Self::steer_decision`] for an IPv4 packet, for the KUnit suite's
    /// microbenchmark: the LOCAL_IN hook's whole decision, without acting
    /// on it. Answers as [`Self::steer_choice`].
    #[cfg(CONFIG_KUNIT)]
    pub(crate) fn steer_packet(&self, net: &Net, skb: &SkBuff) -> Option<Option<usize>> {
        let guard = Guard::new();
        let d = self.steer_decision(net, skb, Family::Inet, &guard)?;
        Some(d.target.map(|t| t.sk.key()))
    }

    /// Steer mode, at LOCAL_IN: a SYN for a full member is handed to the
    /// sibling's socket as addressed.
    fn steer(&self, net: &Net, skb: &SkBuff, family: Family) {
        let guard = Guard::new();
        let Some(d) = self.steer_decision(net, skb, family, &guard) else {
            return;
        };
        match d.target {
            Some(target) => {
                if skb.assign_sock(&target.sk) {
                    d.count_redirect(target);
                }
            }
            None => d.count_drop(),
        }
    }

    /// Rewrite mode, from the NAT core for a new connection (PRE_ROUTING,
    /// LOCAL_OUT): a SYN for a full member gets the sibling's address and port.
    fn rewrite(&self, net: &Net, skb: &SkBuff, family: Family) -> Option<NatTarget> {
        let guard = Guard::new();
        let snap = self.snap.get(&guard)?;
        let d = Self::decide(snap, net, skb, family, true, &guard)?;
        // A wildcard member's lookup also matches SYNs that only pass
        // through this host: only those addressed here are ours (a route
        // lookup, so after the cheaper checks of `decide`).
        if !skb.daddr_is_local(net, family) {
            return None;
        }
        let Some(target) = d.target else {
            d.count_drop();
            return None;
        };
        let addr = target.rewrite_target(family == Family::Inet)?;
        d.count_redirect(target);
        Some(NatTarget {
            addr,
            port: target.sk.local_port(),
        })
    }
}

/// What the packet path decided for a SYN to a full member.
struct Decision<'a> {
    addressed: &'a Member,
    /// The sibling that takes it; `None`: every member is full.
    target: Option<&'a Member>,
}

impl Decision<'_> {
    fn count_redirect(&self, target: &Member) {
        self.addressed
            .counters
            .redirected_away
            .fetch_add(1, Relaxed);
        target.counters.redirected_in.fetch_add(1, Relaxed);
    }

    /// The kernel's own overflow handling drops it (or answers with a SYN
    /// cookie) and counts it in ListenOverflows; we count it too.
    fn count_drop(&self) {
        self.addressed.counters.dropped.fetch_add(1, Relaxed);
    }
}

fn member_info(m: &Member, now: u64) -> MemberInfo {
    let sk = &m.sk;
    let stall = m.counters.stall.tracker();
    MemberInfo {
        family: sk.family().map_or(0, |f| f.af()),
        port: sk.local_port(),
        state: sk.state(),
        v6only: m.fam == Fam::V6Only,
        addr: sk.local_addr(),
        accept_queue: sk.ack_backlog(),
        accept_limit: sk.max_ack_backlog(),
        handshakes: sk.reqsk_queue_len(),
        cookie: sk.cookie(),
        redirected_away: m.counters.redirected_away.load(Relaxed),
        redirected_in: m.counters.redirected_in.load(Relaxed),
        dropped: m.counters.dropped.load(Relaxed),
        stalled: stall.is_stalled(),
        stalled_ms: u32::try_from(stall.stalled_for(now)).unwrap_or(u32::MAX),
        rescued_away: m.counters.rescued_away.load(Relaxed),
        rescued_in: m.counters.rescued_in.load(Relaxed),
    }
}

/// What the namespace's registration (`crate::netns`) serves for the groups.
impl NetGroups {
    /// The groups of a new namespace.
    pub(crate) fn new() -> Result<Self> {
        let groups = pin_init!(Groups {
            cell <- RcuMutex::new(new_mutex!(
                Book {
                    next_id: 0,
                    failures: 0
                },
                "sockgroup_groups"
            )),
        });
        let snap = Arc::pin_init(Worked::new(groups), GFP_KERNEL)?;
        Ok(NetGroups { snap })
    }

    /// The LOCAL_IN hook (see `crate::netns` for its priority).
    pub(crate) fn local_in(&self, net: &Net, skb: &SkBuff, family: Family) -> Verdict {
        self.steer(net, skb, family);
        Verdict::Accept
    }

    /// The NAT lookup of a new connection.
    pub(crate) fn nat_dst(&self, net: &Net, skb: &SkBuff, family: Family) -> Option<NatTarget> {
        self.rewrite(net, skb, family)
    }

    /// The content of `/proc/net/sockgroup`.
    pub(crate) fn show(&self, out: &mut SeqFile) -> core::fmt::Result {
        writeln!(out, "# group policy mode member family local state queue handshakes limit redirected_away redirected_in dropped cookie stall_ms status rescued_away rescued_in")?;
        let guard = Guard::new();
        let Some(snap) = self.snap.get(&guard) else {
            return Ok(());
        };
        let now = now_ms();
        for g in snap.groups.iter() {
            let policy = match g.policy {
                Policy::Ring => "ring",
                Policy::Primary => "primary",
            };
            let mode = if g.flags & uapi::F_REWRITE != 0 {
                "rewrite"
            } else {
                "steer"
            };
            for (i, m) in snap.ring(g).enumerate() {
                let mi = member_info(m, now);
                let v6 = m.fam != Fam::V4;
                writeln!(
                    out,
                    "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
                    g.id,
                    policy,
                    mode,
                    i,
                    if v6 { "inet6" } else { "inet" },
                    SockAddr {
                        v6,
                        addr: &mi.addr,
                        port: mi.port
                    },
                    mi.state,
                    mi.accept_queue,
                    mi.handshakes,
                    mi.accept_limit,
                    mi.redirected_away,
                    mi.redirected_in,
                    mi.dropped,
                    mi.cookie,
                    g.stall_ms,
                    if mi.stalled { "stalled" } else { "serving" },
                    mi.rescued_away,
                    mi.rescued_in
                )?;
            }
        }
        Ok(())
    }
}
