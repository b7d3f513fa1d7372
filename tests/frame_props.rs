// SPDX-License-Identifier: GPL-2.0

//! Property tests of the control channel's frame codec (src/cluster/frame.rs).

mod common;

use common::{placement, req_fields, tuple, Broken, HmacSha256, ReqFields};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use sockgroup_logic::frame::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn rfc4231_vectors() {
    // (key, data, HMAC-SHA256) of RFC 4231 section 4, test cases 1-4, 6, 7;
    // case 5 (truncated output) checks the first 16 bytes.
    let cases: &[(Vec<u8>, Vec<u8>, &str)] = &[
        (
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            vec![0xaa; 20],
            vec![0xdd; 50],
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        ),
        (
            hex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
            vec![0xcd; 50],
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        ),
        (
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
        (
            vec![0xaa; 131],
            b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."
                .to_vec(),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        ),
    ];
    for (key, data, want) in cases {
        let mac = HmacSha256(key.clone());
        assert_eq!(mac.tag(&[data]).unwrap().to_vec(), hex(want));
        // The parts are concatenated, wherever they are split.
        for cut in 0..=data.len() {
            assert_eq!(
                mac.tag(&[&data[..cut], &data[cut..]]).unwrap().to_vec(),
                hex(want)
            );
        }
    }
    let mac = HmacSha256(vec![0x0c; 20]);
    assert_eq!(
        mac.tag(&[b"Test With Truncation"]).unwrap()[..16].to_vec(),
        hex("a3b6167473100ee06e0c796c2955552b")
    );
}

#[test]
fn session_key_input_layout() {
    let cn = [1u8; 16];
    let an = [2u8; 16];
    let b = session_key_input(0x0102_0304, 7, &cn, &an);
    let mut want = b"sockgroup-session-v1".to_vec();
    want.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, 7]);
    want.extend_from_slice(&cn);
    want.extend_from_slice(&an);
    assert_eq!(b.to_vec(), want);
    let k = HmacSha256(b"pair key of sixteen".to_vec());
    assert_eq!(
        derive_session_key(&k, 0x0102_0304, 7, &cn, &an).unwrap(),
        k.tag(&[&want]).unwrap()
    );
    assert_eq!(
        derive_session_key(&Broken, 1, 2, &cn, &an),
        Err(FrameError::Mac)
    );
}

#[test]
fn ct_eq_is_equality() {
    assert!(ct_eq(b"", b""));
    assert!(ct_eq(b"abc", b"abc"));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"ab"));
}

#[test]
fn msg_type_from_u8() {
    for v in 0..=255u8 {
        match MsgType::try_from(v) {
            Ok(t) => assert_eq!(t as u8, v),
            Err(e) => {
                assert!(v == 0 || usize::from(v) > MsgType::ALL.len());
                assert_eq!(e, FrameError::BadType);
            }
        }
    }
}

fn msg_type() -> impl Strategy<Value = MsgType> {
    prop::sample::select(MsgType::ALL.to_vec())
}

fn header() -> impl Strategy<Value = Header> {
    (
        msg_type(),
        0..=MAX_PAYLOAD as u32,
        any::<u32>(),
        any::<u64>(),
        any::<u32>(),
    )
        .prop_map(|(msg_type, length, sender, seq, key_id)| Header {
            msg_type,
            length,
            sender,
            seq,
            key_id,
        })
}

proptest! {
    #[test]
    fn header_round_trip(h in header()) {
        let b = h.encode();
        prop_assert_eq!(&b[..4], b"SGC1");
        prop_assert_eq!(Header::decode(&b), Ok(h));
    }

    #[test]
    fn header_rejects_every_bad_field(h in header(), byte in 0usize..32, x in 1u8..=255) {
        let mut b = h.encode();
        b[byte] ^= x;
        let got = Header::decode(&b);
        match byte {
            0..=3 => prop_assert_eq!(got, Err(FrameError::BadMagic)),
            4 => prop_assert_eq!(got, Err(FrameError::BadVersion)),
            5 => {
                let t = b[5];
                if t == 0 || usize::from(t) > MsgType::ALL.len() {
                    prop_assert_eq!(got, Err(FrameError::BadType));
                } else {
                    prop_assert_eq!(got.unwrap().msg_type as u8, t);
                }
            }
            6 | 7 => prop_assert_eq!(got, Err(FrameError::BadFlags)),
            8..=11 => {
                let len = u32::from_be_bytes(b[8..12].try_into().unwrap());
                if len as usize > MAX_PAYLOAD {
                    prop_assert_eq!(got, Err(FrameError::TooLong));
                } else {
                    prop_assert_eq!(got.unwrap().length, len);
                }
            }
            28..=31 => prop_assert_eq!(got, Err(FrameError::BadReserved)),
            // sender, seq, key_id: any value parses; the channel checks them.
            _ => prop_assert!(got.is_ok()),
        }
    }

    #[test]
    fn short_header(h in header(), n in 0usize..HEADER_LEN) {
        prop_assert_eq!(Header::decode(&h.encode()[..n]), Err(FrameError::Short));
    }
}

