// SPDX-License-Identifier: GPL-2.0

//! Entry points for the KUnit suite in `sockgroup_kunit.c`.
//!
//! 6.12 has no `#[kunit_tests]`: the suite is C, in a test module of its own
//! (`sockgroup_kunit.ko`, built only for kernels with `CONFIG_KUNIT`, as is
//! this file), and calls these functions through `helpers.c`, which
//! exports them to it (`sg_kunit_*`, `EXPORT_SYMBOL_IF_KUNIT`). They run
//! the module's Rust code inside the kernel and report what they observed
//! in a plain C struct for the suite to assert on.

use super::{skb::Family, sock::KernelSocket};
use crate::logic::ring::{choose, Choice, Load, Policy};

use super::bindings::sg_listener_report as ListenerReport;

fn probe(backlog: i32) -> kernel::error::Result<ListenerReport> {
    let sock = KernelSocket::new_tcp(Family::Inet)?;
    sock.bind_loopback_v4()?;
    sock.listen(backlog)?;
    let sk = sock.sk();
    Ok(ListenerReport {
        err: 0,
        state: u32::from(sk.state()),
        max_backlog: sk.max_ack_backlog(),
        backlog: sk.ack_backlog(),
        handshakes: sk.reqsk_queue_len(),
    })
}

/// Creates a kernel TCP listener with `backlog` and reads it through [`super::sock::Sock`].
///
/// The report's layout is `struct sg_listener_report` of `kunit.h`.
///
/// # Safety
///
/// `out` must be valid for writing a `ListenerReport`.
#[no_mangle]
pub unsafe extern "C" fn sg_rs_kunit_listener_probe(out: *mut ListenerReport, backlog: i32) {
    let report = probe(backlog).unwrap_or_else(|e| ListenerReport {
        err: e.to_errno(),
        ..Default::default()
    });
    // SAFETY: The caller guarantees `out` is valid for writes.
    unsafe { out.write(report) };
}

/// Runs the ring choice as compiled into the module.
///
/// Member `i` is full when bit `i` of `full_mask` is set.  Returns the
/// chosen index, `-1` for "the addressed member keeps it", `-2` for "all full".
#[no_mangle]
pub extern "C" fn sg_rs_kunit_ring_choose(
    primary: bool,
    len: u32,
    addressed: u32,
    full_mask: u64,
) -> i32 {
    let policy = if primary {
        Policy::Primary
    } else {
        Policy::Ring
    };
    let load = |i: usize| Load {
        listening: true,
        accept_queue: if full_mask & (1 << i) != 0 { 2 } else { 0 },
        handshakes: 0,
        limit: 1,
        cookie: false,
        stalled: false,
    };
    match choose(policy, len.min(64) as usize, addressed as usize, load) {
        Choice::Addressed => -1,
        Choice::Redirect(i) => i as i32,
        Choice::AllFull => -2,
    }
}

use super::bindings::{sg_channel_report as ChannelReport, sg_hmac_report as HmacReport};

fn hmac(key: &[u8], data: &[u8]) -> kernel::error::Result<HmacReport> {
    let mac = super::crypto::HmacSha256::new(key)?;
    let (a, rest) = data.split_at(data.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    let digest = mac.digest(data)?;
    Ok(HmacReport {
        err: 0,
        digest,
        digest_parts: mac.digest_parts(&[a, b, c])?,
        memneq_equal: super::crypto::memneq(&digest, &digest),
        memneq_differ: super::crypto::memneq(&digest, &[0u8; 32]),
    })
}

/// Computes HMAC-SHA256 with [`super::crypto::HmacSha256`], in one buffer and in parts.
///
/// # Safety
///
/// `out` must be valid for writing; `key` and `data` valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn sg_rs_kunit_hmac(
    out: *mut HmacReport,
    key: *const u8,
    key_len: usize,
    data: *const u8,
    len: usize,
) {
    // SAFETY: The caller guarantees both buffers.
    let (key, data) = unsafe {
        (
            core::slice::from_raw_parts(key, key_len),
            core::slice::from_raw_parts(data, len),
        )
    };
    let report = hmac(key, data).unwrap_or_else(|e| HmacReport {
        err: e.to_errno(),
        ..Default::default()
    });
    // SAFETY: The caller guarantees `out` is valid for writes.
    unsafe { out.write(report) };
}

