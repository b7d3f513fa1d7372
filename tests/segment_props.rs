// SPDX-License-Identifier: GPL-2.0

//! Property tests of the replay's segments (src/cluster/segment.rs): every
//! built packet parses back (by a parser written here, apart from the
//! library) to the fields it was built from, both checksums verify against
//! a sum computed from scratch, the options are laid out as Linux lays
//! them out, and a replay plan's segments cover the request exactly, in
//! sequence, none longer than the MSS allows.

mod common;

use common::{fold, req_fields, ReqFields};
use proptest::prelude::*;
use sockgroup_logic::frame::{Family, HandoffReq, WScale};
use sockgroup_logic::segment::*;
use sockgroup_logic::xlate::Pseudo;

/// A packet parsed back.
#[derive(Debug, PartialEq)]
struct Parsed {
    addrs: Pseudo,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    opts: TcpOpts,
    /// The option bytes as they stand.
    raw_opts: Vec<u8>,
    payload: Vec<u8>,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Parses an IPv4 or IPv6 TCP packet and checks its lengths and both
/// checksums (the IP header's and the TCP one's, with its pseudo-header)
/// from scratch; panics on anything wrong.
fn parse(p: &[u8]) -> Parsed {
    let (addrs, tcp, pseudo) = match p[0] >> 4 {
        4 => {
            assert_eq!(p[0], 0x45);
            assert_eq!(usize::from(be16(&p[2..])), p.len(), "total length");
            assert_eq!(p[9], 6);
            assert_eq!(fold(&p[..20]), 0xffff, "IPv4 header checksum");
            let s: [u8; 4] = p[12..16].try_into().unwrap();
            let d: [u8; 4] = p[16..20].try_into().unwrap();
            let tcp = &p[20..];
            let mut ph = Vec::new();
            ph.extend_from_slice(&s);
            ph.extend_from_slice(&d);
            ph.extend_from_slice(&[0, 6]);
            ph.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
            (Pseudo::V4(s, d), tcp, ph)
        }
        6 => {
            assert_eq!(&p[0..4], &[0x60, 0, 0, 0]);
            assert_eq!(usize::from(be16(&p[4..])), p.len() - 40, "payload length");
            assert_eq!(p[6], 6);
            let s: [u8; 16] = p[8..24].try_into().unwrap();
            let d: [u8; 16] = p[24..40].try_into().unwrap();
            let tcp = &p[40..];
            let mut ph = Vec::new();
            ph.extend_from_slice(&s);
            ph.extend_from_slice(&d);
            ph.extend_from_slice(&(tcp.len() as u32).to_be_bytes());
            ph.extend_from_slice(&[0, 0, 0, 6]);
            (Pseudo::V6(s, d), tcp, ph)
        }
        v => panic!("version {v}"),
    };
    let mut all = pseudo;
    all.extend_from_slice(tcp);
    assert_eq!(fold(&all), 0xffff, "TCP checksum");
    let hlen = usize::from(tcp[12] >> 4) * 4;
    assert_eq!(tcp[12] & 0xf, 0);
    assert!(hlen >= 20 && hlen <= tcp.len());
    let raw_opts = tcp[20..hlen].to_vec();
    let mut opts = TcpOpts::default();
    let mut i = 0;
    while i < raw_opts.len() {
        match raw_opts[i] {
            1 => i += 1,
            0 => panic!("EOL in options"),
            k => {
                let l = usize::from(raw_opts[i + 1]);
                let v = &raw_opts[i + 2..i + l];
                match (k, l) {
                    (2, 4) => opts.mss = Some(be16(v)),
                    (3, 3) => opts.wscale = Some(v[0]),
                    (4, 2) => opts.sack_perm = true,
                    (8, 10) => opts.ts = Some((be32(v), be32(&v[4..]))),
                    _ => panic!("option {k} length {l}"),
                }
                i += l;
            }
        }
    }
    Parsed {
        addrs,
        sport: be16(tcp),
        dport: be16(&tcp[2..]),
        seq: be32(&tcp[4..]),
        ack: be32(&tcp[8..]),
        flags: tcp[13],
        window: be16(&tcp[14..]),
        opts,
        raw_opts,
        payload: tcp[hlen..].to_vec(),
    }
}

fn addrs() -> impl Strategy<Value = Pseudo> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, d)| Pseudo::V4(s, d)),
        (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(s, d)| Pseudo::V6(s, d)),
    ]
}