#[test]
fn header_length_bound() {
    let mut h = Header {
        msg_type: MsgType::Transfer,
        length: MAX_PAYLOAD as u32,
        sender: 1,
        seq: 2,
        key_id: 0,
    };
    assert!(Header::decode(&h.encode()).is_ok());
    h.length += 1;
    assert_eq!(Header::decode(&h.encode()), Err(FrameError::TooLong));
    h.length = u32::MAX;
    assert_eq!(Header::decode(&h.encode()), Err(FrameError::TooLong));
}

// Messages.

fn hello() -> impl Strategy<Value = Hello> {
    (any::<[u8; 16]>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
        |(nonce, receiver, caps, hb_interval_ms)| Hello {
            nonce,
            receiver,
            caps,
            hb_interval_ms,
        },
    )
}

fn heartbeat() -> impl Strategy<Value = Heartbeat> {
    (any::<u64>(), any::<u64>()).prop_map(|(generation, uptime_ms)| Heartbeat {
        generation,
        uptime_ms,
    })
}

fn conn_sync() -> impl Strategy<Value = ConnSync> {
    (
        (tuple(), any::<u32>(), any::<u32>(), any::<u32>()),
        (
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            placement(),
        ),
    )
        .prop_map(
            |(
                (tuple, owner, backup, backend),
                (generation, service, client_isn, server_isn, placement),
            )| ConnSync {
                tuple,
                owner,
                backup,
                backend,
                generation,
                service,
                client_isn,
                server_isn,
                placement,
            },
        )
}

/// An owned message of any type, for strategies.
#[derive(Clone, Debug)]
enum Owned {
    Hello(Hello),
    Heartbeat(Heartbeat),
    Req(ReqFields, Vec<u8>),
    Ack(HandoffAck),
    Nack(HandoffNack),
    Term(Term),
    Sync(ConnSync),
    End(ConnEnd),
    Transfer(u64, u32, Vec<ConnSync>),
    TransferAck(TransferAck),
}

fn owned() -> impl Strategy<Value = Owned> {
    prop_oneof![
        hello().prop_map(Owned::Hello),
        heartbeat().prop_map(Owned::Heartbeat),
        (req_fields(), prop::collection::vec(any::<u8>(), 0..2000))
            .prop_map(|(f, r)| Owned::Req(f, r)),
        (tuple(), any::<u32>(), any::<u8>()).prop_map(|(tuple, backend_isn, state)| Owned::Ack(
            HandoffAck {
                tuple,
                backend_isn,
                state
            }
        )),
        (tuple(), any::<u32>())
            .prop_map(|(tuple, reason)| Owned::Nack(HandoffNack { tuple, reason })),
        (tuple(), any::<u32>()).prop_map(|(tuple, reason)| Owned::Term(Term { tuple, reason })),
        conn_sync().prop_map(Owned::Sync),
        (tuple(), any::<u32>())
            .prop_map(|(tuple, client_isn)| Owned::End(ConnEnd { tuple, client_isn })),
        (
            any::<u64>(),
            any::<u32>(),
            prop::collection::vec(conn_sync(), 0..40)
        )
            .prop_map(|(g, b, e)| Owned::Transfer(g, b, e)),
        (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(generation, batch, accepted)| {
            Owned::TransferAck(TransferAck {
                generation,
                batch,
                accepted,
            })
        }),
    ]
}

/// Encodes `m` as a payload, or as a whole frame with `write_frame`.
fn encode_payload(m: &Owned) -> (MsgType, Vec<u8>) {
    let mut buf = vec![0u8; MAX_PAYLOAD];
    let mut w = TlvWriter::new(&mut buf);
    let ty = match m {
        Owned::Hello(x) => x.encode(&mut w).map(|()| MsgType::Hello),
        Owned::Heartbeat(x) => x.encode(&mut w).map(|()| MsgType::Heartbeat),
        Owned::Req(f, r) => f.with(r).encode(&mut w).map(|()| MsgType::HandoffReq),
        Owned::Ack(x) => x.encode(&mut w).map(|()| MsgType::HandoffAck),
        Owned::Nack(x) => x.encode(&mut w).map(|()| MsgType::HandoffNack),
        Owned::Term(x) => x.encode(&mut w).map(|()| MsgType::Term),
        Owned::Sync(x) => x.encode(&mut w).map(|()| MsgType::ConnSync),
        Owned::End(x) => x.encode(&mut w).map(|()| MsgType::ConnEnd),
        Owned::Transfer(generation, batch, e) => TransferOut {
            generation: *generation,
            batch: *batch,
            entries: e,
        }
        .encode(&mut w)
        .map(|()| MsgType::Transfer),
        Owned::TransferAck(x) => x.encode(&mut w).map(|()| MsgType::TransferAck),
    }
    .unwrap();
    let n = w.len();
    assert_eq!(n % 4, 0);
    (ty, buf[..n].to_vec())
}