fn channel_pair() -> kernel::error::Result<ChannelReport> {
    use crate::cluster::{
        channel::{Channels, PeerState},
        Addr, AddrFamily, Key, NodeConfig, PeerConfig,
    };
    use kernel::prelude::*;

    let v4 = |last: u8| Addr {
        family: AddrFamily::V4,
        bytes: [127, 0, 0, last, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    };
    let node = |id: u32| NodeConfig {
        id,
        ctl_addr: v4(id as u8),
        ctl_port: 17000 + id as u16,
        fwd_addr: None,
        fwd_port: 0,
        hb_interval_ms: 50,
        replay_offsets: Default::default(),
    };
    let key = Key::new(&[0x5a; 32]).ok_or(EINVAL)?;
    let peer = |id: u32, key: &Key| PeerConfig {
        id,
        addr: v4(id as u8),
        ctl_port: 17000 + id as u16,
        key: key.clone(),
    };
    // SAFETY: `init_net` lives for the whole uptime.
    let net =
        unsafe { super::net::Net::from_raw(core::ptr::addr_of_mut!(super::bindings::init_net)) };
    let fwd =
        || kernel::sync::Arc::pin_init(crate::cluster::fwd::Fwd::new(|_, _, _, _| {})?, GFP_KERNEL);
    let one = KBox::pin_init(Channels::new(net, fwd()?), GFP_KERNEL)?;
    let two = KBox::pin_init(Channels::new(net, fwd()?), GFP_KERNEL)?;
    one.apply(Some(&node(1)), &[peer(2, &key)])?;
    two.apply(Some(&node(2)), &[peer(1, &key)])?;
    let state = |c: &Channels, id| c.peer_status(id).map(|s| s.0);
    let hb = |c: &Channels, id| c.peer_status(id).map_or(0, |s| s.1.heartbeats_rx);
    // Up, and a few heartbeats each way: at most 5 s.
    wait_until(|| hb(&one, 2) > 2 && hb(&two, 1) > 2);
    let (generation, members) = one.membership();
    let mut r = ChannelReport {
        err: 0,
        state1: state(&one, 2).map_or(0, |s| s as u32),
        state2: state(&two, 1).map_or(0, |s| s as u32),
        heartbeats_rx1: hb(&one, 2),
        heartbeats_rx2: hb(&two, 1),
        generation1: generation,
        members1: members.len() as u32,
        ..Default::default()
    };
    let wrong = Key::new(&[0xa5; 32]).ok_or(EINVAL)?;
    two.apply(Some(&node(2)), &[peer(1, &wrong)])?;
    let rejected = |c: &Channels, id| c.peer_status(id).map_or(0, |s| s.1.rejected);
    wait_until(|| rejected(&two, 1) > 1);
    r.wrong_key_state2 = state(&two, 1).map_or(0, |s| s as u32);
    r.wrong_key_rejected2 = rejected(&two, 1);
    r.wrong_key_downs2 = two.peer_status(1).map_or(0, |s| s.1.downs);
    let _ = PeerState::Up;
    Ok(r)
}

/// Runs two nodes' channels over loopback (see `sg_test_channel_pair`).
///
/// # Safety
///
/// `out` must be valid for writing a `ChannelReport`.
#[no_mangle]
pub unsafe extern "C" fn sg_rs_kunit_channel_pair(out: *mut ChannelReport) {
    let report = channel_pair().unwrap_or_else(|e| ChannelReport {
        err: e.to_errno(),
        ..Default::default()
    });
    // SAFETY: The caller guarantees `out` is valid for writes.
    unsafe { out.write(report) };
}

use kernel::prelude::{KVec, GFP_KERNEL};

/// One rule of the configuration [`rules_check`] compiles.
fn kunit_rule(
    id: u32,
    service: u32,
    prio: u32,
    kind: crate::logic::select::MatchKind,
    value: &[u8],
    target: crate::cluster::RuleTarget,
) -> kernel::error::Result<crate::cluster::Rule> {
    let mut match_value = KVec::new();
    match_value.extend_from_slice(value, GFP_KERNEL)?;
    Ok(crate::cluster::Rule {
        id,
        service,
        prio,
        match_type: kind as u32,
        match_value,
        target,
        stats: crate::cluster::rules::RuleStats::new()?,
    })
}

/// Builds service 1's rules as the packet path gets them and decides
/// requests: first match by prio then id, the default, the targets' choices
/// and the counters. `Ok(0)` when every check held, else `Ok(n)` for the
/// first check `n` that failed.
fn rules_check() -> kernel::error::Result<i32> {
    use crate::cluster::{rules::ServiceRules, rules::Verdict, Config, RuleTarget};
    use crate::logic::{
        request::parse,
        select::{rendezvous, MatchKind::*},
    };
    let mut hash = KVec::new();
    hash.extend_from_slice(&[2, 3, 0], GFP_KERNEL)?;
    let mut rules = KVec::new();
    // Sorted by id, as the configuration keeps them; tried by prio.
    for r in [
        kunit_rule(1, 1, 20, Any, b"", RuleTarget::Peer(4))?,
        kunit_rule(2, 1, 10, PathPrefix, b"/static/", RuleTarget::Local)?,
        kunit_rule(3, 1, 10, PathPrefix, b"/api/", RuleTarget::Peer(2))?,
        kunit_rule(5, 1, 5, Cookie, b"SID", RuleTarget::Hash(hash))?,
        kunit_rule(6, 2, 0, Any, b"", RuleTarget::Peer(2))?,
    ] {
        rules.push(r, GFP_KERNEL)?;
    }
    let mut cfg = Config::new();
    cfg.rules = rules;
    let svc = ServiceRules::build(&cfg, 1)?;
    let all = [1, 2, 3];
    let sid = b"GET /api/x HTTP/1.1\r\nHost: a\r\nCookie: t=1; SID=abc\r\n\r\n";
    let want_sid = match rendezvous(b"abc", &[2, 3, 0], 1, &all) {
        Some(0) => Verdict::Peer(2),
        Some(1) => Verdict::Peer(3),
        _ => Verdict::Local,
    };
    // (request, nodes up, the expected verdict and rule)
    type Case<'a> = (&'a [u8], &'a [u32], (Verdict, u32));
    let cases: [Case<'_>; 7] = [
        (
            b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n",
            &all,
            (Verdict::Peer(2), 3),
        ),
        (
            b"GET /static/a HTTP/1.1\r\nHost: a\r\n\r\n",
            &all,
            (Verdict::Local, 2),
        ),
        // The default of the rules (any, peer 4) with peer 4 down.
        (
            b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
            &all,
            (Verdict::Local, 1),
        ),
        (b"\x00garbage\r\n\r\n", &all, (Verdict::Local, 1)),
        (sid, &all, (want_sid, 5)),
        // Only this node up: the hash's entry 0 (this node).
        (sid, &[], (Verdict::Local, 5)),
        // Peer 2 is this node: a peer verdict naming it is local.
        (
            b"GET /api/y HTTP/1.1\r\nHost: a\r\n\r\n",
            &all,
            (Verdict::Local, 3),
        ),
    ];
    for (i, (req, up, want)) in cases.iter().enumerate() {
        let self_id = if i == 6 { 2 } else { 1 };
        if svc.decide(&parse(req), self_id, up) != *want {
            return Ok(i as i32 + 1);
        }
    }
    let stats = |id| {
        svc.rule_stats(id)
            .map(|s| (s.matched(), s.none_up(), s.chosen(0)))
    };
    let checks = [
        stats(3) == Some((2, 0, 2)),
        stats(2) == Some((1, 0, 1)),
        stats(1) == Some((2, 2, 0)),
        svc.rule_stats(5)
            .map(|s| (s.matched(), s.none_up(), s.chosen(2)))
            == Some((2, 0, 1 + u64::from(want_sid == Verdict::Local))),
        // Service 2's rule is not service 1's; the configuration's
        // counters are the compiled rules'.
        svc.rule_stats(6).is_none(),
        cfg.rules[2].stats.matched() == 2,
        // Service 2 has only its own rule; an empty service the default.
        ServiceRules::build(&cfg, 2)?.decide(&parse(b"x"), 1, &all) == (Verdict::Peer(2), 6),
        ServiceRules::build(&cfg, 9)?.decide(&parse(b"x"), 1, &all) == (Verdict::Local, 0),
    ];
    Ok(checks
        .iter()
        .position(|ok| !ok)
        .map_or(0, |i| 100 + i as i32))
}

/// A TCP service of the configuration [`rules_incremental_check`] changes,
/// with no rule.
fn kunit_service(id: u32) -> kernel::error::Result<crate::cluster::Service> {
    use crate::cluster::{hold::HoldStats, rules::ServiceRules, Addr, AddrFamily, PROTO_TCP};
    Ok(crate::cluster::Service {
        id,
        addr: Addr {
            family: AddrFamily::V4,
            bytes: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        },
        port: 8000 + id as u16,
        proto: PROTO_TCP,
        role: 0,
        hold_timeout_ms: 2000,
        stats: kernel::sync::Arc::new(HoldStats::default(), GFP_KERNEL)?,
        rules: ServiceRules::shared(core::iter::empty())?,
        dispatchers: Default::default(),
    })
}

/// Rules added and removed through the configuration (as rule-new and
/// rule-del do): only their service's compiled rules are rebuilt, equal to
/// those built from scratch; the other services keep theirs (the same
/// `Arc`); the counters survive; a rule of an unknown service changes
/// nothing. `Ok(0)` when every check held, else `Ok(200 + n)` for the
/// first check `n` that failed.
fn rules_incremental_check() -> kernel::error::Result<i32> {
    use crate::cluster::{
        position,
        rules::{ServiceRules, Verdict},
        Config, RuleTarget,
    };
    use crate::logic::{request::parse, select::MatchKind::*};
    use kernel::sync::Arc;
    let mut cfg = Config::new();
    for id in [1, 2, 3] {
        cfg.services.push(kunit_service(id)?, GFP_KERNEL)?;
    }
    let all = [1, 2, 3];
    let a = parse(b"GET /a/x HTTP/1.1\r\nHost: a\r\n\r\n");
    let b = parse(b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
    // Adds rule `id` where the configuration keeps it (by id).
    let add = |cfg: &mut Config, id, service, prio, kind, value: &[u8], target| {
        let at = position(&cfg.rules, id, |r| r.id).unwrap_or_else(|i| i);
        cfg.insert_rule(at, kunit_rule(id, service, prio, kind, value, target)?)
    };
    // Whether service `i`'s compiled rules are those built from scratch.
    let fresh = |cfg: &Config, i: usize| -> kernel::error::Result<bool> {
        let built = ServiceRules::build(cfg, cfg.services[i].id)?;
        Ok(cfg.services[i].rules.ids().eq(built.ids()))
    };
    add(&mut cfg, 30, 1, 10, PathPrefix, b"/a/", RuleTarget::Peer(2))?;
    add(&mut cfg, 20, 2, 0, Any, b"", RuleTarget::Peer(3))?;
    add(&mut cfg, 10, 1, 10, Any, b"", RuleTarget::Peer(3))?;
    // Rule 10 before rule 30 (same prio): it matches (its counter: 1).
    let first = cfg.services[0].rules.decide(&a, 1, &all);
    let svc = |cfg: &Config, i: usize| cfg.services[i].rules.clone();
    let (s1, s2, s3) = (svc(&cfg, 0), svc(&cfg, 1), svc(&cfg, 2));
    // Service 3's rule: services 1 and 2 keep their compiled rules.
    add(&mut cfg, 40, 3, 0, PathPrefix, b"/b", RuleTarget::Local)?;
    let kept = Arc::ptr_eq(&svc(&cfg, 0), &s1)
        && Arc::ptr_eq(&svc(&cfg, 1), &s2)
        && !Arc::ptr_eq(&svc(&cfg, 2), &s3);
    let s3 = svc(&cfg, 2);
    // A rule of service 1 tried first (prio 5): service 1's only.
    add(&mut cfg, 50, 1, 5, PathPrefix, b"/a/", RuleTarget::Local)?;
    let second = cfg.services[0].rules.decide(&a, 1, &all);
    let kept2 = !Arc::ptr_eq(&svc(&cfg, 0), &s1)
        && Arc::ptr_eq(&svc(&cfg, 1), &s2)
        && Arc::ptr_eq(&svc(&cfg, 2), &s3);
    // No service 9: refused, nothing changed.
    let n = cfg.rules.len();
    let s1 = svc(&cfg, 0);
    let refused = add(&mut cfg, 60, 9, 0, Any, b"", RuleTarget::Local)
        == Err(kernel::error::code::ENOENT)
        && cfg.rules.len() == n
        && Arc::ptr_eq(&svc(&cfg, 0), &s1);
    // Rule 50 goes: service 1 decides as before it came, rule 10's counter
    // kept (it matched once, above), the others' compiled rules kept.
    let at = position(&cfg.rules, 50, |r| r.id).unwrap_or(usize::MAX);
    cfg.remove_rule(at)?;
    let third = cfg.services[0].rules.decide(&a, 1, &all);
    let checks = [
        first == (Verdict::Peer(3), 10),
        kept,
        second == (Verdict::Local, 50),
        kept2,
        refused,
        third == (Verdict::Peer(3), 10),
        cfg.services[0].rules.rule_stats(10).map(|s| s.matched()) == Some(2),
        cfg.rules
            .iter()
            .find(|r| r.id == 10)
            .map(|r| r.stats.matched())
            == Some(2),
        Arc::ptr_eq(&svc(&cfg, 1), &s2) && Arc::ptr_eq(&svc(&cfg, 2), &s3),
        cfg.services[2].rules.decide(&b, 1, &all) == (Verdict::Local, 40),
        cfg.rules.iter().map(|r| r.id).eq([10, 20, 30, 40]),
        fresh(&cfg, 0)? && fresh(&cfg, 1)? && fresh(&cfg, 2)?,
    ];
    Ok(checks
        .iter()
        .position(|ok| !ok)
        .map_or(0, |i| 200 + i as i32))
}

/// Runs [`rules_check`] and [`rules_incremental_check`]: 0 when the compiled rules decided and counted as
/// expected, the number of the first failed check, or a negative errno.
#[no_mangle]
pub extern "C" fn sg_rs_kunit_rules() -> i32 {
    match rules_check() {
        Ok(0) => rules_incremental_check().unwrap_or_else(|e| e.to_errno()),
        r => r.unwrap_or_else(|e| e.to_errno()),
    }
}

use super::bindings::sg_syn_bench_report as SynBenchReport;

/// Sleeps in steps of 10 ms until `done` holds, for at most 5 s; whether it held.
fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        // SAFETY: Process context (the KUnit case's thread).
        unsafe { super::bindings::msleep(10) };
    }
    done()
}