fn opts() -> impl Strategy<Value = TcpOpts> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        proptest::option::of(any::<(u32, u32)>()),
    )
        .prop_map(|(mss, wscale, sack_perm, ts)| TcpOpts {
            mss,
            wscale,
            sack_perm,
            ts,
        })
}

fn build(seg: &Segment<'_>) -> Vec<u8> {
    let mut buf = vec![0xa5u8; seg.len() + 7];
    let n = seg.build(&mut buf).expect("builds");
    assert_eq!(n, seg.len());
    assert!(buf[n..].iter().all(|&b| b == 0xa5), "wrote past its length");
    buf.truncate(n);
    buf
}

/// The options Linux's `tcp_options_write` writes for these.
fn linux_layout(o: &TcpOpts) -> Vec<u8> {
    let mut v = Vec::new();
    if let Some(m) = o.mss {
        v.extend_from_slice(&[2, 4]);
        v.extend_from_slice(&m.to_be_bytes());
    }
    if let Some((a, b)) = o.ts {
        v.extend_from_slice(if o.sack_perm {
            &[4, 2, 8, 10]
        } else {
            &[1, 1, 8, 10]
        });
        v.extend_from_slice(&a.to_be_bytes());
        v.extend_from_slice(&b.to_be_bytes());
    } else if o.sack_perm {
        v.extend_from_slice(&[1, 1, 4, 2]);
    }
    if let Some(w) = o.wscale {
        v.extend_from_slice(&[1, 3, 3, w]);
    }
    v
}