fn write(
    m: &Owned,
    buf: &mut [u8],
    sender: u32,
    seq: u64,
    mac: &dyn Mac,
) -> Result<usize, FrameError> {
    match m {
        Owned::Hello(x) => write_frame(buf, sender, seq, 0, x, mac),
        Owned::Heartbeat(x) => write_frame(buf, sender, seq, 0, x, mac),
        Owned::Req(f, r) => write_frame(buf, sender, seq, 0, &f.with(r), mac),
        Owned::Ack(x) => write_frame(buf, sender, seq, 0, x, mac),
        Owned::Nack(x) => write_frame(buf, sender, seq, 0, x, mac),
        Owned::Term(x) => write_frame(buf, sender, seq, 0, x, mac),
        Owned::Sync(x) => write_frame(buf, sender, seq, 0, x, mac),
        Owned::End(x) => write_frame(buf, sender, seq, 0, x, mac),
        Owned::Transfer(generation, batch, e) => {
            let out = TransferOut {
                generation: *generation,
                batch: *batch,
                entries: e,
            };
            write_frame(buf, sender, seq, 0, &out, mac)
        }
        Owned::TransferAck(x) => write_frame(buf, sender, seq, 0, x, mac),
    }
}

/// Whether a decoded message is `m`.
fn same(m: &Owned, d: &Msg<'_>) -> bool {
    match (m, d) {
        (Owned::Hello(a), Msg::Hello(b)) => a == b,
        (Owned::Heartbeat(a), Msg::Heartbeat(b)) => a == b,
        (Owned::Req(f, r), Msg::HandoffReq(b)) => f.with(r) == *b,
        (Owned::Ack(a), Msg::HandoffAck(b)) => a == b,
        (Owned::Nack(a), Msg::HandoffNack(b)) => a == b,
        (Owned::Term(a), Msg::Term(b)) => a == b,
        (Owned::Sync(a), Msg::ConnSync(b)) => a == b,
        (Owned::End(a), Msg::ConnEnd(b)) => a == b,
        (Owned::Transfer(g, n, a), Msg::Transfer(b)) => {
            b.generation == *g
                && b.batch == *n
                && b.len() == a.len()
                && b.entries().collect::<Vec<_>>() == *a
        }
        (Owned::TransferAck(a), Msg::TransferAck(b)) => a == b,
        _ => false,
    }
}

/// The TLVs of a payload as (offset, total length with header and padding).
fn tlv_spans(payload: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = 0;
    for t in TlvIter::new(payload) {
        let t = t.unwrap();
        let n = 4 + t.value.len().div_ceil(4) * 4;
        spans.push((at, n));
        at += n;
    }
    assert_eq!(at, payload.len());
    spans
}

fn unknown_tlv(ty: u16, value: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&ty.to_be_bytes());
    b.extend_from_slice(&(value.len() as u16).to_be_bytes());
    b.extend_from_slice(value);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    b
}