/// Waits (at most 5 s) until the TCP `OutRsts` of `net` stayed the same
/// for 100 ms.
fn quiet_rsts(net: &super::net::Net) {
    let mut last = super::tcp::out_rsts(net);
    let mut still = 0;
    for _ in 0..500 {
        // SAFETY: Process context (the KUnit case's thread).
        unsafe { super::bindings::msleep(10) };
        let now = super::tcp::out_rsts(net);
        if now != last {
            (last, still) = (now, 0);
        } else if still == 9 {
            return;
        } else {
            still += 1;
        }
    }
}

/// An IPv4 TCP SYN from 127.0.0.1:40000 to 127.0.0.1:`dport`: IP and TCP
/// headers (no options, checksums left zero: the decision reads none).
fn syn_v4(dport: u16) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[0] = 0x45; // version 4, 5 words of header
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64; // TTL
    p[9] = super::bindings::IPPROTO_TCP as u8;
    p[12..16].copy_from_slice(&[127, 0, 0, 1]);
    p[16..20].copy_from_slice(&[127, 0, 0, 1]);
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[32] = 5 << 4; // data offset: 5 words
    p[33] = super::skb::tcp_flags::SYN;
    p
}

/// The SYN decision's microbenchmark (see `struct sg_syn_bench_report`):
/// the module's own decisions, [`crate::groups::NetGroups::steer_packet`]
/// for a SYN packet and [`crate::groups::NetGroups::steer_choice`] for its
/// listener, on a ring group of `members` real listeners made with the
/// option's own path (`Control::regroup`), in a groups state of its own
/// (not the initial namespace's, so no packet of the host meets it).
fn syn_bench(members: u32, iters: u32, rounds: u32) -> kernel::error::Result<SynBenchReport> {
    use super::bindings::{
        sg_syn_bench_case_SG_SYN_CASES as CASES, sg_syn_bench_case_SG_SYN_KEEP as KEEP,
        sg_syn_bench_case_SG_SYN_NEXT as NEXT, sg_syn_bench_case_SG_SYN_NOT_MEMBER as NOT_MEMBER,
        sg_syn_bench_case_SG_SYN_NO_GROUP as NO_GROUP, sg_syn_bench_case_SG_SYN_WALK as WALK,
        sg_syn_bench_mode_SG_SYN_LISTENER as LISTENER, sg_syn_bench_mode_SG_SYN_MODES as MODES,
        sg_syn_bench_mode_SG_SYN_PACKET as PACKET,
    };
    use super::{net::Net, skb::OwnedSkb, sock::Sock};
    use crate::{
        groups::NetGroups,
        logic::uapi::{Request, MAX_MEMBERS},
    };
    use core::hint::black_box;
    use kernel::{error::code::EAGAIN, time::Ktime};

    let n = (members as usize).clamp(2, MAX_MEMBERS);
    // Listeners 0..n-1 are the ring; all but the last are full: backlog 1
    // and two connections in the accept queue (full is queue + handshakes
    // > backlog). Listener n is in no group.
    let mut listeners = KVec::with_capacity(n + 1, GFP_KERNEL)?;
    // Kept open until the end: their connections fill the queues.
    let mut clients = KVec::with_capacity(2 * n, GFP_KERNEL)?;
    for i in 0..=n {
        let l = KernelSocket::new_tcp(Family::Inet)?;
        l.bind_loopback_v4()?;
        let full = i + 1 < n;
        l.listen(if full { 1 } else { 16 })?;
        if full {
            // One at a time: a SYN that meets a handshake under way on a
            // backlog of 1 would find the request queue full.
            for queued in 1..=2 {
                let c = KernelSocket::new_tcp(Family::Inet)?;
                c.connect_loopback_v4(l.sk().local_port())?;
                clients.push(c, GFP_KERNEL)?;
                if !wait_until(|| l.sk().ack_backlog() == queued) {
                    return Err(EAGAIN);
                }
            }
        }
        listeners.push(l, GFP_KERNEL)?;
    }
    let sk = |i: usize| listeners[i].sk();
    let mut listed: KVec<&Sock> = KVec::with_capacity(n - 1, GFP_KERNEL)?;
    for i in 1..n {
        listed.push(sk(i), GFP_KERNEL)?;
    }
    let groups = NetGroups::new()?;
    let req = Request {
        flags: 0,
        policy: Policy::Ring,
        count: n - 1,
        stall_ms: 0,
        header_len: 0,
    };
    // Ring order: the anchor, then the listed ones.
    groups.control().regroup(sk(0), &listed, &req)?;
    let empty = NetGroups::new()?;
    // The listeners' namespace, the initial one, where the packets'
    // listener lookup finds them.
    let net: &Net = sk(0).net();

    let mut addressed = [(&groups, 0); CASES as usize];
    addressed[KEEP as usize] = (&groups, n - 1);
    addressed[NEXT as usize] = (&groups, n - 2);
    addressed[WALK as usize] = (&groups, 0);
    addressed[NOT_MEMBER as usize] = (&groups, n);
    addressed[NO_GROUP as usize] = (&empty, 0);
    let mut packets = KVec::with_capacity(CASES as usize, GFP_KERNEL)?;
    for &(_, i) in addressed.iter() {
        packets.push(OwnedSkb::ipv4(&syn_v4(sk(i).local_port()))?, GFP_KERNEL)?;
    }
    let index = |r: Option<Option<usize>>| match r {
        None => -1,
        Some(None) => -2,
        Some(Some(key)) => (0..n)
            .find(|&i| sk(i).key() == key)
            .map_or(-3, |i| i as i32),
    };

    let mut report = SynBenchReport::default();
    let rounds = rounds.clamp(1, 64) as usize;
    // Per round, mode and case: the round's time for `iters` decisions.
    let mut times = [[[0u64; CASES as usize]; MODES as usize]; 64];
    // The modes and cases alternate within each round, so that what else
    // the machine does falls on all of them alike.
    for per_round in times[..rounds].iter_mut() {
        for mode in [PACKET, LISTENER] {
            for (c, &(g, i)) in addressed.iter().enumerate() {
                let (listener, packet) = (sk(i), &*packets[c]);
                let mut last = None;
                let start = Ktime::ktime_get();
                if mode == PACKET {
                    for _ in 0..iters {
                        last = black_box(g.steer_packet(net, black_box(packet)));
                    }
                } else {
                    for _ in 0..iters {
                        last = black_box(g.steer_choice(black_box(listener)));
                    }
                }
                let ns = (Ktime::ktime_get() - start).to_ns().max(0) as u64;
                per_round[mode as usize][c] = ns;
                report.chosen[mode as usize][c] = index(last);
            }
        }
    }
    let per_mode = report.ns_min.iter_mut().zip(report.ns_median.iter_mut());
    for (m, (mins, medians)) in per_mode.enumerate() {
        for (c, (min, median)) in mins.iter_mut().zip(medians.iter_mut()).enumerate() {
            let mut t: [u64; 64] = core::array::from_fn(|r| times[r][m][c]);
            let t = &mut t[..rounds];
            t.sort_unstable();
            *min = t[0];
            *median = t[rounds / 2];
        }
    }
    // The groups hold references on their members: the listeners outlive
    // them in any order of drops.
    Ok(report)
}