fn handoff_req() -> impl Strategy<Value = (ReqFields, Vec<u8>)> {
    (
        req_fields(),
        proptest::collection::vec(any::<u8>(), 0..5000),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A built packet parses back to what it was built from, with both
    /// checksums right and the options in Linux's layout.
    #[test]
    fn build_parses_back(
        addrs in addrs(),
        ports in any::<(u16, u16)>(),
        seqs in any::<(u32, u32)>(),
        flags in any::<u8>(),
        window in any::<u16>(),
        opts in opts(),
        payload in proptest::collection::vec(any::<u8>(), 0..3000),
    ) {
        let seg = Segment {
            addrs, sport: ports.0, dport: ports.1, seq: seqs.0, ack: seqs.1,
            flags, window, opts, payload: &payload,
        };
        let p = parse(&build(&seg));
        prop_assert_eq!(p.raw_opts.len(), opts.len());
        prop_assert!(opts.len() % 4 == 0 && opts.len() <= OPTS_MAX);
        prop_assert_eq!(&p.raw_opts, &linux_layout(&opts));
        prop_assert_eq!(p, Parsed {
            addrs, sport: ports.0, dport: ports.1, seq: seqs.0, ack: seqs.1,
            flags, window, opts, raw_opts: linux_layout(&opts), payload: payload.clone(),
        });
    }

    /// A buffer one byte short is refused, and nothing is written past it.
    #[test]
    fn short_buffer_refused(addrs in addrs(), opts in opts(), n in 0usize..100) {
        let payload = vec![7u8; n];
        let seg = Segment {
            addrs, sport: 1, dport: 2, seq: 3, ack: 4, flags: 0x10, window: 5, opts,
            payload: &payload,
        };
        let mut buf = vec![0u8; seg.len() - 1];
        prop_assert_eq!(seg.build(&mut buf), Err(BuildError::Short));
    }

    /// The plan: a SYN with the negotiated options, then ACKs that carry
    /// the request exactly, in sequence, each within the MSS.
    #[test]
    fn plan_replays_the_request((f, bytes) in handoff_req()) {
        let r = f.with(&bytes);
        let plan = Plan::new(&r).expect("a valid request plans");
        let syn = parse(&build(&plan.syn()));
        let (cs, ss) = match r.tuple.family {
            Family::V4 => (r.tuple.client[..4].to_vec(), r.tuple.server[..4].to_vec()),
            Family::V6 => (r.tuple.client.to_vec(), r.tuple.server.to_vec()),
        };
        let addr_of = |a: &Pseudo| match a {
            Pseudo::V4(s, d) => (s.to_vec(), d.to_vec()),
            Pseudo::V6(s, d) => (s.to_vec(), d.to_vec()),
        };
        prop_assert_eq!(addr_of(&syn.addrs), (cs.clone(), ss.clone()));
        prop_assert_eq!((syn.sport, syn.dport), (r.tuple.client_port, r.tuple.server_port));
        prop_assert_eq!(syn.seq, r.client_isn);
        let ecn = if r.ecn { 0xc0 } else { 0 };
        prop_assert_eq!(syn.flags, 0x02 | ecn);
        prop_assert_eq!(u32::from(syn.window), r.client_window.min(65535));
        prop_assert_eq!(syn.opts, TcpOpts {
            mss: Some(r.mss),
            wscale: r.wscale.map(|w| w.client),
            sack_perm: r.sack_ok,
            ts: r.timestamps.map(|t| (t.client_tsval, 0)),
        });
        prop_assert!(syn.payload.is_empty());

        let mss = usize::from(r.mss.max(MIN_MSS));
        let mut got = Vec::new();
        let mut next = r.client_isn.wrapping_add(1);
        prop_assert!(plan.acks() >= 1);
        for i in 0..plan.acks() {
            let a = parse(&build(&plan.ack(i)));
            prop_assert_eq!(addr_of(&a.addrs), (cs.clone(), ss.clone()));
            prop_assert_eq!(a.seq, next);
            prop_assert_eq!(a.ack, r.server_isn.wrapping_add(1));
            prop_assert_eq!(a.flags & !0x08, 0x10);
            prop_assert_eq!(a.flags & 0x08 != 0, i + 1 == plan.acks() && !bytes.is_empty());
            prop_assert_eq!(a.opts, TcpOpts {
                ts: r.timestamps.map(|t| (t.client_tsval, t.fe_tsval_now)),
                ..TcpOpts::default()
            });
            // The payload and the options within the client's MSS.
            prop_assert!(a.payload.len() + a.raw_opts.len() <= mss);
            prop_assert!(!a.payload.is_empty() || bytes.is_empty());
            next = next.wrapping_add(a.payload.len() as u32);
            got.extend_from_slice(&a.payload);
        }
        prop_assert_eq!(&got, &bytes);
        prop_assert_eq!(plan.rcv_nxt(), next);
    }
}

proptest! {
    /// A window scale over 14 is refused.
    #[test]
    fn plan_refuses_bad_wscale(f in req_fields(), c in 15u8.., s in 0u8..=14, swap: bool) {
        let (client, server) = if swap { (s, c) } else { (c, s) };
        let r = HandoffReq { wscale: Some(WScale { client, server }), ..f.with(&[]) };
        prop_assert_eq!(Plan::new(&r).err(), Some(PlanError::BadWScale));
    }
}

/// A known SYN, byte for byte: IPv4 10.0.0.1:40000 -> 10.0.0.2:80, the
/// options of a Linux client (MSS 1460, SACK, timestamps, window scale 7),
/// checked against the sums worked out by hand from the bytes below.
#[test]
fn known_syn_bytes() {
    let seg = Segment {
        addrs: Pseudo::V4([10, 0, 0, 1], [10, 0, 0, 2]),
        sport: 40000,
        dport: 80,
        seq: 0x0102_0304,
        ack: 0,
        flags: 0x02,
        window: 64240,
        opts: TcpOpts {
            mss: Some(1460),
            wscale: Some(7),
            sack_perm: true,
            ts: Some((0x1111_1111, 0)),
        },
        payload: &[],
    };
    let b = build(&seg);
    #[rustfmt::skip]
    let want_tcp = [
        0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0,
        0xa0, 0x02, 0xfa, 0xf0, 0xff, 0xff, 0, 0,
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0x11, 0x11, 0x11, 0x11, 0, 0, 0, 0,
        1, 3, 3, 7,
    ];
    assert_eq!(b.len(), 60);
    assert_eq!(
        &b[..12],
        &[0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0x26, 0xba]
    );
    // Only the checksum left to compare: zero it in a copy.
    let mut tcp = b[20..].to_vec();
    let check = be16(&tcp[16..]);
    tcp[16] = 0xff;
    tcp[17] = 0xff;
    assert_eq!(tcp, want_tcp);
    parse(&b);
    assert_ne!(check, 0);
}

// ---- The TIME_WAIT socket's rule for a new SYN ----

/// `tcp_timewait_state_process` for a SYN, written apart from the library
/// from the C: `TCP_TW_SYN` or not.
fn tw_model(tw: &TimeWait, seq: u32, tsval: Option<u32>, now: u32) -> bool {
    let saw = tw.ts_recent_stamp != 0 && tsval.is_some();
    let v = tsval.unwrap_or(0);
    let paws_check = (tw.ts_recent.wrapping_sub(v) as i32) <= 0
        || (now.wrapping_sub(tw.ts_recent_stamp.wrapping_add(2147)) as i32) >= 0
        || tw.ts_recent == 0;
    let paws_reject = saw && !paws_check;
    if tw.fin_wait2 {
        return false;
    }
    let after = (seq.wrapping_sub(tw.rcv_nxt) as i32) > 0;
    !paws_reject && (after || (saw && (tw.ts_recent.wrapping_sub(v) as i32) < 0))
}

fn tw_strategy() -> impl Strategy<Value = TimeWait> {
    (
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
        prop_oneof![Just(0u32), 1u32..100_000],
    )
        .prop_map(
            |(fin_wait2, rcv_nxt, ts_recent, ts_recent_stamp)| TimeWait {
                fin_wait2,
                rcv_nxt,
                ts_recent,
                ts_recent_stamp,
            },
        )
}

proptest! {
    #[test]
    fn tw_accepts_syn_as_tcp(tw in tw_strategy(), dseq in any::<u32>(), tsval in any::<Option<u32>>(), dnow in 0u32..5000) {
        // Sequence numbers and TSvals near the old connection's, and any.
        let seq = tw.rcv_nxt.wrapping_add(dseq % 2 * (dseq >> 16)).wrapping_sub(dseq % 3 * 7);
        let now = tw.ts_recent_stamp.wrapping_add(dnow);
        prop_assert_eq!(tw.accepts_syn(seq, tsval, now), tw_model(&tw, seq, tsval, now));
        prop_assert_eq!(tw.accepts_syn(dseq, tsval, now), tw_model(&tw, dseq, tsval, now));
    }
}

#[test]
fn tw_examples() {
    let tw = TimeWait {
        fin_wait2: false,
        rcv_nxt: 1000,
        ts_recent: 500,
        ts_recent_stamp: 10,
    };
    // A later sequence number: taken, whatever the (newer) TSval.
    assert!(tw.accepts_syn(1001, Some(600), 11));
    assert!(tw.accepts_syn(1001, None, 11));
    // The old rcv_nxt itself, or before: only a newer TSval takes it.
    assert!(!tw.accepts_syn(1000, None, 11));
    assert!(!tw.accepts_syn(999, Some(500), 11));
    assert!(tw.accepts_syn(999, Some(501), 11));
    // An older TSval seen recently: PAWS rejects it, even after rcv_nxt.
    assert!(!tw.accepts_syn(5000, Some(499), 11));
    // ... unless ts_recent is too old to trust (PAWS_WRAP_S).
    assert!(tw.accepts_syn(5000, Some(499), 10 + PAWS_WRAP_S));
    assert!(!tw.accepts_syn(5000, Some(499), 10 + PAWS_WRAP_S - 1));
    // Across the wrap of the sequence space.
    let w = TimeWait {
        rcv_nxt: u32::MAX - 5,
        ..tw
    };
    assert!(w.accepts_syn(3, None, 11));
    // The old connection without timestamps: TSvals are not looked at.
    let n = TimeWait {
        ts_recent_stamp: 0,
        ..tw
    };
    assert!(!n.accepts_syn(999, Some(9999), 11));
    assert!(n.accepts_syn(1001, Some(1), 11));
    // FIN_WAIT2: never.
    let f = TimeWait {
        fin_wait2: true,
        ..tw
    };
    assert!(!f.accepts_syn(5000, Some(9999), 11));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A probe goes from the server to the client of its tuple, as an ACK
    /// of `rcv_nxt` carrying one byte that ends at `snd_una` (data the
    /// client acknowledged: never new to it), with the socket's window and
    /// timestamps, both checksums right.
    #[test]
    fn dup_probe_is_the_acknowledged_byte(
        t in common::tuple(),
        snd_una: u32,
        rcv_nxt: u32,
        window: u16,
        ts: Option<(u32, u32)>,
    ) {
        let f = ProbeFields { snd_una, rcv_nxt, window, ts };
        let seg = dup_probe(server_addrs(&t), t.server_port, t.client_port, &f);
        let p = parse(&build(&seg));
        let addrs = match t.family {
            Family::V4 => Pseudo::V4(
                t.server[..4].try_into().unwrap(),
                t.client[..4].try_into().unwrap(),
            ),
            Family::V6 => Pseudo::V6(t.server, t.client),
        };
        prop_assert_eq!(p.addrs, addrs);
        prop_assert_eq!((p.sport, p.dport), (t.server_port, t.client_port));
        prop_assert_eq!(p.flags, flags::ACK);
        prop_assert_eq!(p.ack, rcv_nxt);
        prop_assert_eq!(p.window, window);
        prop_assert_eq!(p.opts, TcpOpts { ts, ..TcpOpts::default() });
        prop_assert_eq!(p.payload.len(), 1);
        prop_assert_eq!(p.seq.wrapping_add(1), snd_una);
    }
}
