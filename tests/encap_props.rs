// SPDX-License-Identifier: GPL-2.0

//! Property tests of the typed encapsulation header (src/cluster/encap.rs):
//! round trip, the documented layout, any bit flip refused, wrong keys and
//! peers refused, the inner packet checked against the reference (IPv4 and
//! IPv6, TCP and UDP, ICMP errors), and the replay window against a model;
//! no refusal changes the window.

mod common;

use common::{tuple, Broken, HmacSha256};
use proptest::prelude::*;
use sockgroup_logic::encap::*;
use sockgroup_logic::frame::{Family, Mac, Tuple};
use std::collections::BTreeSet;

fn key() -> HmacSha256 {
    HmacSha256(b"a session key of 32 bytes, test!".to_vec())
}

/// An IP packet from `src` to `dst` of `family`: with `proto`'s header
/// (ports `sport`, `dport`) and `payload`; IPv6 with `ext` destination
/// options headers first.
fn ip_packet(
    family: Family,
    proto: u8,
    src: &[u8; 16],
    dst: &[u8; 16],
    l4: &[u8],
    ext: usize,
) -> Vec<u8> {
    match family {
        Family::V4 => {
            let mut p = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
            p.extend_from_slice(&src[..4]);
            p.extend_from_slice(&dst[..4]);
            p.extend_from_slice(l4);
            let len = p.len() as u16;
            p[2..4].copy_from_slice(&len.to_be_bytes());
            p
        }
        Family::V6 => {
            let first = if ext > 0 { 60 } else { proto };
            let mut p = vec![0x60, 0, 0, 0, 0, 0, first, 64];
            p.extend_from_slice(src);
            p.extend_from_slice(dst);
            for i in 0..ext {
                let next = if i + 1 == ext { proto } else { 60 };
                p.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
            }
            p.extend_from_slice(l4);
            let len = (p.len() - 40) as u16;
            p[4..6].copy_from_slice(&len.to_be_bytes());
            p
        }
    }
}

/// A transport header with `sport` and `dport`, then `payload`.
fn l4(proto: Proto, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = match proto {
        Proto::Tcp => {
            let mut h = vec![0u8; 20];
            h[12] = 5 << 4;
            h[13] = 0x10;
            h
        }
        Proto::Udp => {
            let mut h = vec![0u8; 8];
            h[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            h
        }
    };
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// The client's packet of `t`.
fn flow_packet(t: &Tuple, proto: Proto, payload: &[u8], ext: usize) -> Vec<u8> {
    let l = l4(proto, t.client_port, t.server_port, payload);
    ip_packet(t.family, proto as u8, &t.client, &t.server, &l, ext)
}

/// An ICMP error from `router` to the server of `t` about the server's
/// packet to the client (IPv4: fragmentation needed; IPv6: packet too big).
fn icmp_error(t: &Tuple, proto: Proto, router: &[u8; 16]) -> Vec<u8> {
    let quoted_l4 = l4(proto, t.server_port, t.client_port, b"");
    let mut quoted = ip_packet(t.family, proto as u8, &t.server, &t.client, &quoted_l4, 0);
    // As a router quotes it: the headers and 8 bytes of the transport.
    let ip_len = if t.family == Family::V4 { 20 } else { 40 };
    quoted.truncate(ip_len + 8);
    let (icmp_proto, ty) = match t.family {
        Family::V4 => (1, 3),
        Family::V6 => (58, 2),
    };
    let mut msg = vec![ty, 4, 0, 0, 0, 0, 0x05, 0x78];
    msg.extend_from_slice(&quoted);
    ip_packet(t.family, icmp_proto, router, &t.server, &msg, 0)
}

/// An IPv4 connection.
fn v4(client: [u8; 4], server: [u8; 4], client_port: u16, server_port: u16) -> Tuple {
    let mut t = Tuple {
        family: Family::V4,
        client: [0; 16],
        server: [0; 16],
        client_port,
        server_port,
    };
    t.client[..4].copy_from_slice(&client);
    t.server[..4].copy_from_slice(&server);
    t
}

fn proto_strategy() -> impl Strategy<Value = Proto> {
    prop_oneof![Just(Proto::Tcp), Just(Proto::Udp)]
}

fn seq_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..100, 1u64.., (u64::MAX - 100)..u64::MAX]
}