/// Runs [`syn_bench`] (see `sg_test_syn_decision`).
///
/// # Safety
///
/// `out` must be valid for writing a `SynBenchReport`.
#[no_mangle]
pub unsafe extern "C" fn sg_rs_kunit_syn_bench(
    out: *mut SynBenchReport,
    members: u32,
    iters: u32,
    rounds: u32,
) {
    let report = syn_bench(members, iters, rounds).unwrap_or_else(|e| SynBenchReport {
        err: e.to_errno(),
        ..Default::default()
    });
    // SAFETY: The caller guarantees `out` is valid for writes.
    unsafe { out.write(report) };
}

use super::bindings::sg_replay_report as ReplayReport;

/// A work item that does nothing: the test's sockets are polled.
struct Idle;

impl super::work::Run for Idle {
    fn run(&self) -> Option<u32> {
        None
    }
}

/// The window scale shift this host chooses for a connection
/// (`tcp_select_initial_window`: the largest of the listener's space,
/// `tcp_rmem[2]` and `rmem_max`, over 64 KiB, at most 14), for a listener
/// with the default buffer and no window clamp.
fn host_rcv_wscale(net: &super::net::Net) -> u8 {
    // SAFETY: `net` is alive; both sysctls are plain integers, read once.
    let (rmem2, rmem_max) = unsafe {
        (
            core::ptr::read_volatile(&(*net.as_ptr()).ipv4.sysctl_tcp_rmem[2]) as u32,
            core::ptr::read_volatile(core::ptr::addr_of!(super::bindings::sysctl_rmem_max)),
        )
    };
    let space = rmem2.max(rmem_max).max(1);
    let log2 = 31 - space.leading_zeros();
    log2.saturating_sub(15).min(14) as u8
}

