// SPDX-License-Identifier: GPL-2.0

//! Requests and replies of the family against byte layouts written out by
//! hand here (independently of netlink-packet-core's emitter), and the
//! parsing of acks, errors with extended acks, dumps and events.

use super::socket::{parse_datagram, request_bytes, Received};
use super::*;
use clap::Parser;
use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP};

const FAMILY: u16 = 0x1f;
const SEQ: u32 = 7;

/// One attribute: header, value, zero padding to 4 bytes.
fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(4 + value.len() as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

/// A nest (NLA_F_NESTED set).
fn nest(kind: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
    nla(kind | 0x8000, &attrs.concat())
}

/// A netlink message: nlmsghdr (type, flags, seq, port 0) and payload.
fn nlmsg(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(16 + payload.len() as u32).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(payload);
    out
}

/// A message of the family: genlmsghdr (cmd, version 1) and attributes.
fn genl(flags: u16, seq: u32, cmd: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut payload = vec![cmd, 1, 0, 0];
    payload.extend(attrs.concat());
    nlmsg(FAMILY, flags, seq, &payload)
}

/// A request as sgctl sends it.
fn request(flags: u16, cmd: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
    genl(1 | flags, SEQ, cmd, attrs)
}

/// `msg` encodes to `want`, and `want` parses back to `msg`.
fn round_trip(flags: u16, msg: SgMessage, want: Vec<u8>) {
    let got = request_bytes(FAMILY, flags, SEQ, msg.clone());
    assert_eq!(got, want, "{msg:?}");
    let parsed = parse_datagram::<SgMessage>(&want, Some(SEQ)).unwrap();
    match &parsed[..] {
        [Received::Message(m)] => assert_eq!(m, &msg),
        other => panic!("{other:?}"),
    }
}

fn cli(args: &[&str]) -> ClusterCommand {
    #[derive(Parser)]
    struct Top {
        #[command(flatten)]
        args: ClusterArgs,
    }
    Top::try_parse_from(std::iter::once("sgctl").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .args
        .command
}

fn u32b(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
fn u16b(v: u16) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
fn u64b(v: u64) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

#[test]
fn node_set() {
    let ClusterCommand::Node(NodeCommand::Set(a)) = cli(&[
        "node",
        "set",
        "--id",
        "3",
        "--ctl",
        "10.0.0.3:7000",
        "--fwd",
        "[fd00::3]:6081",
        "--hb-interval",
        "50",
    ]) else {
        panic!()
    };
    let fwd = vec![0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
    let want = request(
        NLM_F_ACK,
        SOCKGROUP_CMD_NODE_SET,
        &[
            nla(SOCKGROUP_A_NODE_ID, &u32b(3)),
            nla(SOCKGROUP_A_NODE_CTL_ADDR, &[10, 0, 0, 3]),
            nla(SOCKGROUP_A_NODE_CTL_PORT, &u16b(7000)),
            nla(SOCKGROUP_A_NODE_FWD_ADDR, &fwd),
            nla(SOCKGROUP_A_NODE_FWD_PORT, &u16b(6081)),
            nla(SOCKGROUP_A_NODE_HB_INTERVAL, &u32b(50)),
        ],
    );
    // A u16 takes 8 bytes with its padding.
    assert_eq!(want.len(), 16 + 4 + 8 + 8 + 8 + 20 + 8 + 8);
    round_trip(NLM_F_ACK, node_set_msg(&a), want);

    // The replay offsets, hex or decimal.
    let ClusterCommand::Node(NodeCommand::Set(a)) = cli(&[
        "node",
        "set",
        "--id",
        "2",
        "--replay-isn-offset",
        "0x80000000",
        "--replay-ts-offset",
        "4096",
    ]) else {
        panic!()
    };
    let want = request(
        NLM_F_ACK,
        SOCKGROUP_CMD_NODE_SET,
        &[
            nla(SOCKGROUP_A_NODE_ID, &u32b(2)),
            nla(SOCKGROUP_A_NODE_REPLAY_ISN_OFFSET, &u32b(0x8000_0000)),
            nla(SOCKGROUP_A_NODE_REPLAY_TS_OFFSET, &u32b(4096)),
        ],
    );
    round_trip(NLM_F_ACK, node_set_msg(&a), want);
    assert_eq!(parse_u32("0x1g").map_err(|_| ()), Err(()));
    assert_eq!(parse_u32("4294967295"), Ok(u32::MAX));

    // Only the id: nothing else is sent (the kernel keeps the rest).
    let ClusterCommand::Node(NodeCommand::Set(a)) = cli(&["node", "set", "--id", "9"]) else {
        panic!()
    };
    let want = request(
        NLM_F_ACK,
        SOCKGROUP_CMD_NODE_SET,
        &[nla(SOCKGROUP_A_NODE_ID, &u32b(9))],
    );
    round_trip(NLM_F_ACK, node_set_msg(&a), want);
}

#[test]
fn requests_of_one_id_or_none() {
    for (cmd, kind) in [
        (SOCKGROUP_CMD_PEER_DEL, SOCKGROUP_A_PEER_ID),
        (SOCKGROUP_CMD_PEER_GET, SOCKGROUP_A_PEER_ID),
        (SOCKGROUP_CMD_SERVICE_DEL, SOCKGROUP_A_SERVICE_ID),
        (SOCKGROUP_CMD_SERVICE_GET, SOCKGROUP_A_SERVICE_ID),
        (SOCKGROUP_CMD_RULE_DEL, SOCKGROUP_A_RULE_ID),
        (SOCKGROUP_CMD_RULE_GET, SOCKGROUP_A_RULE_ID),
    ] {
        round_trip(
            NLM_F_ACK,
            id_msg(cmd, Some(42)),
            request(NLM_F_ACK, cmd, &[nla(kind, &u32b(42))]),
        );
    }
    for cmd in [
        SOCKGROUP_CMD_PEER_GET,
        SOCKGROUP_CMD_SERVICE_GET,
        SOCKGROUP_CMD_RULE_GET,
    ] {
        let want = request(NLM_F_DUMP, cmd, &[]);
        assert_eq!(want.len(), 20);
        assert_eq!(
            u16::from_ne_bytes([want[6], want[7]]),
            0x301,
            "NLM_F_REQUEST | NLM_F_DUMP"
        );
        round_trip(NLM_F_DUMP, id_msg(cmd, None), want);
    }
    for cmd in [
        SOCKGROUP_CMD_NODE_GET,
        SOCKGROUP_CMD_NODE_DEL,
        SOCKGROUP_CMD_STATS_GET,
    ] {
        round_trip(NLM_F_ACK, id_msg(cmd, None), request(NLM_F_ACK, cmd, &[]));
    }
}

#[test]
fn peer_new_carries_the_key() {
    let ClusterCommand::Peer(PeerCommand::Add(a)) = cli(&[
        "peer",
        "add",
        "--id",
        "2",
        "--addr",
        "10.0.0.2",
        "--ctl-port",
        "7001",
        "--key-file",
        "/k",
    ]) else {
        panic!()
    };
    assert_eq!(a.key_file, std::path::Path::new("/k"));
    assert!(!a.insecure_key_file);
    let key: Vec<u8> = (1..=20).collect();
    let want = request(
        NLM_F_ACK,
        SOCKGROUP_CMD_PEER_NEW,
        &[
            nla(SOCKGROUP_A_PEER_ID, &u32b(2)),
            nla(SOCKGROUP_A_PEER_ADDR, &[10, 0, 0, 2]),
            nla(SOCKGROUP_A_PEER_CTL_PORT, &u16b(7001)),
            nla(SOCKGROUP_A_PEER_KEY, &key),
        ],
    );
    round_trip(NLM_F_ACK, peer_new_msg(&a, Key::new(key.clone())), want);

    // No --ctl-port: none sent; IPv6 address: 16 bytes.
    let ClusterCommand::Peer(PeerCommand::Add(a)) = cli(&[
        "peer",
        "add",
        "--id",
        "5",
        "--addr",
        "::1",
        "--key-file",
        "/k",
        "--insecure-key-file",
    ]) else {
        panic!()
    };
    assert!(a.insecure_key_file);
    let mut v6 = [0u8; 16];
    v6[15] = 1;
    let want = request(
        NLM_F_ACK,
        SOCKGROUP_CMD_PEER_NEW,
        &[
            nla(SOCKGROUP_A_PEER_ID, &u32b(5)),
            nla(SOCKGROUP_A_PEER_ADDR, &v6),
            nla(SOCKGROUP_A_PEER_KEY, &key),
        ],
    );
    round_trip(NLM_F_ACK, peer_new_msg(&a, Key::new(key)), want);
}

#[test]
fn service_new() {
    let ClusterCommand::Service(ServiceCommand::Add(a)) = cli(&[
        "service",
        "add",
        "--id",
        "1",
        "--addr",
        "192.0.2.10",
        "--port",
        "80",
        "--proto",
        "udp",
        "--role",
        "frontend",
    ]) else {
        panic!()
    };
    let want = request(
        NLM_F_ACK,
        SOCKGROUP_CMD_SERVICE_NEW,
        &[
            nla(SOCKGROUP_A_SERVICE_ID, &u32b(1)),
            nla(SOCKGROUP_A_SERVICE_ADDR, &[192, 0, 2, 10]),
            nla(SOCKGROUP_A_SERVICE_PORT, &u16b(80)),
            nla(SOCKGROUP_A_SERVICE_PROTO, &[17]),
            nla(SOCKGROUP_A_SERVICE_ROLE, &u32b(SOCKGROUP_ROLE_FRONTEND)),
        ],
    );
    round_trip(NLM_F_ACK, service_new_msg(&a), want);
    let ClusterCommand::Service(ServiceCommand::Add(a)) = cli(&[
        "service",
        "add",
        "--id",
        "1",
        "--addr",
        "192.0.2.10",
        "--port",
        "80",
    ]) else {
        panic!()
    };
    assert_eq!((a.proto, a.role), (Proto::Tcp, Role::Both));
    assert_eq!(a.hold_timeout, None);
    let ClusterCommand::Service(ServiceCommand::Add(a)) = cli(&[
        "service",
        "add",
        "--id",
        "2",
        "--addr",
        "2001:db8::1",
        "--port",
        "8080",
        "--hold-timeout",
        "300",
    ]) else {
        panic!()
    };
    let mut v6 = [0u8; 16];
    v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    v6[15] = 1;
    let want = request(
        NLM_F_ACK,
        SOCKGROUP_CMD_SERVICE_NEW,
        &[
            nla(SOCKGROUP_A_SERVICE_ID, &u32b(2)),
            nla(SOCKGROUP_A_SERVICE_ADDR, &v6),
            nla(SOCKGROUP_A_SERVICE_PORT, &u16b(8080)),
            nla(SOCKGROUP_A_SERVICE_PROTO, &[6]),
            nla(SOCKGROUP_A_SERVICE_ROLE, &u32b(SOCKGROUP_ROLE_BOTH)),
            nla(SOCKGROUP_A_SERVICE_HOLD_TIMEOUT, &u32b(300)),
        ],
    );
    round_trip(NLM_F_ACK, service_new_msg(&a), want);
}

#[test]
fn service_replies_carry_hold_timeout_and_counters() {
    let counters: Vec<Vec<u8>> = (SOCKGROUP_A_SERVICE_STATS_HELD
        ..=SOCKGROUP_A_SERVICE_STATS_MSS_CLAMPED)
        .map(|k| nla(k, &u64b(100 + u64::from(k))))
        .chain(std::iter::once(nla(99, &u64b(7))))
        .collect();
    let svc = genl(
        0,
        SEQ,
        SOCKGROUP_CMD_SERVICE_GET,
        &[
            nla(SOCKGROUP_A_SERVICE_ID, &u32b(3)),
            nla(SOCKGROUP_A_SERVICE_ADDR, &[10, 0, 0, 2]),
            nla(SOCKGROUP_A_SERVICE_PORT, &u16b(80)),
            nla(SOCKGROUP_A_SERVICE_PROTO, &[6]),
            nla(SOCKGROUP_A_SERVICE_ROLE, &u32b(SOCKGROUP_ROLE_FRONTEND)),
            nla(SOCKGROUP_A_SERVICE_HOLD_TIMEOUT, &u32b(2000)),
            nest(SOCKGROUP_A_SERVICE_STATS, &counters),
        ],
    );
    let services = services_of(messages(&svc));
    let s = &services[0];
    assert_eq!(s.hold_timeout_ms, Some(2000));
    let c = s.stats.as_ref().unwrap();
    assert_eq!(
        (
            c.held,
            c.local,
            c.remote,
            c.over_bytes,
            c.over_time,
            c.malformed
        ),
        (101, 102, 103, 104, 105, 106)
    );
    assert_eq!(
        (
            c.http1,
            c.http2,
            c.tls,
            c.cookie_bypass,
            c.tfo_bypass,
            c.hold_full
        ),
        (107, 108, 109, 110, 111, 112)
    );
    assert_eq!((c.aborted, c.dup), (113, 114));
    assert_eq!(
        (
            c.handed_off,
            c.fallback_nack,
            c.fallback_peer_down,
            c.fallback_timeout,
            c.fallback_unsent,
            c.moved_drop,
            c.mss_clamped
        ),
        (115, 116, 117, 118, 119, 120, 123)
    );
    assert_eq!((c.moved_fwd, c.ended), (121, 122));
    let json = serde_json::to_value(&services).unwrap();
    assert_eq!(json[0]["stats"]["cookie_bypass"], 110);
    assert_eq!(json[0]["stats"]["fallback_peer_down"], 117);
    assert_eq!(json[0]["hold_timeout_ms"], 2000);
    let text = render_services(&services, "");
    assert!(
        text.starts_with(
            "ID  ADDR      PORT  PROTO  ROLE      HOLD-MS  DISPATCHERS\n3   10.0.0.2  80    tcp    frontend  2000     -\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("\ncounters:\n  ID  HELD  LOCAL  REMOTE"),
        "{text}"
    );
    assert!(text.contains("\n  3   101   102    103     104"), "{text}");
}

/// A conn-get dump reply of one connection.
fn conn_reply(sport: u16, state: u32, v6: bool) -> Vec<u8> {
    let (family, saddr, daddr): (u16, Vec<u8>, Vec<u8>) = if v6 {
        let mut s = vec![0xfd, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let c = s.clone();
        s[15] = 2;
        (10, c, s)
    } else {
        (2, vec![10, 78, 0, 1], vec![10, 78, 0, 2])
    };
    genl(
        2, // NLM_F_MULTI
        SEQ,
        SOCKGROUP_CMD_CONN_GET,
        &[
            nla(SOCKGROUP_A_CONN_SERVICE, &u32b(2)),
            nla(SOCKGROUP_A_CONN_ADDR_FAMILY, &u16b(family)),
            nla(SOCKGROUP_A_CONN_SADDR, &saddr),
            nla(SOCKGROUP_A_CONN_DADDR, &daddr),
            nla(SOCKGROUP_A_CONN_SPORT, &u16b(sport)),
            nla(SOCKGROUP_A_CONN_DPORT, &u16b(8080)),
            nla(SOCKGROUP_A_CONN_STATE, &u32b(state)),
            nla(SOCKGROUP_A_CONN_CLIENT_ISN, &u32b(0xdead_beef)),
            nla(SOCKGROUP_A_CONN_SERVER_ISN, &u32b(17)),
            nla(SOCKGROUP_A_CONN_MSS, &u16b(1460)),
            nla(SOCKGROUP_A_CONN_SND_WSCALE, &[7]),
            nla(SOCKGROUP_A_CONN_RCV_WSCALE, &[9]),
            nla(SOCKGROUP_A_CONN_WSCALE, &[1]),
            nla(SOCKGROUP_A_CONN_SACK, &[1]),
            nla(SOCKGROUP_A_CONN_TSTAMP, &[0]),
            nla(SOCKGROUP_A_CONN_TS_RECENT, &u32b(0)),
            nla(SOCKGROUP_A_CONN_TS_OFF, &u32b(0)),
            nla(SOCKGROUP_A_CONN_ECN, &[1]),
            nla(SOCKGROUP_A_CONN_BYTES, &u32b(77)),
            nla(SOCKGROUP_A_CONN_RULE, &u32b(2)),
            nla(SOCKGROUP_A_CONN_PEER, &u32b(2)),
            nla(SOCKGROUP_A_CONN_AGE_MS, &u32b(1500)),
            // One this sgctl does not know: ignored.
            nla(99, &u32b(1)),
        ],
    )
}

#[test]
fn a_conn_dump_parses_into_connections() {
    let mut data = conn_reply(40000, SOCKGROUP_CONN_STATE_REMOTE, false);
    data.extend(conn_reply(40001, SOCKGROUP_CONN_STATE_HELD, true));
    data.extend(conn_reply(40002, 9, false));
    let conns = conns_of(messages(&data));
    assert_eq!(conns.len(), 3);
    let c = &conns[0];
    assert_eq!(
        (c.service, c.saddr, c.sport, c.dport),
        (
            2,
            Some("10.78.0.1".parse().unwrap()),
            Some(40000),
            Some(8080)
        )
    );
    assert_eq!(
        (c.state.as_deref(), c.client_isn, c.server_isn, c.mss),
        (Some("remote"), Some(0xdead_beef), Some(17), Some(1460))
    );
    assert_eq!(
        (
            c.snd_wscale,
            c.rcv_wscale,
            c.wscale,
            c.sack,
            c.tstamp,
            c.ecn
        ),
        (
            Some(7),
            Some(9),
            Some(true),
            Some(true),
            Some(false),
            Some(true)
        )
    );
    assert_eq!(
        (c.bytes, c.rule, c.peer, c.age_ms),
        (Some(77), Some(2), Some(2), Some(1500))
    );
    assert_eq!(conns[1].saddr, Some("fd78::1".parse().unwrap()));
    assert_eq!(conns[1].state.as_deref(), Some("held"));
    // A state this sgctl does not know: its number.
    assert_eq!(conns[2].state.as_deref(), Some("9"));
    let json = serde_json::to_value(&conns).unwrap();
    assert_eq!(json[0]["saddr"], "10.78.0.1");
    assert_eq!(json[0]["snd_wscale"], 7);
    assert_eq!(json[0]["tstamp"], false);
    assert_eq!(json[1]["daddr"], "fd78::2");
    let text = render_conns(&conns, "");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("SERVICE  CLIENT"), "{text}");
    assert!(
        lines[1]
            .contains("10.78.0.1:40000  10.78.0.2:8080  remote  1460  7/9     yes   no  yes  77"),
        "{text}"
    );
    assert!(lines[2].contains("[fd78::1]:40001"), "{text}");
}

#[test]
fn conn_get_is_a_dump_without_attributes() {
    let got = request_bytes(
        FAMILY,
        NLM_F_DUMP,
        SEQ,
        id_msg(SOCKGROUP_CMD_CONN_GET, None),
    );
    assert_eq!(got, request(NLM_F_DUMP, SOCKGROUP_CMD_CONN_GET, &[]));
    assert!(matches!(cli(&["conns"]), ClusterCommand::Conns));
}

#[test]
fn rule_new_nests_match_and_target() {
    let ClusterCommand::Rule(RuleCommand::Add(a)) = cli(&[
        "rule",
        "add",
        "--id",
        "4",
        "--service",
        "1",
        "--prio",
        "10",
        "--match",
        "path-prefix:/api",
        "--target",
        "peer:2",
    ]) else {
        panic!()
    };
    let want = request(
        NLM_F_ACK,
        SOCKGROUP_CMD_RULE_NEW,
        &[
            nla(SOCKGROUP_A_RULE_ID, &u32b(4)),
            nla(SOCKGROUP_A_RULE_SERVICE, &u32b(1)),
            nla(SOCKGROUP_A_RULE_PRIO, &u32b(10)),
            nest(
                SOCKGROUP_A_RULE_MATCH,
                &[
                    nla(
                        SOCKGROUP_A_MATCH_TYPE,
                        &u32b(SOCKGROUP_MATCH_TYPE_PATH_PREFIX),
                    ),
                    nla(SOCKGROUP_A_MATCH_VALUE, b"/api\0"),
                ],
            ),
            nest(
                SOCKGROUP_A_RULE_TARGET,
                &[
                    nla(SOCKGROUP_A_TARGET_TYPE, &u32b(SOCKGROUP_TARGET_TYPE_PEER)),
                    nla(SOCKGROUP_A_TARGET_PEER, &u32b(2)),
                ],
            ),
        ],
    );
    round_trip(NLM_F_ACK, rule_new_msg(&a), want);

    let ClusterCommand::Rule(RuleCommand::Add(a)) = cli(&[
        "rule",
        "add",
        "--id",
        "5",
        "--service",
        "1",
        "--target",
        "local",
    ]) else {
        panic!()
    };
    let want = request(
        NLM_F_ACK,
        SOCKGROUP_CMD_RULE_NEW,
        &[
            nla(SOCKGROUP_A_RULE_ID, &u32b(5)),
            nla(SOCKGROUP_A_RULE_SERVICE, &u32b(1)),
            nla(SOCKGROUP_A_RULE_PRIO, &u32b(0)),
            nest(
                SOCKGROUP_A_RULE_MATCH,
                &[nla(SOCKGROUP_A_MATCH_TYPE, &u32b(0))],
            ),
            nest(
                SOCKGROUP_A_RULE_TARGET,
                &[nla(SOCKGROUP_A_TARGET_TYPE, &u32b(0))],
            ),
        ],
    );
    round_trip(NLM_F_ACK, rule_new_msg(&a), want);

    // A hash target: one peers attribute per peer, in order.
    let ClusterCommand::Rule(RuleCommand::Add(a)) = cli(&[
        "rule",
        "add",
        "--id",
        "6",
        "--service",
        "1",
        "--match",
        "cookie:SID",
        "--target",
        "hash:3,0,2",
    ]) else {
        panic!()
    };
    let want = request(
        NLM_F_ACK,
        SOCKGROUP_CMD_RULE_NEW,
        &[
            nla(SOCKGROUP_A_RULE_ID, &u32b(6)),
            nla(SOCKGROUP_A_RULE_SERVICE, &u32b(1)),
            nla(SOCKGROUP_A_RULE_PRIO, &u32b(0)),
            nest(
                SOCKGROUP_A_RULE_MATCH,
                &[
                    nla(SOCKGROUP_A_MATCH_TYPE, &u32b(SOCKGROUP_MATCH_TYPE_COOKIE)),
                    nla(SOCKGROUP_A_MATCH_VALUE, b"SID\0"),
                ],
            ),
            nest(
                SOCKGROUP_A_RULE_TARGET,
                &[
                    nla(SOCKGROUP_A_TARGET_TYPE, &u32b(SOCKGROUP_TARGET_TYPE_HASH)),
                    nla(SOCKGROUP_A_TARGET_PEERS, &u32b(3)),
                    nla(SOCKGROUP_A_TARGET_PEERS, &u32b(0)),
                    nla(SOCKGROUP_A_TARGET_PEERS, &u32b(2)),
                ],
            ),
        ],
    );
    round_trip(NLM_F_ACK, rule_new_msg(&a), want);
}

#[test]
fn match_syntax() {
    let m = |t: &str| parse_match(t).map(|m| (m.kind, m.value));
    let some = |k: &str, v: &str| Ok((k.to_owned(), Some(v.to_owned())));
    assert_eq!(
        m("host-suffix:example.com"),
        some("host-suffix", "example.com")
    );
    assert_eq!(m("host=example.com"), some("host", "example.com"));
    assert_eq!(m("cookie-value:SID=abc"), some("cookie-value", "SID=abc"));
    assert_eq!(m("cookie-value=SID=abc"), some("cookie-value", "SID=abc"));
    assert_eq!(m("cookie:SID"), some("cookie", "SID"));
    assert_eq!(m("path-prefix:/a:b"), some("path-prefix", "/a:b"));
    assert_eq!(m("session-id"), Ok(("session-id".to_owned(), None)));
    for bad in [
        "session-id:x",
        "cookie-value:SID",
        "cookie:",
        "cookies:SID",
        "host-suffixes:x",
        "sni",
    ] {
        assert!(parse_match(bad).is_err(), "{bad}");
    }
    let t = |s: &str| parse_target(s).map(|t| (t.kind, t.peer, t.peers));
    assert_eq!(t("hash:2,3"), Ok(("hash".to_owned(), None, vec![2, 3])));
    assert_eq!(t("peer:0"), Ok(("peer".to_owned(), Some(0), vec![])));
    let seventeen = (1..=17)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    for bad in [
        "hash",
        "hash:",
        "hash:1,,2",
        "hash:x",
        "local:1",
        &format!("hash:{seventeen}"),
    ] {
        assert!(parse_target(bad).is_err(), "{bad}");
    }
}

#[test]
fn bad_arguments_are_refused_before_the_kernel() {
    for bad in [
        &["node", "set"][..],
        &["node", "set", "--id", "0"],
        &["node", "set", "--id", "1", "--ctl", "10.0.0.1"],
        &["peer", "add", "--id", "2", "--addr", "10.0.0.2"],
        &[
            "peer",
            "add",
            "--id",
            "2",
            "--addr",
            "host",
            "--key-file",
            "k",
        ],
        &["peer", "del"],
        &[
            "service", "add", "--id", "1", "--addr", "10.0.0.9", "--port", "0",
        ],
        &[
            "service", "add", "--id", "1", "--addr", "10.0.0.9", "--port", "1", "--proto", "sctp",
        ],
        &["rule", "add", "--id", "1", "--service", "1"],
        &[
            "rule",
            "add",
            "--id",
            "1",
            "--service",
            "1",
            "--target",
            "peer",
        ],
        &[
            "rule",
            "add",
            "--id",
            "1",
            "--service",
            "1",
            "--target",
            "peer:x",
        ],
        &[
            "rule",
            "add",
            "--id",
            "1",
            "--service",
            "1",
            "--target",
            "elsewhere",
        ],
        &[
            "rule",
            "add",
            "--id",
            "1",
            "--service",
            "1",
            "--target",
            "local",
            "--match",
            "host",
        ],
        &[
            "rule",
            "add",
            "--id",
            "1",
            "--service",
            "1",
            "--target",
            "local",
            "--match",
            "any=x",
        ],
        &[
            "rule",
            "add",
            "--id",
            "1",
            "--service",
            "1",
            "--target",
            "local",
            "--match",
            "url=/",
        ],
    ] {
        #[derive(Parser, Debug)]
        struct Top {
            #[command(flatten)]
            args: ClusterArgs,
        }
        assert!(
            Top::try_parse_from(std::iter::once("sgctl").chain(bad.iter().copied())).is_err(),
            "{bad:?}"
        );
    }
    let long = format!("host={}", "h".repeat(256));
    assert!(parse_match(&long).is_err());
    assert!(parse_match(&format!("host={}", "h".repeat(255))).is_ok());
}

/// A peer-get reply as the kernel writes it: with its stats nest.
fn peer_reply(seq: u32, flags: u16, id: u32, state: u32, frames_tx: u64) -> Vec<u8> {
    genl(
        flags,
        seq,
        SOCKGROUP_CMD_PEER_GET,
        &[
            nla(SOCKGROUP_A_PEER_ID, &u32b(id)),
            nla(SOCKGROUP_A_PEER_ADDR, &[10, 0, 0, id as u8]),
            nla(SOCKGROUP_A_PEER_CTL_PORT, &u16b(7000)),
            nla(SOCKGROUP_A_PEER_STATE, &u32b(state)),
            nest(
                SOCKGROUP_A_PEER_STATS,
                &[
                    nla(SOCKGROUP_A_PEER_STATS_FRAMES_TX, &u64b(frames_tx)),
                    nla(SOCKGROUP_A_PEER_STATS_FRAMES_RX, &u64b(5)),
                    nla(SOCKGROUP_A_PEER_STATS_HEARTBEATS_TX, &u64b(4)),
                    nla(SOCKGROUP_A_PEER_STATS_HEARTBEATS_RX, &u64b(3)),
                    nla(SOCKGROUP_A_PEER_STATS_REJECTED, &u64b(2)),
                    nla(SOCKGROUP_A_PEER_STATS_CONNECTS, &u64b(1)),
                    nla(SOCKGROUP_A_PEER_STATS_UPS, &u64b(1)),
                    nla(SOCKGROUP_A_PEER_STATS_DOWNS, &u64b(0)),
                    nla(SOCKGROUP_A_PEER_STATS_HANDOFF_REQ_TX, &u64b(11)),
                    nla(SOCKGROUP_A_PEER_STATS_HANDOFF_REQ_RX, &u64b(12)),
                    nla(SOCKGROUP_A_PEER_STATS_HANDOFF_ACK_TX, &u64b(13)),
                    nla(SOCKGROUP_A_PEER_STATS_HANDOFF_ACK_RX, &u64b(14)),
                    nla(SOCKGROUP_A_PEER_STATS_HANDOFF_NACK_TX, &u64b(15)),
                    nla(SOCKGROUP_A_PEER_STATS_HANDOFF_NACK_RX, &u64b(16)),
                    nla(SOCKGROUP_A_PEER_STATS_TERM_TX, &u64b(17)),
                    nla(SOCKGROUP_A_PEER_STATS_TERM_RX, &u64b(18)),
                    // One this sgctl does not know: ignored.
                    nla(99, &u64b(123)),
                ],
            ),
        ],
    )
}

fn messages(data: &[u8]) -> Vec<SgMessage> {
    parse_datagram::<SgMessage>(data, Some(SEQ))
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Received::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

#[test]
fn a_peer_dump_parses_into_peers() {
    const MULTI: u16 = 2;
    let mut data = peer_reply(SEQ, MULTI, 2, SOCKGROUP_PEER_STATE_UP, 9);
    data.extend(peer_reply(
        SEQ,
        MULTI,
        3,
        SOCKGROUP_PEER_STATE_CONNECTING,
        0,
    ));
    data.extend(nlmsg(3, MULTI, SEQ, &0i32.to_ne_bytes()));
    let parsed = parse_datagram::<SgMessage>(&data, Some(SEQ)).unwrap();
    assert!(matches!(parsed.last(), Some(Received::Done)), "{parsed:?}");
    let peers = peers_of(messages(&data));
    assert_eq!(peers.len(), 2);
    assert_eq!(
        peers[0],
        Peer {
            id: 2,
            addr: Some("10.0.0.2".parse().unwrap()),
            ctl_port: Some(7000),
            state: Some("up".into()),
            stats: Some(PeerStats {
                frames_tx: 9,
                frames_rx: 5,
                heartbeats_tx: 4,
                heartbeats_rx: 3,
                rejected: 2,
                connects: 1,
                ups: 1,
                downs: 0,
                handoff: HandoffFrames {
                    handoff_req_tx: 11,
                    handoff_req_rx: 12,
                    handoff_ack_tx: 13,
                    handoff_ack_rx: 14,
                    handoff_nack_tx: 15,
                    handoff_nack_rx: 16,
                    term_tx: 17,
                    term_rx: 18,
                },
            }),
        }
    );
    assert_eq!(peers[1].state.as_deref(), Some("connecting"));
    // The handoff counters sit beside the others in JSON (flattened).
    let json = serde_json::to_value(&peers).unwrap();
    assert_eq!(json[0]["stats"]["handoff_nack_rx"], 16);
    assert_eq!(json[0]["stats"]["term_tx"], 17);
    let table = render_peers(&peers, "");
    let mut lines = table.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("ID  ADDR      CTL-PORT  STATE"));
    assert!(lines
        .next()
        .unwrap()
        .starts_with("2   10.0.0.2  7000      up          9"));
    let json = serde_json::to_value(&peers).unwrap();
    assert_eq!(json[0]["stats"]["frames_tx"], 9);
    assert!(!json.to_string().contains("key"));
    // Replies of another request are not ours.
    assert!(messages(&peer_reply(SEQ + 1, 0, 2, 0, 0)).is_empty());
}

#[test]
fn node_stats_service_and_rule_replies() {
    let node = genl(
        0,
        SEQ,
        SOCKGROUP_CMD_NODE_GET,
        &[
            nla(SOCKGROUP_A_NODE_ID, &u32b(1)),
            nla(SOCKGROUP_A_NODE_CTL_ADDR, &[10, 0, 0, 1]),
            nla(SOCKGROUP_A_NODE_CTL_PORT, &u16b(7000)),
            // No forwarding address: the kernel still sends the port, 0.
            nla(SOCKGROUP_A_NODE_FWD_PORT, &u16b(0)),
            nla(SOCKGROUP_A_NODE_HB_INTERVAL, &u32b(200)),
            nla(SOCKGROUP_A_NODE_GENERATION, &u64b(4)),
            nla(SOCKGROUP_A_NODE_MEMBERS, &u32b(1)),
            nla(SOCKGROUP_A_NODE_MEMBERS, &u32b(2)),
        ],
    );
    let n = node_of(messages(&node)).unwrap();
    assert_eq!(
        (n.id, n.generation, &n.members[..]),
        (1, Some(4), &[1, 2][..])
    );
    assert_eq!(
        render_node(&n),
        "node 1  ctl 10.0.0.1:7000  fwd -  heartbeat 200 ms\nmembership generation 4: 1 2\n"
    );
    let stats = genl(
        0,
        SEQ,
        SOCKGROUP_CMD_STATS_GET,
        &[
            nla(SOCKGROUP_A_STATS_PEERS_UP, &u32b(2)),
            nla(SOCKGROUP_A_STATS_ACCEPTED, &u64b(3)),
            nla(SOCKGROUP_A_STATS_REFUSED_NONPEER, &u64b(1)),
            nla(SOCKGROUP_A_STATS_REJECTED, &u64b(6)),
            nla(SOCKGROUP_A_STATS_FRAMES_TX, &u64b(100)),
            nla(SOCKGROUP_A_STATS_FRAMES_RX, &u64b(99)),
            nla(SOCKGROUP_A_STATS_GENERATION, &u64b(4)),
            nla(SOCKGROUP_A_STATS_HANDOFF_REQ_TX, &u64b(21)),
            nla(SOCKGROUP_A_STATS_HANDOFF_NACK_RX, &u64b(22)),
            nla(SOCKGROUP_A_STATS_OUTBOX_FULL, &u64b(23)),
            nla(SOCKGROUP_A_STATS_UNSENT, &u64b(24)),
        ],
    );
    let s = stats_of(messages(&stats)).unwrap();
    assert_eq!(
        (s.peers_up, s.refused_nonpeer, s.rejected, s.frames_rx),
        (2, 1, 6, 99)
    );
    assert_eq!(
        (
            s.handoff.handoff_req_tx,
            s.handoff.handoff_nack_rx,
            s.outbox_full,
            s.unsent
        ),
        (21, 22, 23, 24)
    );
    let svc = genl(
        0,
        SEQ,
        SOCKGROUP_CMD_SERVICE_GET,
        &[
            nla(SOCKGROUP_A_SERVICE_ID, &u32b(1)),
            nla(SOCKGROUP_A_SERVICE_ADDR, &[192, 0, 2, 1]),
            nla(SOCKGROUP_A_SERVICE_PORT, &u16b(443)),
            nla(SOCKGROUP_A_SERVICE_PROTO, &[6]),
            nla(SOCKGROUP_A_SERVICE_ROLE, &u32b(7)),
        ],
    );
    let s = &services_of(messages(&svc))[0];
    assert_eq!(
        (s.proto.as_deref(), s.role.as_deref()),
        (Some("tcp"), Some("7"))
    );
    let rule = genl(
        0,
        SEQ,
        SOCKGROUP_CMD_RULE_GET,
        &[
            nla(SOCKGROUP_A_RULE_ID, &u32b(3)),
            nla(SOCKGROUP_A_RULE_SERVICE, &u32b(1)),
            nla(SOCKGROUP_A_RULE_PRIO, &u32b(5)),
            nest(
                SOCKGROUP_A_RULE_MATCH,
                &[
                    nla(SOCKGROUP_A_MATCH_TYPE, &u32b(2)),
                    nla(SOCKGROUP_A_MATCH_VALUE, b"example.org\0"),
                ],
            ),
            nest(
                SOCKGROUP_A_RULE_TARGET,
                &[
                    nla(SOCKGROUP_A_TARGET_TYPE, &u32b(0)),
                    nla(SOCKGROUP_A_TARGET_PEER, &u32b(0)),
                ],
            ),
            nest(
                SOCKGROUP_A_RULE_STATS,
                &[
                    nla(SOCKGROUP_A_RULE_STATS_MATCHED, &u64b(9)),
                    nla(SOCKGROUP_A_RULE_STATS_NONE_UP, &u64b(0)),
                    nest(
                        SOCKGROUP_A_RULE_STATS_TARGET,
                        &[
                            nla(SOCKGROUP_A_TARGET_STATS_PEER, &u32b(0)),
                            nla(SOCKGROUP_A_TARGET_STATS_COUNT, &u64b(9)),
                        ],
                    ),
                ],
            ),
        ],
    );
    let hash = genl(
        0,
        SEQ,
        SOCKGROUP_CMD_RULE_GET,
        &[
            nla(SOCKGROUP_A_RULE_ID, &u32b(4)),
            nla(SOCKGROUP_A_RULE_SERVICE, &u32b(1)),
            nla(SOCKGROUP_A_RULE_PRIO, &u32b(6)),
            nest(
                SOCKGROUP_A_RULE_MATCH,
                &[nla(SOCKGROUP_A_MATCH_TYPE, &u32b(7))],
            ),
            nest(
                SOCKGROUP_A_RULE_TARGET,
                &[
                    nla(SOCKGROUP_A_TARGET_TYPE, &u32b(2)),
                    nla(SOCKGROUP_A_TARGET_PEERS, &u32b(2)),
                    nla(SOCKGROUP_A_TARGET_PEERS, &u32b(3)),
                ],
            ),
            nest(
                SOCKGROUP_A_RULE_STATS,
                &[
                    nla(SOCKGROUP_A_RULE_STATS_MATCHED, &u64b(12)),
                    nla(SOCKGROUP_A_RULE_STATS_NONE_UP, &u64b(1)),
                    nest(
                        SOCKGROUP_A_RULE_STATS_TARGET,
                        &[
                            nla(SOCKGROUP_A_TARGET_STATS_PEER, &u32b(2)),
                            nla(SOCKGROUP_A_TARGET_STATS_COUNT, &u64b(5)),
                        ],
                    ),
                    nest(
                        SOCKGROUP_A_RULE_STATS_TARGET,
                        &[
                            nla(SOCKGROUP_A_TARGET_STATS_PEER, &u32b(3)),
                            nla(SOCKGROUP_A_TARGET_STATS_COUNT, &u64b(6)),
                        ],
                    ),
                ],
            ),
        ],
    );
    let mut rules = rules_of(messages(&rule));
    rules.extend(rules_of(messages(&hash)));
    assert_eq!(
        render_rules(&rules, ""),
        "ID  SERVICE  PRIO  MATCH             TARGET    MATCHED  NONE-UP  PLACED\n\
         3   1        5     host:example.org  local     9        0        0=9\n\
         4   1        6     session-id        hash:2,3  12       1        2=5,3=6\n"
    );
    let o = Overview {
        node: Some(n),
        rules,
        ..Overview::default()
    };
    let json = serde_json::to_value(&o).unwrap();
    assert_eq!(json["rules"][0]["match"]["type"], "host");
    assert_eq!(
        json["rules"][1]["target"]["peers"],
        serde_json::json!([2, 3])
    );
    assert_eq!(
        json["rules"][1]["stats"],
        serde_json::json!({"matched": 12, "none_up": 1,
            "targets": [{"peer": 2, "count": 5}, {"peer": 3, "count": 6}]})
    );
    assert_eq!(json["node"]["members"], serde_json::json!([1, 2]));
    assert!(render_overview(&o).contains("\nrules:\n  ID  SERVICE"));
}

#[test]
fn malformed_replies_are_errors_not_panics() {
    // An address of 5 bytes, a u32 of 2, a truncated attribute.
    for attrs in [
        vec![nla(SOCKGROUP_A_PEER_ADDR, &[1, 2, 3, 4, 5])],
        vec![nla(SOCKGROUP_A_PEER_ID, &[1, 2])],
        vec![vec![40, 0, 1, 0, 0, 0, 0, 0]],
    ] {
        let data = genl(0, SEQ, SOCKGROUP_CMD_PEER_GET, &attrs);
        assert!(
            parse_datagram::<SgMessage>(&data, Some(SEQ)).is_err(),
            "{attrs:?}"
        );
    }
    let data = genl(0, SEQ, 200, &[]);
    assert!(parse_datagram::<SgMessage>(&data, Some(SEQ)).is_err());
}

/// An NLMSG_ERROR for our request, capped, with these extack attributes.
fn error_msg(errno: i32, tlvs: &[Vec<u8>], capped: bool) -> Vec<u8> {
    let req = request(
        NLM_F_ACK,
        SOCKGROUP_CMD_PEER_NEW,
        &[nla(SOCKGROUP_A_PEER_ID, &u32b(1))],
    );
    let mut payload = (-errno).to_ne_bytes().to_vec();
    let (flags, echoed) = if capped {
        (0x100, &req[..16])
    } else {
        (0, &req[..])
    };
    payload.extend_from_slice(echoed);
    payload.extend(tlvs.concat());
    let ack_tlvs = if tlvs.is_empty() { 0 } else { 0x200 };
    nlmsg(2, flags | ack_tlvs, SEQ, &payload)
}

#[test]
fn errors_carry_the_extack_message() {
    for capped in [true, false] {
        let data = error_msg(
            libc::EINVAL,
            &[nla(1, b"Peer id is this node's id\0"), nla(2, &u32b(20))],
            capped,
        );
        let parsed = parse_datagram::<SgMessage>(&data, Some(SEQ)).unwrap();
        let [Received::Error(errno, ack)] = &parsed[..] else {
            panic!("{parsed:?}")
        };
        assert_eq!(*errno, libc::EINVAL);
        assert_eq!(ack.offset, Some(20));
        let err = Error::netlink("peer add", *errno, ack.clone());
        assert_eq!(
            err.to_string(),
            "peer add: Peer id is this node's id (EINVAL)"
        );
        assert_eq!(err.errno(), Some(libc::EINVAL));
    }
    // A missing attribute (GENL_REQ_ATTR_CHECK).
    let data = error_msg(
        libc::EINVAL,
        &[nla(1, b"Missing attribute\0"), nla(5, &u32b(4))],
        true,
    );
    let parsed = parse_datagram::<SgMessage>(&data, Some(SEQ)).unwrap();
    let [Received::Error(_, ack)] = &parsed[..] else {
        panic!()
    };
    assert_eq!(ack.text().unwrap(), "Missing attribute (attribute 4)");
    // No extack: the errno's text.
    let data = error_msg(libc::EPERM, &[], true);
    let parsed = parse_datagram::<SgMessage>(&data, Some(SEQ)).unwrap();
    let [Received::Error(errno, ack)] = &parsed[..] else {
        panic!()
    };
    let err = Error::netlink("node set", *errno, ack.clone()).context("cluster");
    assert_eq!(
        err.to_string(),
        "cluster: node set: Operation not permitted (EPERM): CAP_NET_ADMIN is needed"
    );
    // An ack.
    let data = nlmsg(2, 0x100, SEQ, &[0u8; 20]);
    assert!(matches!(
        parse_datagram::<SgMessage>(&data, Some(SEQ)).unwrap()[..],
        [Received::Ack]
    ));
    // A dump that failed: NLMSG_DONE with an error and extack.
    let mut payload = (-libc::ENOENT).to_ne_bytes().to_vec();
    payload.extend(nla(1, b"No node configured\0"));
    let data = nlmsg(3, 0x200 | 2, SEQ, &payload);
    let parsed = parse_datagram::<SgMessage>(&data, Some(SEQ)).unwrap();
    let [Received::Error(errno, ack)] = &parsed[..] else {
        panic!("{parsed:?}")
    };
    assert_eq!(
        (*errno, ack.msg.as_deref()),
        (libc::ENOENT, Some("No node configured"))
    );
}

#[test]
fn events_print_as_lines_and_json() {
    let mut data = Vec::new();
    for (cmd, id) in [
        (SOCKGROUP_CMD_PEER_UP_NTF, 2),
        (SOCKGROUP_CMD_PEER_DOWN_NTF, 3),
        (SOCKGROUP_CMD_KEY_REJECTED_NTF, 4),
    ] {
        data.extend(genl(
            0,
            0,
            cmd,
            &[
                nla(SOCKGROUP_A_PEER_ID, &u32b(id)),
                nla(SOCKGROUP_A_PEER_ADDR, &[10, 0, 0, id as u8]),
            ],
        ));
    }
    let events: Vec<Event> = parse_datagram::<SgMessage>(&data, None)
        .unwrap()
        .iter()
        .filter_map(|r| match r {
            Received::Message(m) => Event::of(m),
            _ => None,
        })
        .collect();
    let lines: Vec<String> = events.iter().map(Event::line).collect();
    assert_eq!(
        lines,
        [
            "peer-up id 2 addr 10.0.0.2",
            "peer-down id 3 addr 10.0.0.3",
            "key-rejected id 4 addr 10.0.0.4"
        ]
    );
    assert_eq!(
        serde_json::to_string(&events[0]).unwrap(),
        r#"{"event":"peer-up","id":2,"addr":"10.0.0.2"}"#
    );
    // A reply is no event.
    assert_eq!(Event::of(&id_msg(SOCKGROUP_CMD_PEER_GET, Some(2))), None);
}