/// What a generated datagram carries.
#[derive(Clone, Debug)]
enum Carry {
    Flow(Vec<u8>, usize),
    Icmp([u8; 16]),
}

fn case_strategy() -> impl Strategy<Value = (EncapHeader, Vec<u8>, Inner)> {
    (
        prop_oneof![Just(EncapType::HandingOff), Just(EncapType::Moved), Just(EncapType::Verified)],
        proto_strategy(),
        any::<u32>(),
        seq_strategy(),
        tuple(),
        prop_oneof![
            3 => (prop::collection::vec(any::<u8>(), 0..200), 0usize..3).prop_map(|(p, e)| Carry::Flow(p, e)),
            1 => any::<[u8; 16]>().prop_map(Carry::Icmp),
        ],
    )
        .prop_map(|(ty, proto, sender, seq, tuple, carry)| {
            let h = EncapHeader { ty, proto, sender, key_id: KEY_ID, seq, tuple };
            let (inner, kind) = match (ty, carry) {
                (EncapType::Verified, _) => (Vec::new(), Inner::None),
                (_, Carry::Flow(p, e)) => (flow_packet(&tuple, proto, &p, e), Inner::Flow),
                (_, Carry::Icmp(r)) => (icmp_error(&tuple, proto, &r), Inner::IcmpError),
            };
            (h, inner, kind)
        })
}

fn datagram(h: &EncapHeader, inner: &[u8], mac: &dyn Mac) -> Vec<u8> {
    let hdr = h.seal(inner, mac).unwrap();
    [&hdr[..], inner].concat()
}

/// The window's answer by the model: the set of numbers accepted and the
/// highest.
fn model_accept(seen: &BTreeSet<u64>, size: u64, seq: u64) -> Result<(), EncapError> {
    let top = seen.last().copied().unwrap_or(0);
    if seq == 0 {
        Err(EncapError::BadSeq)
    } else if seq <= top && top - seq >= size {
        Err(EncapError::TooOld)
    } else if seen.contains(&seq) {
        Err(EncapError::Replay)
    } else {
        Ok(())
    }
}