fn replay(v6: bool, which: u32) -> kernel::error::Result<ReplayReport> {
    use super::{
        bindings,
        net::Net,
        socket::{Namespace, Recv, SockAddr, TcpSocket},
        tcp::{self, Established},
        work::Worked,
    };
    use crate::cluster::replay::Poll;
    use crate::logic::frame::{Family, HandoffReq, Timestamps, Tuple, WScale};
    use crate::netns::NetState;
    use kernel::prelude::*;
    use kernel::sync::Arc;

    // SAFETY: `init_net` lives for the whole uptime.
    let net = unsafe { Net::from_raw(core::ptr::addr_of_mut!(bindings::init_net)) };
    let replays = NetState::replays(net).ok_or(EINVAL)?;
    let (client, server) = if v6 {
        let mut c = [0u8; 16];
        let mut s = [0u8; 16];
        c[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1]);
        c[15] = 2;
        s[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 2]);
        s[15] = 1;
        (c, s)
    } else {
        let mut c = [0u8; 16];
        let mut s = [0u8; 16];
        c[..4].copy_from_slice(&[192, 0, 2, 2]);
        s[..4].copy_from_slice(&[198, 51, 100, 1]);
        (c, s)
    };
    let port = 18080;
    let tuple = Tuple {
        family: if v6 { Family::V6 } else { Family::V4 },
        client,
        server,
        client_port: 40000 + (which as u16) * 2 + u16::from(v6),
        server_port: port,
    };
    // Without the route, the test's network is not set up: the case skips.
    drop(tcp::Route::output(
        net,
        if v6 {
            super::skb::Family::Inet6
        } else {
            super::skb::Family::Inet
        },
        &client,
    )?);
    let work = Arc::pin_init(Worked::new(Idle), GFP_KERNEL)?;
    let ns = Namespace::new(net);
    let addr = SockAddr {
        v6,
        addr: server,
        port,
    };
    let listener = TcpSocket::new(&ns, &addr, &work)?;
    listener.bind(&addr)?;
    listener.listen(8)?;

    let want_wscale = host_rcv_wscale(net);
    let mut request = KVec::new();
    for i in 0..3000u32 {
        request.push((i * 7 + i / 251) as u8, GFP_KERNEL)?;
    }
    let fe_tsval_now = 0x7fff_0000;
    let req = HandoffReq {
        tuple,
        client_isn: 0x1000_0000 + which,
        server_isn: 0xffff_fff0,
        mss: 1460,
        wscale: Some(WScale {
            client: 7,
            server: if which == 1 { 14 } else { want_wscale },
        }),
        sack_ok: true,
        timestamps: Some(Timestamps {
            client_tsval: 12345,
            fe_tsval_now,
            ts_offset: 0,
        }),
        ecn: true,
        client_window: 64240,
        rtt_us: 2000,
        request: &request,
    };
    let conn = tcp::Conn {
        family: if v6 {
            super::skb::Family::Inet6
        } else {
            super::skb::Family::Inet
        },
        local: server,
        local_port: port,
        remote: client,
        remote_port: tuple.client_port,
    };
    let mut r = ReplayReport {
        want_snd_nxt: req.server_isn.wrapping_add(1),
        want_rcv_nxt: req
            .client_isn
            .wrapping_add(1)
            .wrapping_add(request.len() as u32),
        want_rcv_wscale: want_wscale,
        req_len: request.len() as u32,
        ..Default::default()
    };
    let syncookies = net.tcp_syncookies();
    if which == 2 {
        // SAFETY: The namespace is alive; the sysctl is a plain byte that
        // TCP reads with `READ_ONCE`; restored below.
        unsafe { core::ptr::write_volatile(&mut (*net.as_ptr()).ipv4.sysctl_tcp_syncookies, 2) };
    }
    // The cases before closed loopback connections (`syn_bench`'s): the
    // resets of their last packets, answered from softirq, are not this
    // case's.
    quiet_rsts(net);
    let (rsts0, stats0) = (tcp::out_rsts(net), replays.stats());
    let t0 = super::netfilter::now_ms();
    let started = replays.start(net, 7, &req, NetState::replay_hooks_on);
    if which == 2 {
        // SAFETY: As above.
        unsafe {
            core::ptr::write_volatile(&mut (*net.as_ptr()).ipv4.sysctl_tcp_syncookies, syncookies)
        };
    }
    if let Err(reason) = started {
        r.start = reason;
    } else {
        // Decided within 2 s (the segments are normally processed before
        // the start returns).
        for _ in 0..400 {
            match replays.poll(net, 7, &tuple) {
                Poll::Pending => r.outcome = 3,
                Poll::Adopted(_) => {
                    r.outcome = 1;
                    break;
                }
                Poll::Failed(reason) => {
                    r.outcome = 2;
                    r.reason = reason;
                    break;
                }
                Poll::Unknown => {
                    r.outcome = 4;
                    break;
                }
            }
            // SAFETY: Process context (the KUnit case's thread).
            unsafe { bindings::msleep(5) };
        }
    }
    if let Established::Full(s) = tcp::established(net, &conn, false) {
        let (ms, _) = tcp::tcp_clock();
        r.child = true;
        r.ts_lag = ms.wrapping_add(s.tsoffset).wrapping_sub(fe_tsval_now);
        r.elapsed_ms = (super::netfilter::now_ms() - t0) as u32;
        r.snd_nxt = s.snd_nxt;
        r.rcv_nxt = s.rcv_nxt;
        r.snd_wscale = s.snd_wscale;
        r.rcv_wscale = s.rcv_wscale;
        r.wscale_ok = s.wscale_ok;
        r.sack_ok = s.sack_ok;
        r.tstamp_ok = s.tstamp_ok;
        r.ecn_ok = s.ecn_ok;
        r.usec_ts = s.usec_ts;
    }
    let child = listener.accept()?;
    if let Some(c) = &child {
        r.accepted = true;
        let mut buf = KVec::from_elem(0u8, request.len() + 64, GFP_KERNEL)?;
        let mut n = 0;
        while n < buf.len() {
            match c.recv(&mut buf[n..])? {
                Recv::Data(k) => n += k,
                _ => break,
            }
        }
        r.read_len = n as u32;
        r.bytes_equal = buf[..n] == request[..];
    }
    let stats = replays.stats();
    r.out_rsts = tcp::out_rsts(net) - rsts0;
    r.dropped = stats.dropped - stats0.dropped;
    r.rst_dropped = stats.rst_dropped - stats0.rst_dropped;
    Ok(r)
}

