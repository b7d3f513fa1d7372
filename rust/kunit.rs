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
    let fwd = || kernel::sync::Arc::pin_init(crate::cluster::fwd::Fwd::new()?, GFP_KERNEL);
    let one = KBox::pin_init(Channels::new(net, fwd()?), GFP_KERNEL)?;
    let two = KBox::pin_init(Channels::new(net, fwd()?), GFP_KERNEL)?;
    one.apply(Some(&node(1)), &[peer(2, &key)])?;
    two.apply(Some(&node(2)), &[peer(1, &key)])?;
    let state = |c: &Channels, id| c.peer_status(id).map(|s| s.0);
    let hb = |c: &Channels, id| c.peer_status(id).map_or(0, |s| s.1.heartbeats_rx);
    // Up, and a few heartbeats each way: at most 5 s.
    for _ in 0..500 {
        if hb(&one, 2) > 2 && hb(&two, 1) > 2 {
            break;
        }
        // SAFETY: Process context (the KUnit case's thread).
        unsafe { super::bindings::msleep(10) };
    }
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
    for _ in 0..500 {
        if rejected(&two, 1) > 1 {
            break;
        }
        // SAFETY: As above.
        unsafe { super::bindings::msleep(10) };
    }
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