/// Runs `ops` (a base and offsets from the highest so far) through a
/// window of `W` words and the model.
fn window_matches_model<const W: usize>(start: u64, ops: &[i64]) -> Result<(), TestCaseError> {
    let mut w = ReplayWindow::<W>::new();
    let mut seen = BTreeSet::new();
    let size = ReplayWindow::<W>::SIZE;
    for (i, &d) in ops.iter().enumerate() {
        let top = seen.last().copied().unwrap_or(start);
        let seq = top.saturating_add_signed(d);
        let want = model_accept(&seen, size, seq);
        prop_assert_eq!(w.check(seq), want, "op {} seq {}", i, seq);
        let before = w;
        prop_assert_eq!(w.update(seq), want, "op {} seq {}", i, seq);
        if want.is_ok() {
            seen.insert(seq);
            prop_assert_eq!(w.top(), *seen.last().unwrap());
        } else {
            prop_assert_eq!(w, before);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn round_trip((h, inner, kind) in case_strategy()) {
        let d = datagram(&h, &inner, &key());
        prop_assert_eq!(d.len(), HEADER_LEN + inner.len());
        let p = parse(&d).unwrap();
        prop_assert_eq!(p.header, h);
        prop_assert_eq!(p.inner, &inner[..]);
        prop_assert_eq!(p.kind, kind);
        let mut w = ReplayWindow1024::new();
        let o = open(&d, h.sender, &key(), &mut w).unwrap();
        prop_assert_eq!(o.header, h);
        prop_assert_eq!(w.top(), h.seq);
    }

    #[test]
    fn any_bit_flip_is_refused_and_leaves_the_window(
        (h, inner, _) in case_strategy(),
        bit in any::<prop::sample::Index>(),
        prior in prop::collection::vec(1u64..2000, 0..10),
    ) {
        let mut d = datagram(&h, &inner, &key());
        let bit = bit.index(d.len() * 8);
        d[bit / 8] ^= 1 << (bit % 8);
        let mut w = ReplayWindow1024::new();
        for s in prior {
            let _ = w.update(s);
        }
        let before = w;
        prop_assert!(open(&d, h.sender, &key(), &mut w).is_err(), "bit {}", bit);
        prop_assert_eq!(w, before);
        let err = open(&d, h.sender, &key(), &mut w).err();
        if w.check(h.seq).is_ok() {
            if (MAC_AT..HEADER_LEN).contains(&(bit / 8)) {
                // In the MAC: the structure still parses, the MAC fails.
                prop_assert_eq!(err, Some(EncapError::BadMac));
            } else if bit / 8 >= HEADER_LEN {
                // In the inner packet: its check or the MAC refuses it.
                let ok = [EncapError::BadMac, EncapError::BadInner, EncapError::InnerMismatch];
                prop_assert!(ok.contains(&err.unwrap()), "{:?}", err);
            }
        }
    }

    #[test]
    fn wrong_key_peer_or_mac_failure_are_refused((h, inner, _) in case_strategy(), other in any::<u32>()) {
        let d = datagram(&h, &inner, &key());
        let mut w = ReplayWindow1024::new();
        let wrong = HmacSha256(b"another session key, 32 bytes!!!".to_vec());
        prop_assert_eq!(open(&d, h.sender, &wrong, &mut w).err(), Some(EncapError::BadMac));
        prop_assert_eq!(open(&d, h.sender, &Broken, &mut w).err(), Some(EncapError::Mac));
        prop_assume!(other != h.sender);
        prop_assert_eq!(open(&d, other, &key(), &mut w).err(), Some(EncapError::WrongPeer));
        prop_assert_eq!(w, ReplayWindow1024::new());
        prop_assert_eq!(h.seal(&inner, &Broken).err(), Some(EncapError::Mac));
    }

    #[test]
    fn replays_and_old_numbers_are_refused((h, inner, _) in case_strategy()) {
        let mut w = ReplayWindow1024::new();
        let d = datagram(&h, &inner, &key());
        open(&d, h.sender, &key(), &mut w).unwrap();
        let after = w;
        prop_assert_eq!(open(&d, h.sender, &key(), &mut w).err(), Some(EncapError::Replay));
        prop_assert_eq!(w, after);
        // The oldest number the window still takes, and the one before it.
        let size = ReplayWindow1024::SIZE;
        if h.seq > size {
            let old = EncapHeader { seq: h.seq - size, ..h };
            let d = datagram(&old, &inner, &key());
            prop_assert_eq!(open(&d, h.sender, &key(), &mut w).err(), Some(EncapError::TooOld));
            let edge = EncapHeader { seq: h.seq - size + 1, ..h };
            let d = datagram(&edge, &inner, &key());
            prop_assert!(open(&d, h.sender, &key(), &mut w).is_ok());
        }
    }

    #[test]
    fn window_of_64_matches_the_model(start in seq_strategy(), ops in prop::collection::vec(-80i64..80, 0..200)) {
        window_matches_model::<1>(start, &ops)?;
    }

    #[test]
    fn window_of_128_matches_the_model(start in seq_strategy(), ops in prop::collection::vec(-150i64..150, 0..300)) {
        window_matches_model::<2>(start, &ops)?;
    }

    #[test]
    fn window_of_1024_matches_the_model(
        start in seq_strategy(),
        ops in prop::collection::vec(prop_oneof![-1100i64..40, -3i64..3, Just(1024), Just(-1023), Just(-1024)], 0..300),
    ) {
        window_matches_model::<16>(start, &ops)?;
    }

    #[test]
    fn an_inner_packet_of_another_connection_is_refused(
        t in tuple(),
        proto in proto_strategy(),
        ty in prop_oneof![Just(EncapType::HandingOff), Just(EncapType::Moved)],
        seq in seq_strategy(),
        payload in prop::collection::vec(any::<u8>(), 0..50),
        which in 0usize..5,
    ) {
        let h = EncapHeader { ty, proto, sender: 7, key_id: KEY_ID, seq, tuple: t };
        let inner = flow_packet(&t, proto, &payload, 0);
        let mut other = t;
        match which {
            0 => other.client[0] ^= 1,
            1 => other.server[3] ^= 0x80,
            2 => other.client_port ^= 1,
            3 => other.server_port = other.server_port.wrapping_add(1),
            _ => {}
        }
        let proto = if which == 4 {
            match h.proto { Proto::Tcp => Proto::Udp, Proto::Udp => Proto::Tcp }
        } else {
            h.proto
        };
        let bad = flow_packet(&other, proto, b"x", 0);
        let want = if which == 4 { EncapError::BadInner } else { EncapError::InnerMismatch };
        prop_assert_eq!(h.seal(&bad, &key()).err(), Some(want));
        // The same header in front of the other packet: refused before the MAC.
        let d = datagram(&h, &inner, &key());
        let mut forged = d[..HEADER_LEN].to_vec();
        forged[12..14].copy_from_slice(&(bad.len() as u16).to_be_bytes());
        forged.extend_from_slice(&bad);
        prop_assert_eq!(parse(&forged).err(), Some(want));
        // A reply (server to client) is no client packet either.
        let reply_l4 = l4(h.proto, t.server_port, t.client_port, b"");
        let reply = ip_packet(t.family, h.proto as u8, &t.server, &t.client, &reply_l4, 0);
        prop_assume!(t.client != t.server || t.client_port != t.server_port);
        prop_assert_eq!(h.seal(&reply, &key()).err(), Some(EncapError::InnerMismatch));
    }

    #[test]
    fn flow_of_reads_the_client_packet_and_its_head(
        t in tuple(),
        proto in proto_strategy(),
        payload in prop::collection::vec(any::<u8>(), 0..100),
        ext in 0usize..3,
        cut in 0usize..200,
    ) {
        // The whole packet, and any head of it that holds the ports, give
        // the flow; a head shorter than that gives none; the same bytes
        // with another protocol number give none.
        let pkt = flow_packet(&t, proto, &payload, ext);
        prop_assert_eq!(flow_of(&pkt), Some(Flow { proto, tuple: t }));
        let ports_end = pkt.len() - payload.len() - if proto == Proto::Tcp { 16 } else { 4 };
        let head = &pkt[..cut.min(pkt.len())];
        if head.len() >= ports_end {
            prop_assert_eq!(flow_of(head), Some(Flow { proto, tuple: t }));
        } else {
            prop_assert_eq!(flow_of(head), None);
        }
        let other = ip_packet(t.family, 47, &t.client, &t.server, &[0u8; 8], 0);
        prop_assert_eq!(flow_of(&other), None);
    }

    #[test]
    fn may_carry_holds_for_every_flow_flow_of_finds(
        t in tuple(),
        proto in proto_strategy(),
        payload in prop::collection::vec(any::<u8>(), 0..40),
        ext in 0usize..3,
        junk in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        // The field the hook reads first: a packet of the flow passes it,
        // the other protocol's does not (without extension headers).
        let first = |p: &[u8]| if p[0] >> 4 == 4 { p[9] } else { p[6] };
        let pkt = flow_packet(&t, proto, &payload, ext);
        prop_assert!(may_carry(first(&pkt), proto));
        let other = if proto == Proto::Tcp { Proto::Udp } else { Proto::Tcp };
        prop_assert_eq!(may_carry(first(&pkt), other), ext > 0 && t.family == Family::V6);
        // Any bytes: whatever flow_of finds passed the test.
        if let Some(f) = flow_of(&junk) {
            prop_assert!(may_carry(first(&junk), f.proto));
        }
    }

    #[test]
    fn icmp_error_flow_names_the_connection_check_inner_accepts(
        t in tuple(),
        proto in proto_strategy(),
        router in any::<[u8; 16]>(),
        payload in prop::collection::vec(any::<u8>(), 0..40),
        junk in prop::collection::vec(any::<u8>(), 0..120),
    ) {
        // An error about the server's packet to the client names the
        // connection, and the encapsulation accepts it under that
        // reference; a packet of the flow itself is no error.
        let err = icmp_error(&t, proto, &router);
        prop_assert_eq!(icmp_error_flow(&err), Some(Flow { proto, tuple: t }));
        let h = EncapHeader { ty: EncapType::Moved, proto, sender: 1, key_id: KEY_ID, seq: 1, tuple: t };
        prop_assert_eq!(check_inner(&h, &err), Ok(Inner::IcmpError));
        prop_assert_eq!(icmp_error_flow(&flow_packet(&t, proto, &payload, 0)), None);
        // Any bytes: whatever it finds, the encapsulation takes.
        if let Some(f) = icmp_error_flow(&junk) {
            let h = EncapHeader { ty: EncapType::Moved, proto: f.proto, sender: 1, key_id: KEY_ID, seq: 1, tuple: f.tuple };
            prop_assert_eq!(check_inner(&h, &junk), Ok(Inner::IcmpError));
        }
    }

    #[test]
    fn any_bytes_parse_without_panic(d in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut w = ReplayWindow::<2>::new();
        if open(&d, 0, &key(), &mut w).is_err() {
            prop_assert_eq!(w, ReplayWindow::<2>::new());
        }
        let _ = parse(&d);
        let _ = is_bare_ack(&d);
        let _ = is_syn(&d);
    }

    /// A TCP segment with any flags, options and payload, IPv4 or IPv6 (with
    /// extension headers): a bare ACK exactly when ACK is set, none of SYN,
    /// FIN, RST, URG, and it carries no byte; a bare FIN as a bare ACK but
    /// with FIN set; a SYN exactly when SYN is set
    /// and ACK and RST are not, whatever it carries; a UDP datagram, a
    /// packet cut short or with a byte more neither.
    #[test]
    fn bare_acks_and_fins_carry_no_data_nor_syn_rst_urg_a_syn_no_ack_rst(
        t in tuple(),
        flags in any::<u8>(),
        opt_words in 0usize..=10,
        payload in prop::collection::vec(any::<u8>(), 0..3),
        ext in 0usize..3,
        cut in any::<bool>(),
    ) {
        let mut seg = l4(Proto::Tcp, t.client_port, t.server_port, &payload);
        seg[13] = flags;
        seg[12] = ((5 + opt_words) as u8) << 4;
        seg.splice(20..20, std::iter::repeat_n(1u8, opt_words * 4));
        let ext = if t.family == Family::V6 { ext } else { 0 };
        let mut p = ip_packet(t.family, 6, &t.client, &t.server, &seg, ext);
        let bare = flags & 0x10 != 0 && flags & 0x27 == 0 && payload.is_empty();
        prop_assert_eq!(is_bare_ack(&p), bare);
        prop_assert_eq!(is_syn(&p), flags & 0x16 == 0x02);
        let bare_fin = flags & 0x11 == 0x11 && flags & 0x26 == 0 && payload.is_empty();
        prop_assert_eq!(tcp_kind(&p) == TcpKind::BareFin, bare_fin);
        let other = !bare && !bare_fin && flags & 0x16 != 0x02;
        prop_assert_eq!(tcp_kind(&p) == TcpKind::Other, other);
        if cut {
            p.pop();
        } else {
            p.push(0);
        }
        prop_assert!(!is_bare_ack(&p));
        prop_assert!(!is_syn(&p));
        prop_assert_eq!(tcp_kind(&p), TcpKind::Other);
        let udp = flow_packet(&t, Proto::Udp, &payload, ext);
        prop_assert!(!is_bare_ack(&udp));
        prop_assert!(!is_syn(&udp));
    }
}

#[test]
fn the_layout_is_the_documented_one() {
    let tuple = v4([192, 0, 2, 7], [198, 51, 100, 1], 40000, 80);
    let h = EncapHeader {
        ty: EncapType::Moved,
        proto: Proto::Tcp,
        sender: 0x0102_0304,
        key_id: KEY_ID,
        seq: 0x1122_3344_5566_7788,
        tuple,
    };
    let inner = flow_packet(&tuple, Proto::Tcp, b"GET / HTTP/1.1\r\n", 0);
    let b = h.seal(&inner, &key()).unwrap();
    assert_eq!(b[0..4], [1, 2, 6, 0]);
    assert_eq!(b[4..8], [1, 2, 3, 4]);
    assert_eq!(b[8..12], [0, 0, 0, 0]);
    assert_eq!(b[12..14], (inner.len() as u16).to_be_bytes());
    assert_eq!(b[14..16], [0, 0]);
    assert_eq!(b[16..24], [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    assert_eq!(b[24..28], [4, 0, 0, 0]);
    assert_eq!(b[28..32], [192, 0, 2, 7]);
    assert_eq!(b[32..44], [0; 12]);
    assert_eq!(b[44..48], [198, 51, 100, 1]);
    assert_eq!(b[60..64], [0x9c, 0x40, 0, 80]);
    let full = key()
        .tag(&[b"sockgroup-encap-v1", &b[..64], &inner])
        .unwrap();
    assert_eq!(b[64..80], full[..16]);
    assert_eq!(OVERHEAD_V4, 108);
    assert_eq!(OVERHEAD_V6, 128);
}

#[test]
fn malformed_datagrams_each_error() {
    let tuple = Tuple {
        family: Family::V6,
        client: [0x20; 16],
        server: [0xfd; 16],
        client_port: 1,
        server_port: 443,
    };
    let h = EncapHeader {
        ty: EncapType::HandingOff,
        proto: Proto::Tcp,
        sender: 9,
        key_id: 0,
        seq: 5,
        tuple,
    };
    let inner = flow_packet(&tuple, Proto::Tcp, b"hello", 1);
    let good = datagram(&h, &inner, &key());
    assert!(parse(&good).is_ok());
    let with = |at: usize, v: u8| {
        let mut d = good.clone();
        d[at] = v;
        d
    };
    assert_eq!(
        parse(&good[..HEADER_LEN - 1]).err(),
        Some(EncapError::Short)
    );
    assert_eq!(parse(&with(0, 2)).err(), Some(EncapError::BadVersion));
    assert_eq!(parse(&with(1, 4)).err(), Some(EncapError::BadType));
    assert_eq!(parse(&with(1, 0)).err(), Some(EncapError::BadType));
    assert_eq!(parse(&with(2, 1)).err(), Some(EncapError::BadProto));
    assert_eq!(parse(&with(3, 1)).err(), Some(EncapError::BadReserved));
    assert_eq!(parse(&with(15, 1)).err(), Some(EncapError::BadReserved));
    assert_eq!(parse(&with(24, 5)).err(), Some(EncapError::BadTuple));
    assert_eq!(parse(&with(25, 1)).err(), Some(EncapError::BadTuple));
    assert_eq!(parse(&with(13, 0)).err(), Some(EncapError::BadLength));
    assert_eq!(
        parse(&good[..good.len() - 1]).err(),
        Some(EncapError::BadLength)
    );
    let mut zero = good.clone();
    zero[16..24].fill(0);
    assert_eq!(parse(&zero).err(), Some(EncapError::BadSeq));
    let mut key_id = good.clone();
    key_id[11] = 1;
    let mut w = ReplayWindow1024::new();
    assert_eq!(
        open(&key_id, 9, &key(), &mut w).err(),
        Some(EncapError::BadKeyId)
    );
    // A verification carries no packet.
    let v = EncapHeader {
        ty: EncapType::Verified,
        ..h
    };
    assert_eq!(v.seal(&inner, &key()).err(), Some(EncapError::BadLength));
    assert_eq!(parse(&with(1, 3)).err(), Some(EncapError::BadLength));
    assert!(parse(&datagram(&v, b"", &key())).is_ok());
    // Sequence number 0 is never sent.
    assert_eq!(
        EncapHeader { seq: 0, ..h }.seal(&inner, &key()).err(),
        Some(EncapError::BadSeq)
    );
}

#[test]
fn fragments_and_cut_packets_are_refused() {
    let t = v4([10, 0, 0, 1], [10, 0, 0, 2], 5555, 53);
    let h = EncapHeader {
        ty: EncapType::Moved,
        proto: Proto::Udp,
        sender: 1,
        key_id: 0,
        seq: 1,
        tuple: t,
    };
    let p = flow_packet(&t, Proto::Udp, b"query", 0);
    assert_eq!(h.seal(&p, &key()).map(|_| ()), Ok(()));
    let mut mf = p.clone();
    mf[6] |= 0x20;
    assert_eq!(h.seal(&mf, &key()).err(), Some(EncapError::BadInner));
    let mut off = p.clone();
    off[7] = 1;
    assert_eq!(h.seal(&off, &key()).err(), Some(EncapError::BadInner));
    assert_eq!(
        h.seal(&p[..p.len() - 1], &key()).err(),
        Some(EncapError::BadInner)
    );
    assert_eq!(h.seal(&p[..27], &key()).err(), Some(EncapError::BadInner));
    let mut ihl = p.clone();
    ihl[0] = 0x44;
    assert_eq!(h.seal(&ihl, &key()).err(), Some(EncapError::BadInner));
    // An IPv6 packet behind an IPv4 reference.
    let t6 = Tuple {
        family: Family::V6,
        ..t
    };
    let p6 = flow_packet(&t6, Proto::Udp, b"query", 0);
    assert_eq!(h.seal(&p6, &key()).err(), Some(EncapError::BadInner));
    // IPv6: a fragment header (44) is no transport header.
    let h6 = EncapHeader { tuple: t6, ..h };
    let frag = ip_packet(
        Family::V6,
        44,
        &t6.client,
        &t6.server,
        &[17, 0, 0, 1, 0, 0, 0, 0],
        0,
    );
    assert_eq!(h6.seal(&frag, &key()).err(), Some(EncapError::BadInner));
    // Nine extension headers are more than walked.
    let l = l4(Proto::Udp, 5555, 53, b"");
    let deep = ip_packet(Family::V6, 17, &t6.client, &t6.server, &l, 9);
    assert_eq!(h6.seal(&deep, &key()).err(), Some(EncapError::BadInner));
    let ok = ip_packet(Family::V6, 17, &t6.client, &t6.server, &l, 8);
    assert!(h6.seal(&ok, &key()).is_ok());
    // An ICMP echo is no error, and an error must go to the server.
    let mut echo = icmp_error(&t, Proto::Udp, &[9; 16]);
    echo[20] = 8;
    assert_eq!(h.seal(&echo, &key()).err(), Some(EncapError::BadInner));
    let mut elsewhere = icmp_error(&t, Proto::Udp, &[9; 16]);
    elsewhere[19] = 99;
    assert_eq!(
        h.seal(&elsewhere, &key()).err(),
        Some(EncapError::InnerMismatch)
    );
}

#[test]
fn tx_numbers_start_at_1_and_end_before_wrapping() {
    let mut tx = TxSeq::new();
    assert_eq!(tx.take(), Ok(1));
    assert_eq!(tx.take(), Ok(2));
    let mut w = ReplayWindow::<1>::new();
    assert_eq!(w.update(u64::MAX - 1), Ok(()));
    assert_eq!(w.update(u64::MAX), Ok(()));
    assert_eq!(w.update(u64::MAX), Err(EncapError::Replay));
    assert_eq!(w.update(u64::MAX - 64), Err(EncapError::TooOld));
    assert_eq!(w.update(u64::MAX - 63), Ok(()));
}

/// Writes seeds for the `encap` fuzz target (README, "Fuzzing"): valid
/// datagrams under the target's key, each alone (first byte 0).
#[test]
fn fuzz_corpus() {
    use proptest::strategy::ValueTree;
    let Some(dir) = std::env::var_os("SOCKGROUP_FUZZ_CORPUS") else {
        return;
    };
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for i in 0..64 {
        let (h, inner, _) = case_strategy().new_tree(&mut runner).unwrap().current();
        let mut seed = vec![0u8];
        seed.extend_from_slice(&datagram(&h, &inner, &key()));
        std::fs::write(
            std::path::Path::new(&dir).join(format!("seed-{i:02}")),
            seed,
        )
        .unwrap();
    }
}