/// Replays a synthesized handoff into the initial namespace (see
/// `sg_replay_case` in the suite).
///
/// # Safety
///
/// `out` must be valid for writing a `ReplayReport`.
#[no_mangle]
pub unsafe extern "C" fn sg_rs_kunit_replay(out: *mut ReplayReport, v6: bool, which: u32) {
    let report = replay(v6, which).unwrap_or_else(|e| ReplayReport {
        err: e.to_errno(),
        ..Default::default()
    });
    // SAFETY: The caller guarantees `out` is valid for writes.
    unsafe { out.write(report) };
}

/// The dispatchers' scores with the kernel's CRC32C
/// ([`super::crc32c::KernelCrc32c`]): the CRC's check value, then the
/// scores and the owner and backup of one IPv4 connection, which the host
/// tests (tests/owner_props.rs, `scores_are_fixed`) computed apart. 0 when
/// all hold, else the number of the first check that failed.
#[no_mangle]
pub extern "C" fn sg_rs_kunit_owner() -> i32 {
    use crate::logic::{
        frame::{Family as WireFamily, Tuple},
        owner::{crc32c, score, Pair, View},
    };
    let c = super::crc32c::KernelCrc32c;
    if crc32c(&c, b"123456789") != 0xE306_9283 {
        return 1;
    }
    let mut client = [0u8; 16];
    let mut server = [0u8; 16];
    client[..4].copy_from_slice(&[10, 0, 0, 1]);
    server[..4].copy_from_slice(&[10, 0, 0, 100]);
    let t = Tuple {
        family: WireFamily::V4,
        client,
        server,
        client_port: 40000,
        server_port: 80,
    };
    let want = [0x3824_bbaa, 0xe935_5ba5, 0x2f07_171f];
    for (id, w) in (1u32..).zip(want) {
        if score(&c, id, &t) != w {
            return 2;
        }
    }
    let pair = View::new(&c, 1, &[3, 1, 2]).map(|v| v.pair(&c, &t));
    if pair
        != Ok(Some(Pair {
            owner: 2,
            backup: Some(1),
        }))
    {
        return 3;
    }
    0
}