proptest! {
    #[test]
    fn message_round_trip(m in owned()) {
        let (ty, payload) = encode_payload(&m);
        let d = Msg::decode(ty, &payload).unwrap();
        prop_assert!(same(&m, &d), "{:?} decoded as {:?}", m, d);
        prop_assert_eq!(d.msg_type(), ty);
    }

    #[test]
    fn frame_round_trip(m in owned(), sender in any::<u32>(), seq in any::<u64>(), key in prop::collection::vec(any::<u8>(), 16..64)) {
        let mac = HmacSha256(key);
        let mut buf = vec![0u8; FRAME_MAX];
        let n = write(&m, &mut buf, sender, seq, &mac).unwrap();
        let f = Frame::parse(&buf[..n]).unwrap();
        prop_assert_eq!(f.header.sender, sender);
        prop_assert_eq!(f.header.seq, seq);
        prop_assert_eq!(f.header.length as usize, n - HEADER_LEN - TAG_LEN);
        prop_assert_eq!(f.verify(&mac), Ok(()));
        prop_assert_eq!(f.tag(), &mac.tag(&[f.authenticated()]).unwrap()[..]);
        prop_assert!(same(&m, &Msg::of(&f).unwrap()));
        // Another key does not verify; a broken MAC refuses.
        prop_assert_eq!(f.verify(&HmacSha256(b"another key".to_vec())), Err(FrameError::BadTag));
        prop_assert_eq!(f.verify(&Broken), Err(FrameError::Mac));
    }

    #[test]
    fn any_flipped_bit_fails_the_tag(m in owned(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mac = HmacSha256(b"0123456789abcdef".to_vec());
        let mut buf = vec![0u8; FRAME_MAX];
        let n = write(&m, &mut buf, 1, 1, &mac).unwrap();
        buf[at.index(n)] ^= 1 << bit;
        // Either the header no longer parses or the tag fails.
        if let Ok(f) = Frame::parse(&buf[..n]) {
            prop_assert_eq!(f.verify(&mac), Err(FrameError::BadTag));
        }
    }

    #[test]
    fn unknown_tlvs_are_skipped(m in owned(), extra in prop::collection::vec((1000u16.., prop::collection::vec(any::<u8>(), 0..9), any::<prop::sample::Index>()), 1..4)) {
        let (ty, payload) = encode_payload(&m);
        let spans = tlv_spans(&payload);
        let mut with = payload.clone();
        // Insert at TLV boundaries, from the back so offsets stay valid.
        let mut cuts: Vec<(usize, Vec<u8>)> = extra
            .iter()
            .map(|(t, v, i)| {
                let k = i.index(spans.len() + 1);
                (if k == spans.len() { payload.len() } else { spans[k].0 }, unknown_tlv(*t, v))
            })
            .collect();
        cuts.sort_by_key(|c| std::cmp::Reverse(c.0));
        for (at, b) in cuts {
            with.splice(at..at, b);
        }
        let d = Msg::decode(ty, &with).unwrap();
        prop_assert!(same(&m, &d));
    }

    #[test]
    fn missing_or_duplicate_tlvs_are_errors(m in owned(), i in any::<prop::sample::Index>()) {
        let (ty, payload) = encode_payload(&m);
        let spans = tlv_spans(&payload);
        prop_assume!(!spans.is_empty());
        let (at, n) = spans[i.index(spans.len())];
        let t = u16::from_be_bytes([payload[at], payload[at + 1]]);
        // Twice: refused (TRANSFER entries repeat by design).
        let mut dup = payload.clone();
        dup.splice(at..at, payload[at..at + n].to_vec());
        match ty {
            MsgType::Transfer if t == attr::ENTRY => prop_assert!(Msg::decode(ty, &dup).is_ok()),
            _ => prop_assert_eq!(Msg::decode(ty, &dup), Err(FrameError::Duplicate(t))),
        }
        // Removed: a mandatory one is missing; an optional one (flags,
        // options of HANDOFF_REQ, a TRANSFER entry) decodes to its absence.
        let mut cut = payload.clone();
        cut.drain(at..at + n);
        let optional = [attr::WSCALE, attr::SACK_OK, attr::TIMESTAMPS, attr::ECN, attr::ENTRY];
        let got = Msg::decode(ty, &cut);
        if optional.contains(&t) {
            prop_assert!(got.is_ok());
        } else {
            prop_assert_eq!(got, Err(FrameError::Missing(t)));
        }
    }

    #[test]
    fn truncated_payloads_are_errors(m in owned(), cut in any::<prop::sample::Index>()) {
        let (ty, payload) = encode_payload(&m);
        prop_assume!(!payload.is_empty());
        let spans = tlv_spans(&payload);
        let n = cut.index(payload.len());
        if spans.iter().any(|s| s.0 == n) {
            // On a TLV boundary: a shorter, well-formed payload.
            return Ok(());
        }
        prop_assert_eq!(Msg::decode(ty, &payload[..n]).err(), Some(FrameError::TruncatedTlv));
    }

    #[test]
    fn wrong_value_lengths_are_errors(m in owned(), i in any::<prop::sample::Index>(), grow in any::<bool>()) {
        let (ty, payload) = encode_payload(&m);
        let spans = tlv_spans(&payload);
        prop_assume!(!spans.is_empty());
        let (at, n) = spans[i.index(spans.len())];
        let t = u16::from_be_bytes([payload[at], payload[at + 1]]);
        let len = u16::from_be_bytes([payload[at + 2], payload[at + 3]]) as usize;
        // Values of any length: the request bytes and TRANSFER entries' lists.
        prop_assume!(t != attr::REQUEST && t != attr::ENTRY);
        prop_assume!(grow || len > 0);
        let value = payload[at + 4..at + 4 + len].to_vec();
        let value = if grow { [value, vec![0]].concat() } else { value[..len - 1].to_vec() };
        let mut b = payload.clone();
        b.splice(at..at + n, unknown_tlv(t, &value));
        prop_assert_eq!(Msg::decode(ty, &b), Err(FrameError::BadValue(t)));
    }

    #[test]
    fn arbitrary_payloads_never_panic(ty in msg_type(), b in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(Msg::Transfer(t)) = Msg::decode(ty, &b) {
            prop_assert!(t.len() <= MAX_TRANSFER_ENTRIES);
            prop_assert_eq!(t.entries().count(), t.len());
        }
    }

    #[test]
    fn arbitrary_tlv_streams_never_panic(tlvs in prop::collection::vec((1u16..30, prop::collection::vec(any::<u8>(), 0..48)), 0..12), ty in msg_type()) {
        // Well-formed TLVs of known types with random values.
        let b: Vec<u8> = tlvs.iter().flat_map(|(t, v)| unknown_tlv(*t, v)).collect();
        let _ = Msg::decode(ty, &b);
    }
}

#[test]
fn tuple_checks() {
    let t = Tuple {
        family: Family::V4,
        client: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        server: [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        client_port: 40000,
        server_port: 80,
    };
    let b = t.encode();
    assert_eq!(Tuple::decode(&b), Ok(t));
    let bad = Err(FrameError::BadValue(attr::TUPLE));
    for (at, v) in [(0, 5u8), (1, 1), (3, 1), (8, 1), (24, 1)] {
        let mut x = b;
        x[at] = v;
        assert_eq!(Tuple::decode(&x), bad, "byte {at}");
    }
    assert_eq!(Tuple::decode(&b[..39]), bad);
    let mut v6 = b;
    v6[0] = 6;
    v6[8] = 1;
    assert!(Tuple::decode(&v6).is_ok());
}

fn v6_tuple() -> Tuple {
    Tuple {
        family: Family::V6,
        client: [1; 16],
        server: [2; 16],
        client_port: 1,
        server_port: 2,
    }
}

#[test]
fn wscale_bound() {
    let f = ReqFields {
        tuple: v6_tuple(),
        isns: (1, 2),
        mss: 1460,
        wscale: Some(WScale {
            client: 14,
            server: 14,
        }),
        sack_ok: true,
        timestamps: None,
        ecn: false,
        client_window: 65535,
        rtt_us: 100,
    };
    let mut buf = vec![0u8; 1024];
    let mut w = TlvWriter::new(&mut buf);
    f.with(b"GET / HTTP/1.1\r\n\r\n").encode(&mut w).unwrap();
    let n = w.len();
    assert!(HandoffReq::decode(&buf[..n]).is_ok());
    let mut f15 = f.clone();
    f15.wscale = Some(WScale {
        client: 15,
        server: 0,
    });
    let mut w = TlvWriter::new(&mut buf);
    f15.with(b"").encode(&mut w).unwrap();
    let n = w.len();
    assert_eq!(
        HandoffReq::decode(&buf[..n]),
        Err(FrameError::BadValue(attr::WSCALE))
    );
}

#[test]
fn padding_must_be_zero() {
    let mut b = unknown_tlv(attr::RECEIVER, &[1]);
    assert_eq!(TlvIter::new(&b).count(), 1);
    b[7] = 1;
    assert_eq!(TlvIter::new(&b).next(), Some(Err(FrameError::BadPadding)));
    // And the iterator stops after an error.
    let mut it = TlvIter::new(&b);
    assert!(it.next().unwrap().is_err());
    assert_eq!(it.next(), None);
}

/// A CONN_SYNC of [`v6_tuple`].
fn sync_entry(placement: Placement) -> ConnSync {
    ConnSync {
        tuple: v6_tuple(),
        owner: 1,
        backup: 2,
        backend: 3,
        generation: 4,
        service: 5,
        client_isn: 6,
        server_isn: 7,
        placement,
    }
}

#[test]
fn transfer_bound() {
    let e = sync_entry(Placement::Forwarded);
    let entries = vec![e; MAX_TRANSFER_ENTRIES + 1];
    let mut buf = vec![0u8; FRAME_MAX];
    let mac = HmacSha256(b"k".to_vec());
    let n = write_frame(
        &mut buf,
        1,
        1,
        0,
        &TransferOut {
            generation: 9,
            batch: 10,
            entries: &entries[..MAX_TRANSFER_ENTRIES],
        },
        &mac,
    )
    .unwrap();
    assert_eq!(
        n,
        HEADER_LEN + TAG_LEN + TRANSFER_HEAD_LEN + MAX_TRANSFER_ENTRIES * TRANSFER_ENTRY_LEN
    );
    let t = Transfer::decode(Frame::parse(&buf[..n]).unwrap().payload()).unwrap();
    assert_eq!(t.len(), MAX_TRANSFER_ENTRIES);
    assert!(t.entries().all(|x| x == e));
    assert_eq!((t.generation, t.batch), (9, 10));
    let over = TransferOut {
        generation: 9,
        batch: 10,
        entries: &entries,
    };
    assert_eq!(
        write_frame(&mut buf, 1, 1, 0, &over, &mac),
        Err(FrameError::TooMany)
    );
    // One entry more than the bound, written by hand: refused on decode.
    let mut big = vec![0u8; MAX_PAYLOAD];
    let mut w = TlvWriter::new(&mut big);
    w.put_u64(attr::GENERATION, 9).unwrap();
    w.put_u32(attr::BATCH, 10).unwrap();
    for x in &entries {
        w.nested(attr::ENTRY, |w| x.encode(w)).unwrap();
    }
    let n = w.len();
    assert_eq!(Transfer::decode(&big[..n]), Err(FrameError::TooMany));
    // encode_some fills what fits.
    let mut small = vec![0u8; TRANSFER_HEAD_LEN + 10 * TRANSFER_ENTRY_LEN + 3];
    let mut w = TlvWriter::new(&mut small);
    assert_eq!(Transfer::encode_some(9, 10, &entries, &mut w), Ok(10));
    assert_eq!(w.len(), TRANSFER_HEAD_LEN + 10 * TRANSFER_ENTRY_LEN);
    let t = Transfer::decode(w.as_bytes()).unwrap();
    assert_eq!((t.generation, t.batch, t.len()), (9, 10, 10));
    // Not even the head fits.
    let mut tiny = vec![0u8; TRANSFER_HEAD_LEN - 1];
    let mut w = TlvWriter::new(&mut tiny);
    assert_eq!(
        Transfer::encode_some(9, 10, &entries, &mut w),
        Err(FrameError::NoRoom)
    );
}

#[test]
fn placement_values() {
    let e = sync_entry(Placement::Local);
    let mut buf = vec![0u8; 512];
    let mut w = TlvWriter::new(&mut buf);
    e.encode(&mut w).unwrap();
    let n = w.len();
    let spans = tlv_spans(&buf[..n]);
    let (at, _) = *spans
        .iter()
        .find(|s| u16::from_be_bytes([buf[s.0], buf[s.0 + 1]]) == attr::PLACEMENT)
        .unwrap();
    assert_eq!(buf[at + 4..at + 8], [3, 0, 0, 0]);
    for (v, want) in [
        (0u8, Err(FrameError::BadValue(attr::PLACEMENT))),
        (1, Ok(Placement::Forwarded)),
        (2, Ok(Placement::Pending)),
        (3, Ok(Placement::Local)),
        (4, Err(FrameError::BadValue(attr::PLACEMENT))),
        (255, Err(FrameError::BadValue(attr::PLACEMENT))),
    ] {
        buf[at + 4] = v;
        assert_eq!(ConnSync::decode(&buf[..n]).map(|c| c.placement), want);
    }
    // A TRANSFER with a bad entry is refused whole.
    buf[at + 4] = 9;
    let mut t = vec![0u8; 1024];
    let mut w = TlvWriter::new(&mut t);
    w.put_u64(attr::GENERATION, 1).unwrap();
    w.put_u32(attr::BATCH, 1).unwrap();
    let good = {
        let mut g = vec![0u8; 512];
        let mut gw = TlvWriter::new(&mut g);
        e.encode(&mut gw).unwrap();
        gw.as_bytes().to_vec()
    };
    w.put(attr::ENTRY, &good).unwrap();
    w.put(attr::ENTRY, &buf[..n]).unwrap();
    assert_eq!(
        Transfer::decode(w.as_bytes()),
        Err(FrameError::BadValue(attr::PLACEMENT))
    );
}

#[test]
fn writer_bounds() {
    let mut buf = [0xffu8; 12];
    let mut w = TlvWriter::new(&mut buf);
    w.put_u32(1, 7).unwrap();
    assert_eq!(w.put_u32(2, 8), Err(FrameError::NoRoom));
    assert_eq!(w.len(), 8);
    w.put_flag(3).unwrap();
    assert_eq!(w.put_flag(3), Err(FrameError::NoRoom));
    assert_eq!(w.as_bytes(), &[0, 1, 0, 4, 0, 0, 0, 7, 0, 3, 0, 0]);
    // Values over u16 and payloads over MAX_PAYLOAD do not fit.
    let mut big = vec![0u8; 2 * MAX_PAYLOAD];
    let mut w = TlvWriter::new(&mut big);
    assert_eq!(w.put(1, &vec![0; MAX_PAYLOAD]), Err(FrameError::NoRoom));
    assert_eq!(w.put(1, &vec![0; 70000]), Err(FrameError::NoRoom));
    w.put(1, &vec![0; MAX_PAYLOAD - 4]).unwrap();
    assert_eq!(w.len(), MAX_PAYLOAD);
    // A frame too big for its buffer.
    let mac = HmacSha256(b"k".to_vec());
    let hb = Heartbeat {
        generation: 1,
        uptime_ms: 2,
    };
    let mut buf = vec![0u8; HEADER_LEN + 20 + TAG_LEN];
    assert_eq!(
        write_frame(&mut buf, 1, 1, 0, &hb, &mac),
        Err(FrameError::NoRoom)
    );
    let mut buf = vec![0u8; HEADER_LEN + 24 + TAG_LEN];
    assert_eq!(write_frame(&mut buf, 1, 1, 0, &hb, &mac), Ok(buf.len()));
    assert_eq!(
        write_frame(&mut buf, 1, 1, 0, &hb, &Broken),
        Err(FrameError::Mac)
    );
}

// The sequence check.

fn hdr(msg_type: MsgType, seq: u64) -> Header {
    Header {
        msg_type,
        length: 0,
        sender: 1,
        seq,
        key_id: 0,
    }
}

#[test]
fn seq_check() {
    let mut rx = RxSeq::new();
    assert_eq!(
        rx.check(&hdr(MsgType::Heartbeat, 0)),
        Err(FrameError::Unexpected)
    );
    assert_eq!(rx.check(&hdr(MsgType::Hello, 1)), Err(FrameError::BadSeq));
    assert_eq!(rx.last(), None);
    rx.check(&hdr(MsgType::Hello, 0)).unwrap();
    assert_eq!(
        rx.check(&hdr(MsgType::Hello, 1)),
        Err(FrameError::Unexpected)
    );
    assert_eq!(
        rx.check(&hdr(MsgType::Heartbeat, 0)),
        Err(FrameError::BadSeq)
    );
    assert_eq!(
        rx.check(&hdr(MsgType::Heartbeat, 2)),
        Err(FrameError::BadSeq)
    );
    rx.check(&hdr(MsgType::Heartbeat, 1)).unwrap();
    rx.check(&hdr(MsgType::Transfer, 2)).unwrap();
    assert_eq!(rx.last(), Some(2));
    let mut tx = TxSeq::new();
    assert_eq!((tx.take(), tx.take(), tx.take()), (0, 1, 2));
}

proptest! {
    #[test]
    fn seq_accepts_exactly_the_next(seqs in prop::collection::vec(0u64..6, 1..30)) {
        let mut rx = RxSeq::new();
        rx.check(&hdr(MsgType::Hello, 0)).unwrap();
        let mut last = 0u64;
        for s in seqs {
            let got = rx.check(&hdr(MsgType::Heartbeat, s));
            if s == last + 1 {
                prop_assert_eq!(got, Ok(()));
                last = s;
            } else {
                // Replayed or skipped: refused, and the state did not move.
                prop_assert_eq!(got, Err(FrameError::BadSeq));
            }
            prop_assert_eq!(rx.last(), Some(last));
        }
    }
}

// The stream assembler.

/// Feeds `stream` to a reader in chunks of the given sizes; returns the
/// frames' bytes and the error, if any.
fn assemble(stream: &[u8], chunks: &[usize], direct: bool) -> (Vec<Vec<u8>>, Option<FrameError>) {
    let mut buf = vec![0u8; FRAME_MAX];
    let mut r = FrameReader::new();
    let mut frames = Vec::new();
    let mut at = 0;
    let mut k = 0;
    while at < stream.len() {
        let chunk = chunks.get(k).copied().unwrap_or(7).max(1);
        k += 1;
        let mut data = &stream[at..(at + chunk).min(stream.len())];
        at += data.len();
        while !data.is_empty() {
            let (n, res) = if direct {
                // As the kernel does: receive into `unfilled`.
                let room = r.unfilled(&mut buf);
                let n = room.len().min(data.len());
                room[..n].copy_from_slice(&data[..n]);
                (n, r.advance(&buf, n))
            } else {
                r.feed(&mut buf, data)
            };
            data = &data[n..];
            match res {
                Ok(Some(f)) => frames.push(f.bytes().to_vec()),
                Ok(None) => assert!(n > 0),
                Err(e) => {
                    assert!(r.failed());
                    return (frames, Some(e));
                }
            }
        }
    }
    (frames, None)
}

proptest! {
    #[test]
    fn assembler_any_split(msgs in prop::collection::vec(owned(), 1..6), chunks in prop::collection::vec(1usize..300, 0..60), direct in any::<bool>()) {
        let mac = HmacSha256(b"0123456789abcdef".to_vec());
        let mut stream = Vec::new();
        let mut want = Vec::new();
        let mut buf = vec![0u8; FRAME_MAX];
        for (i, m) in msgs.iter().enumerate() {
            let n = write(m, &mut buf, 3, i as u64, &mac).unwrap();
            stream.extend_from_slice(&buf[..n]);
            want.push(buf[..n].to_vec());
        }
        let (frames, err) = assemble(&stream, &chunks, direct);
        prop_assert_eq!(err, None);
        prop_assert_eq!(&frames, &want);
        for (f, m) in frames.iter().zip(&msgs) {
            let f = Frame::parse(f).unwrap();
            prop_assert_eq!(f.verify(&mac), Ok(()));
            prop_assert!(same(m, &Msg::of(&f).unwrap()));
        }
    }

    #[test]
    fn assembler_never_panics(stream in prop::collection::vec(any::<u8>(), 0..3000), chunks in prop::collection::vec(1usize..200, 0..30), direct in any::<bool>()) {
        let (frames, _) = assemble(&stream, &chunks, direct);
        for f in frames {
            let f = Frame::parse(&f).unwrap();
            let _ = Msg::of(&f);
        }
    }

    #[test]
    fn bad_header_refused_before_payload(h in header(), byte in prop_oneof![0usize..8, 8usize..12, 28usize..32], x in 1u8..=255) {
        let mut b = h.encode();
        b[byte] ^= x;
        prop_assume!(Header::decode(&b).is_err());
        let mut buf = vec![0u8; FRAME_MAX];
        let mut r = FrameReader::new();
        // The header and a whole payload offered at once: only the header
        // is taken.
        let mut stream = b.to_vec();
        stream.extend(vec![0u8; 1000]);
        let (n, res) = r.feed(&mut buf, &stream);
        prop_assert_eq!(n, HEADER_LEN);
        prop_assert_eq!(res.err(), Header::decode(&b).err());
        prop_assert!(r.unfilled(&mut buf).is_empty());
        let (n, res) = r.feed(&mut buf, &stream[n..]);
        prop_assert_eq!(n, 0);
        prop_assert!(res.is_err());
    }
}

#[test]
fn reader_small_buffer() {
    // A buffer too small for the frame announced: refused, no panic.
    let mac = HmacSha256(b"k".to_vec());
    let mut out = vec![0u8; FRAME_MAX];
    let hb = Heartbeat {
        generation: 1,
        uptime_ms: 2,
    };
    let n = write_frame(&mut out, 1, 1, 0, &hb, &mac).unwrap();
    let mut buf = vec![0u8; n - 1];
    let mut r = FrameReader::new();
    let (used, res) = r.feed(&mut buf, &out[..n]);
    assert_eq!(used, HEADER_LEN);
    assert_eq!(res.err(), Some(FrameError::TooLong));
    let mut tiny = [0u8; 8];
    let mut r = FrameReader::new();
    assert_eq!(
        r.feed(&mut tiny, &out[..n]).1.err(),
        Some(FrameError::TooLong)
    );
    // Advancing past what was asked is refused too.
    let mut r = FrameReader::new();
    assert_eq!(
        r.advance(&buf, HEADER_LEN + 1).err(),
        Some(FrameError::TooLong)
    );
}

#[test]
fn hello_checks() {
    let hello = |receiver| Hello {
        nonce: [9; 16],
        receiver,
        caps: 0,
        hb_interval_ms: 200,
    };
    let h = |sender, seq, key_id| Header {
        msg_type: MsgType::Hello,
        length: 0,
        sender,
        seq,
        key_id,
    };
    use FrameError::{BadKeyId, Unexpected, WrongPeer};
    use Role::{Acceptor, Connector};
    // (role, header, receiver in the HELLO, peer, own id, result)
    let cases = [
        // Node 2 accepts from node 1; node 1 hears node 2's answer.
        (Acceptor, h(1, 0, 0), 2, 1, 2, Ok(())),
        (Connector, h(2, 0, 0), 1, 2, 1, Ok(())),
        // The higher id may not connect, nor the lower accept.
        (Acceptor, h(3, 0, 0), 2, 3, 2, Err(WrongPeer)),
        (Connector, h(1, 0, 0), 2, 1, 2, Err(WrongPeer)),
        // Another sender than the peer whose address connected; another
        // receiver; not seq 0; another key id.
        (Acceptor, h(1, 0, 0), 2, 0, 2, Err(WrongPeer)),
        (Acceptor, h(1, 0, 0), 3, 1, 2, Err(WrongPeer)),
        (Acceptor, h(1, 1, 0), 2, 1, 2, Err(Unexpected)),
        (Acceptor, h(1, 0, 1), 2, 1, 2, Err(BadKeyId)),
    ];
    for (role, header, receiver, peer, own, want) in cases {
        assert_eq!(
            check_hello(role, &header, &hello(receiver), peer, own),
            want,
            "{role:?} {header:?} receiver {receiver} peer {peer} own {own}"
        );
    }
    let mut hb = h(1, 0, 0);
    hb.msg_type = MsgType::Heartbeat;
    assert_eq!(check_hello(Acceptor, &hb, &hello(2), 1, 2), Err(Unexpected));

    let mut rx = RxSeq::new();
    assert_eq!(check_frame(&mut rx, &h(1, 0, 0), 1), Ok(()));
    hb.seq = 1;
    assert_eq!(check_frame(&mut rx, &hb, 5), Err(FrameError::WrongPeer));
    hb.key_id = 1;
    assert_eq!(check_frame(&mut rx, &hb, 1), Err(FrameError::BadKeyId));
    hb.key_id = 0;
    assert_eq!(rx.last(), Some(0));
    assert_eq!(check_frame(&mut rx, &hb, 1), Ok(()));
    assert_eq!(check_frame(&mut rx, &hb, 1), Err(FrameError::BadSeq));
}

/// Writes a seed corpus for the fuzz target (one frame of each type) when
/// SOCKGROUP_FUZZ_CORPUS names a directory; see the README.
#[test]
fn fuzz_corpus() {
    let Some(dir) = std::env::var_os("SOCKGROUP_FUZZ_CORPUS") else {
        return;
    };
    let mac = HmacSha256(b"0123456789abcdef".to_vec());
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut buf = vec![0u8; FRAME_MAX];
    for i in 0..64 {
        let m = owned().new_tree(&mut runner).unwrap().current();
        let n = write(&m, &mut buf, 1, i, &mac).unwrap();
        // The fuzz target's first byte is the chunk size.
        let mut seed = vec![(i * 37 % 256) as u8];
        seed.extend_from_slice(&buf[..n]);
        std::fs::write(
            std::path::Path::new(&dir).join(format!("seed-{i:02}")),
            seed,
        )
        .unwrap();
    }
}

/// The front-end's withdrawal of a handoff (TERM, reason TIMEOUT) on the
/// wire: a TERM frame with the tuple and the reason 3, which the back-end
/// decodes as a withdrawal; FIN and RST (the back-end's reports of an end)
/// are none.
#[test]
fn term_timeout_withdraws() {
    let t = v6_tuple();
    let m = Term {
        tuple: t,
        reason: term::TIMEOUT,
    };
    let mac = HmacSha256(b"0123456789abcdef".to_vec());
    let mut buf = vec![0u8; FRAME_MAX];
    let n = write_frame(&mut buf, 1, 7, 0, &m, &mac).unwrap();
    let f = Frame::parse(&buf[..n]).unwrap();
    assert_eq!(f.header.msg_type, MsgType::Term);
    // TUPLE (type 1, 40 bytes), then REASON (type 20, 4 bytes: 3).
    let mut want = vec![0, 1, 0, 40];
    want.extend_from_slice(&t.encode());
    want.extend_from_slice(&[0, 20, 0, 4, 0, 0, 0, 3]);
    assert_eq!(f.payload(), &want[..]);
    assert_eq!(f.verify(&mac), Ok(()));
    match Msg::of(&f).unwrap() {
        Msg::Term(d) => {
            assert_eq!(d, m);
            assert!(d.withdraws_handoff());
        }
        other => panic!("decoded as {other:?}"),
    }
    for reason in [term::FIN, term::RST] {
        assert!(!Term { tuple: t, reason }.withdraws_handoff());
    }
}

proptest! {
    /// A TERM withdraws a handoff exactly when its reason is TIMEOUT,
    /// whatever its tuple, and keeps that through the codec.
    #[test]
    fn term_withdraws_only_on_timeout(t in tuple(), reason in prop_oneof![Just(term::TIMEOUT), any::<u32>()]) {
        let m = Term { tuple: t, reason };
        let (ty, payload) = encode_payload(&Owned::Term(m));
        let Msg::Term(d) = Msg::decode(ty, &payload).unwrap() else {
            panic!("not a TERM");
        };
        prop_assert_eq!(d.withdraws_handoff(), reason == term::TIMEOUT);
    }
}
