// SPDX-License-Identifier: GPL-2.0

//! Property tests of the sequence translation (src/cluster/xlate.rs): the
//! incrementally updated checksum equals one computed from scratch (IPv4
//! and IPv6, full and pseudo-header-only fields, options at odd offsets),
//! translating forth and back is the identity, exactly the fields of the
//! direction change (by the offset, in serial arithmetic), and a malformed
//! option list is refused with the header untouched.

mod common;

use common::tcp::*;
use proptest::prelude::*;
use sockgroup_logic::xlate::*;

fn dir_strategy() -> impl Strategy<Value = Dir> {
    prop_oneof![Just(Dir::ToBackend), Just(Dir::ToClient)]
}

/// The header's bytes after a translation, by the model: each field of the
/// direction moved by the offset, all else equal (the checksum aside).
fn model(seg: &Seg, dir: Dir, off: Offsets) -> Vec<u8> {
    let mut b = seg.bytes.clone();
    let ack = b[13] & 0x10 != 0;
    let put = |b: &mut Vec<u8>, at: usize, d: u32| {
        let v = get32(b, at).wrapping_add(d);
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    };
    let mut at = 20;
    let mut sites = Vec::new();
    for o in &seg.opts {
        sites.push((o.clone(), at));
        at += o.bytes().len();
    }
    match dir {
        Dir::ToBackend => {
            if ack {
                put(&mut b, 8, off.seq);
            }
            for (o, at) in sites {
                match o {
                    GenOpt::Sack(blocks) => {
                        for i in 0..blocks.len() * 2 {
                            put(&mut b, at + 2 + 4 * i, off.seq);
                        }
                    }
                    GenOpt::Ts(..) if ack => put(&mut b, at + 6, off.ts),
                    _ => {}
                }
            }
        }
        Dir::ToClient => {
            put(&mut b, 4, off.seq.wrapping_neg());
            for (o, at) in sites {
                if let GenOpt::Ts(..) = o {
                    put(&mut b, at + 2, off.ts.wrapping_neg());
                }
            }
        }
    }
    b
}

/// A reference walker: `Ok` if the option list of `hdr` is well formed.
fn reference_walk(hdr: &[u8]) -> Result<(), ()> {
    let doff = usize::from(hdr[12] >> 4) * 4;
    let opts = &hdr[20..doff];
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return Ok(()),
            1 => i += 1,
            k => {
                let len = *opts.get(i + 1).ok_or(())? as usize;
                if len < 2 || i + len > opts.len() {
                    return Err(());
                }
                if k == 5 && (len < 10 || !(len - 2).is_multiple_of(8)) {
                    return Err(());
                }
                if k == 8 && len != 10 {
                    return Err(());
                }
                i += len;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn library_checksum_is_the_reference(seg in seg_strategy(), pseudo in pseudo_strategy()) {
        prop_assert_eq!(tcp_checksum(&pseudo, &seg.bytes), reference_checksum(&pseudo, &seg.bytes));
    }

    #[test]
    fn full_checksum_equals_scratch_and_fields_follow_the_model(
        seg in seg_strategy(),
        pseudo in pseudo_strategy(),
        dir in dir_strategy(),
        off in offsets_strategy(),
    ) {
        let mut b = seg.bytes.clone();
        fill_check(&mut b, &pseudo);
        let r = translate(&mut b, dir, off, CsumMode::Full);
        prop_assert!(r.is_ok(), "{:?}", r);
        prop_assert_eq!(check_of(&b), reference_checksum(&pseudo, &b));
        let mut want = model(&seg, dir, off);
        want[16..18].copy_from_slice(&b[16..18]);
        prop_assert_eq!(&b, &want);
    }

    #[test]
    fn completed_partial_checksum_is_the_reference(
        seg in seg_strategy(),
        pseudo in pseudo_strategy(),
        head in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // A packet whose segment starts `head.len()` bytes in (after an IP
        // header): the field holds the pseudo-header sum, as the stack
        // leaves it for the device; completing it in place gives the
        // checksum from scratch (0 written as 0xffff), the rest untouched.
        let mut pkt = head.clone();
        let mut b = seg.bytes.clone();
        let partial = pseudo_partial(&pseudo, b.len() as u32);
        set_check(&mut b, partial);
        pkt.extend_from_slice(&b);
        prop_assert!(complete_partial(&mut pkt, head.len(), 16));
        let got = check_of(&pkt[head.len()..]);
        let want = match reference_checksum(&pseudo, &seg.bytes) { 0 => 0xffff, c => c };
        prop_assert_eq!(got, want);
        prop_assert_eq!(&pkt[..head.len()], &head[..]);
        prop_assert_eq!(&pkt[head.len() + 18..], &seg.bytes[18..]);
        // A field beyond the packet: refused, nothing changed.
        let before = pkt.clone();
        let n = pkt.len();
        prop_assert!(!complete_partial(&mut pkt, head.len(), n));
        prop_assert_eq!(&pkt, &before);
    }

    #[test]
    fn partial_field_untouched_and_device_sum_equals_scratch(
        seg in seg_strategy(),
        pseudo in pseudo_strategy(),
        dir in dir_strategy(),
        off in offsets_strategy(),
    ) {
        let mut b = seg.bytes.clone();
        let partial = pseudo_partial(&pseudo, b.len() as u32);
        set_check(&mut b, partial);
        // Before: the device's sum is the full checksum.
        prop_assert_eq!(finish_partial(&b), reference_checksum(&pseudo, &b));
        translate(&mut b, dir, off, CsumMode::PseudoOnly).unwrap();
        prop_assert_eq!(check_of(&b), partial);
        prop_assert_eq!(finish_partial(&b), reference_checksum(&pseudo, &b));
        let mut want = model(&seg, dir, off);
        want[16..18].copy_from_slice(&partial.to_be_bytes());
        prop_assert_eq!(&b, &want);
    }

    #[test]
    fn forth_and_back_is_the_identity(
        seg in seg_strategy(),
        pseudo in pseudo_strategy(),
        dir in dir_strategy(),
        off in offsets_strategy(),
        full in any::<bool>(),
    ) {
        let mut b = seg.bytes.clone();
        let mode = if full { CsumMode::Full } else { CsumMode::PseudoOnly };
        let c = if full {
            reference_checksum(&pseudo, &b)
        } else {
            pseudo_partial(&pseudo, b.len() as u32)
        };
        set_check(&mut b, c);
        let orig = b.clone();
        let there = translate(&mut b, dir, off, mode).unwrap();
        let back = translate(&mut b, dir, off.inverse(), mode).unwrap();
        prop_assert_eq!(&b, &orig);
        prop_assert_eq!(there, back);
    }

    #[test]
    fn counts_what_it_rewrote(
        seg in seg_strategy(),
        dir in dir_strategy(),
        seq in 1u32..,
        ts in 1u32..,
    ) {
        let mut b = seg.bytes.clone();
        let t = translate(&mut b, dir, Offsets { seq, ts }, CsumMode::Full).unwrap();
        let ack = b[13] & 0x10 != 0;
        let sacks: usize = seg.opts.iter().map(|o| match o {
            GenOpt::Sack(v) => v.len(),
            _ => 0,
        }).sum();
        let tss = seg.opts.iter().filter(|o| matches!(o, GenOpt::Ts(..))).count();
        let (fields, sack_blocks, timestamps) = match dir {
            Dir::ToBackend => {
                let t = if ack { tss } else { 0 };
                (usize::from(ack) + 2 * sacks + t, sacks, t)
            }
            Dir::ToClient => (1 + tss, 0, tss),
        };
        prop_assert_eq!(usize::from(t.fields), fields);
        prop_assert_eq!(usize::from(t.sack_blocks), sack_blocks);
        prop_assert_eq!(usize::from(t.timestamps), timestamps);
    }

    #[test]
    fn a_client_ack_of_translated_bytes_acks_them_on_the_backend(
        be_isn in seq_strategy(),
        fe_isn in seq_strategy(),
        sent in 0u32..(1 << 30),
        len in 0u32..65536,
        be_ts in seq_strategy(),
        fe_ts in seq_strategy(),
    ) {
        let off = Offsets::new(fe_isn, be_isn, fe_ts, be_ts);
        // The back-end's segment at be_isn + 1 + sent, its TSval be_ts.
        let mut reply = vec![0u8; 32];
        reply[12] = 8 << 4;
        reply[13] = 0x10;
        reply[4..8].copy_from_slice(&be_isn.wrapping_add(1).wrapping_add(sent).to_be_bytes());
        reply[20..22].copy_from_slice(&[1, 1]);
        reply[22..24].copy_from_slice(&[8, 10]);
        reply[24..28].copy_from_slice(&be_ts.to_be_bytes());
        translate(&mut reply, Dir::ToClient, off, CsumMode::Full).unwrap();
        // The client sees the front-end's numbering.
        let seen = get32(&reply, 4);
        prop_assert_eq!(seen, fe_isn.wrapping_add(1).wrapping_add(sent));
        prop_assert_eq!(get32(&reply, 24), fe_ts);
        // It acknowledges the segment and echoes its TSval.
        let mut ack = vec![0u8; 32];
        ack[12] = 8 << 4;
        ack[13] = 0x10;
        ack[8..12].copy_from_slice(&seen.wrapping_add(len).to_be_bytes());
        ack[20..22].copy_from_slice(&[1, 1]);
        ack[22..24].copy_from_slice(&[8, 10]);
        ack[28..32].copy_from_slice(&get32(&reply, 24).to_be_bytes());
        translate(&mut ack, Dir::ToBackend, off, CsumMode::Full).unwrap();
        prop_assert_eq!(get32(&ack, 8), be_isn.wrapping_add(1).wrapping_add(sent).wrapping_add(len));
        prop_assert_eq!(get32(&ack, 28), be_ts);
    }

    #[test]
    fn malformed_options_are_refused_untouched(
        opts in raw_options(&[0, 1, 2, 5, 8, 10, 18, 34, 40], 2),
        doff_err in 0u8..4,
        pseudo in pseudo_strategy(),
        dir in dir_strategy(),
        off in offsets_strategy(),
        payload in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut b = raw_segment(&opts, 0x10, doff_err, &payload);
        fill_check(&mut b, &pseudo);
        let before = b.clone();
        let walk = Options::new(&b).and_then(|o| o.check());
        let r = translate(&mut b, dir, off, CsumMode::Full);
        let doff = usize::from(before[12] >> 4) * 4;
        let reference = if doff < 20 || doff > before.len() {
            Err(())
        } else {
            reference_walk(&before)
        };
        prop_assert_eq!(walk.is_ok(), reference.is_ok());
        prop_assert_eq!(r.is_ok(), reference.is_ok());
        if r.is_err() {
            prop_assert_eq!(&b, &before);
        } else {
            prop_assert_eq!(check_of(&b), reference_checksum(&pseudo, &b));
        }
        // The walker's options lie within the header, in order.
        if let Ok(it) = Options::new(&before) {
            let mut last = 19;
            for o in it.flatten() {
                prop_assert!(o.at > last && o.at + o.len <= doff);
                last = o.at;
            }
        }
    }

    #[test]
    fn address_change_updates_both_kinds_of_field(
        seg in seg_strategy(),
        pseudo in pseudo_strategy(),
        new4 in any::<[u8; 4]>(),
        new16 in any::<[u8; 16]>(),
        src in any::<bool>(),
        full in any::<bool>(),
    ) {
        let mut b = seg.bytes.clone();
        let mode = if full { CsumMode::Full } else { CsumMode::PseudoOnly };
        let len = b.len() as u32;
        let c = if full {
            reference_checksum(&pseudo, &b)
        } else {
            pseudo_partial(&pseudo, len)
        };
        set_check(&mut b, c);
        let (old, new, after): (Vec<u8>, Vec<u8>, Pseudo) = match (pseudo, src) {
            (Pseudo::V4(s, d), true) => (s.to_vec(), new4.to_vec(), Pseudo::V4(new4, d)),
            (Pseudo::V4(s, d), false) => (d.to_vec(), new4.to_vec(), Pseudo::V4(s, new4)),
            (Pseudo::V6(s, d), true) => (s.to_vec(), new16.to_vec(), Pseudo::V6(new16, d)),
            (Pseudo::V6(s, d), false) => (d.to_vec(), new16.to_vec(), Pseudo::V6(s, new16)),
        };
        pseudo_addr_changed(&mut b, &old, &new, mode).unwrap();
        if full {
            prop_assert_eq!(check_of(&b), reference_checksum(&after, &b));
        } else {
            prop_assert_eq!(check_of(&b), pseudo_partial(&after, len));
            prop_assert_eq!(finish_partial(&b), reference_checksum(&after, &b));
        }
    }

    #[test]
    fn any_bytes_never_panic(mut b in prop::collection::vec(any::<u8>(), 0..80), off in offsets_strategy(), dir in dir_strategy()) {
        let before = b.clone();
        if translate(&mut b, dir, off, CsumMode::Full).is_err() {
            prop_assert_eq!(b, before);
        }
    }
}

#[test]
fn wraparound_at_the_top_of_the_sequence_space() {
    // Back-end ISN 0x10, front-end ISN 0xffff_fff0: offset 0x20.
    let off = Offsets::new(0xffff_fff0, 0x10, 0xffff_ff00, 5);
    assert_eq!(off.seq, 0x20);
    assert_eq!(off.ts, 0x105);
    let pseudo = Pseudo::V4([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut b = vec![0u8; 32];
    b[4..8].copy_from_slice(&0x0000_0008u32.to_be_bytes());
    b[12] = 8 << 4;
    b[13] = 0x18;
    b[20..24].copy_from_slice(&[1, 1, 8, 10]);
    b[24..28].copy_from_slice(&3u32.to_be_bytes());
    fill_check(&mut b, &pseudo);
    translate(&mut b, Dir::ToClient, off, CsumMode::Full).unwrap();
    assert_eq!(get32(&b, 4), 0xffff_ffe8);
    assert_eq!(get32(&b, 24), 0xffff_fefe);
    assert_eq!(check_of(&b), reference_checksum(&pseudo, &b));
    // The client acks past the wrap: 0xffff_fff8 + 0x10 = 0x8.
    let mut a = vec![0u8; 20];
    a[8..12].copy_from_slice(&0x0000_0008u32.to_be_bytes());
    a[12] = 5 << 4;
    a[13] = 0x10;
    fill_check(&mut a, &pseudo);
    translate(&mut a, Dir::ToBackend, off, CsumMode::Full).unwrap();
    assert_eq!(get32(&a, 8), 0x28);
    assert_eq!(check_of(&a), reference_checksum(&pseudo, &a));
}

#[test]
fn an_option_at_an_odd_offset_keeps_the_checksum() {
    // One NOP, then the timestamps option at offset 21, three NOPs after.
    let pseudo = Pseudo::V6([0xfe; 16], [0x20; 16]);
    let mut b = vec![0u8; 36];
    b[12] = 9 << 4;
    b[13] = 0x10;
    b[20] = 1;
    b[21..23].copy_from_slice(&[8, 10]);
    b[23..27].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    b[27..31].copy_from_slice(&0x9abc_def0u32.to_be_bytes());
    b[31..36].copy_from_slice(&[1, 1, 1, 0, 0]);
    b.extend_from_slice(b"odd payload");
    fill_check(&mut b, &pseudo);
    let t = translate(
        &mut b,
        Dir::ToBackend,
        Offsets {
            seq: 0,
            ts: 0x0102_0304,
        },
        CsumMode::Full,
    )
    .unwrap();
    assert_eq!(t.timestamps, 1);
    assert_eq!(get32(&b, 27), 0x9bbe_e1f4);
    assert_eq!(check_of(&b), reference_checksum(&pseudo, &b));
}

#[test]
fn zero_offsets_change_nothing_but_still_check() {
    let mut b = vec![0u8; 24];
    b[12] = 6 << 4;
    b[20..24].copy_from_slice(&[8, 10, 0, 0]);
    let before = b.clone();
    assert_eq!(
        translate(&mut b, Dir::ToBackend, Offsets::default(), CsumMode::Full),
        Err(XlateError::TruncatedOption(8))
    );
    assert_eq!(b, before);
    b[20..24].copy_from_slice(&[1, 1, 1, 0]);
    assert_eq!(
        translate(&mut b, Dir::ToClient, Offsets::default(), CsumMode::Full),
        Ok(Translated::default())
    );
    assert_eq!(b[20..24], [1, 1, 1, 0]);
}

#[test]
fn malformed_option_errors() {
    let hdr = |opts: &[u8]| {
        let mut b = vec![0u8; 20];
        b[12] = (((20 + opts.len()) / 4) as u8) << 4;
        b.extend_from_slice(opts);
        b
    };
    let cases: [(&[u8], XlateError); 6] = [
        (&[1, 1, 1, 2], XlateError::TruncatedOption(2)),
        (&[2, 1, 0, 0], XlateError::BadOptionLength(2)),
        (&[2, 8, 0, 0], XlateError::TruncatedOption(2)),
        (&[8, 8, 0, 0, 0, 0, 1, 1], XlateError::BadOptionLength(8)),
        (&[5, 6, 0, 0, 0, 0, 1, 1], XlateError::BadOptionLength(5)),
        (
            &[5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            XlateError::BadOptionLength(5),
        ),
    ];
    for (opts, err) in cases {
        let mut b = hdr(opts);
        let before = b.clone();
        let off = Offsets { seq: 1, ts: 1 };
        assert_eq!(
            translate(&mut b, Dir::ToBackend, off, CsumMode::Full),
            Err(err),
            "{opts:?}"
        );
        assert_eq!(b, before);
    }
    assert_eq!(
        translate(
            &mut [0u8; 19],
            Dir::ToBackend,
            Offsets::default(),
            CsumMode::Full
        ),
        Err(XlateError::Short)
    );
    let mut b = hdr(&[]);
    b[12] = 4 << 4;
    assert_eq!(
        translate(&mut b, Dir::ToBackend, Offsets::default(), CsumMode::Full),
        Err(XlateError::BadDataOffset)
    );
    b[12] = 6 << 4;
    assert_eq!(
        translate(&mut b, Dir::ToBackend, Offsets::default(), CsumMode::Full),
        Err(XlateError::Short)
    );
    // Bytes after EOL are not options.
    let mut b = hdr(&[0, 5, 1, 0]);
    assert!(translate(
        &mut b,
        Dir::ToBackend,
        Offsets { seq: 1, ts: 1 },
        CsumMode::Full
    )
    .is_ok());
}

/// Writes seeds for the `xlate` fuzz target (README, "Fuzzing"): its 9
/// bytes of direction, field kind, family and offsets, then a generated
/// segment.
#[test]
fn fuzz_corpus() {
    write_seeds(|i, seg| {
        let mut seed = vec![(i % 8) as u8];
        seed.extend_from_slice(&i.wrapping_mul(0x9e37_79b9).to_be_bytes());
        seed.extend_from_slice(&(!i).to_be_bytes());
        seed.extend_from_slice(&seg.bytes);
        seed
    });
}

/// An IP packet around `seg` with `pseudo`'s addresses (IPv4 without
/// options, or IPv6 without extension headers), its TCP checksum filled.
fn ip_packet(pseudo: &Pseudo, seg: &[u8]) -> Vec<u8> {
    let mut seg = seg.to_vec();
    fill_check(&mut seg, pseudo);
    let mut p = match pseudo {
        Pseudo::V4(s, d) => {
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
            h[2..4].copy_from_slice(&((20 + seg.len()) as u16).to_be_bytes());
            h.extend_from_slice(s);
            h.extend_from_slice(d);
            h
        }
        Pseudo::V6(s, d) => {
            let mut h = vec![0x60, 0, 0, 0, 0, 0, 6, 64];
            h[4..6].copy_from_slice(&(seg.len() as u16).to_be_bytes());
            h.extend_from_slice(s);
            h.extend_from_slice(d);
            h
        }
    };
    p.extend_from_slice(&seg);
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// A whole packet (the back-end's forwarded segment, a replayed ACK):
    /// the segment translated as `translate` does it alone, the checksum
    /// the one from scratch, the IP header untouched; a packet cut short
    /// or not TCP is refused, unchanged.
    #[test]
    fn packet_translation_is_the_segments(
        seg in seg_strategy(),
        pseudo in pseudo_strategy(),
        dir in dir_strategy(),
        off in offsets_strategy(),
        cut in 1usize..8,
    ) {
        let pkt = ip_packet(&pseudo, &seg.bytes);
        let ip_len = pkt.len() - seg.bytes.len();
        let mut got = pkt.clone();
        let r = translate_packet(&mut got, dir, off, CsumMode::Full);
        prop_assert!(r.is_ok(), "{:?}", r);
        let mut want = pkt[ip_len..].to_vec();
        prop_assert_eq!(translate(&mut want, dir, off, CsumMode::Full), r);
        prop_assert_eq!(&got[ip_len..], &want[..]);
        prop_assert_eq!(&got[..ip_len], &pkt[..ip_len]);
        prop_assert_eq!(check_of(&got[ip_len..]), reference_checksum(&pseudo, &got[ip_len..]));
        // Cut short: the IP length disagrees.
        let mut short = pkt[..pkt.len() - cut.min(pkt.len() - ip_len)].to_vec();
        let before = short.clone();
        prop_assert_eq!(translate_packet(&mut short, dir, off, CsumMode::Full), Err(XlateError::NotTcp));
        prop_assert_eq!(&short, &before);
        // UDP: not translated.
        let mut udp = pkt.clone();
        udp[if ip_len == 20 { 9 } else { 6 }] = 17;
        let before = udp.clone();
        prop_assert_eq!(translate_packet(&mut udp, dir, off, CsumMode::Full), Err(XlateError::NotTcp));
        prop_assert_eq!(&udp, &before);
    }
}

/// An ICMP (IPv4) or ICMPv6 "too big" error from `router` to the server
/// (`pseudo`'s source: the service address) quoting the server's segment
/// `seg` to the client (cut to `quote` bytes of it, 8 at least), its
/// checksum from scratch.
fn icmp_error(pseudo: &Pseudo, router: &[u8], seg: &[u8], quote: usize) -> (Vec<u8>, usize) {
    let quoted = {
        let mut q = ip_packet(pseudo, seg);
        let ip_len = q.len() - seg.len();
        q.truncate(ip_len + quote.clamp(8, seg.len()));
        q
    };
    let v4 = matches!(pseudo, Pseudo::V4(..));
    let mut msg = if v4 {
        vec![3, 4, 0, 0, 0, 0, 5, 0xdc]
    } else {
        vec![2, 0, 0, 0, 0, 0, 5, 0x00]
    };
    msg.extend_from_slice(&quoted);
    let (server, head) = match pseudo {
        Pseudo::V4(d, _) => {
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
            h[2..4].copy_from_slice(&((20 + msg.len()) as u16).to_be_bytes());
            h.extend_from_slice(&router[..4]);
            h.extend_from_slice(d);
            (d.to_vec(), h)
        }
        Pseudo::V6(d, _) => {
            let mut h = vec![0x60, 0, 0, 0, 0, 0, 58, 64];
            h[4..6].copy_from_slice(&(msg.len() as u16).to_be_bytes());
            h.extend_from_slice(router);
            h.extend_from_slice(d);
            (d.to_vec(), h)
        }
    };
    let src = if v4 { &router[..4] } else { router };
    let check = icmp_check(v4, src, &server, &msg);
    msg[2..4].copy_from_slice(&check.to_be_bytes());
    let at = head.len();
    let mut p = head;
    p.extend_from_slice(&msg);
    (p, at)
}

/// The ICMP checksum of `msg` (its field taken as 0), from scratch: over
/// the message (ICMPv4), with the pseudo-header (ICMPv6, RFC 8200 8.1).
fn icmp_check(v4: bool, src: &[u8], dst: &[u8], msg: &[u8]) -> u16 {
    let mut bytes = Vec::new();
    if !v4 {
        bytes.extend_from_slice(src);
        bytes.extend_from_slice(dst);
        bytes.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 58]);
    }
    let mut m = msg.to_vec();
    m[2] = 0;
    m[3] = 0;
    bytes.extend_from_slice(&m);
    !common::fold(&bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// An ICMP error about the server's translated segment: the quoted seq
    /// moves back by the offset (into the back-end's space), the ICMP
    /// checksum is the one from scratch, nothing else changes; forth and
    /// back is the identity; an ICMP message that is no error is refused.
    #[test]
    fn icmp_error_quote_translated(
        seg in seg_strategy(),
        pseudo in pseudo_strategy(),
        router in any::<[u8; 16]>(),
        off in offsets_strategy(),
        quote in 8usize..80,
    ) {
        let (pkt, icmp_at) = icmp_error(&pseudo, &router, &seg.bytes, quote);
        let v4 = matches!(pseudo, Pseudo::V4(..));
        let tcp_at = icmp_at + 8 + if v4 { 20 } else { 40 };
        let mut got = pkt.clone();
        let r = translate_icmp_error(&mut got, off);
        prop_assert!(r.is_ok(), "{:?}", r);
        let (src, dst) = if v4 { (&got[12..16], &got[16..20]) } else { (&got[8..24], &got[24..40]) };
        let want_check = icmp_check(v4, src, dst, &got[icmp_at..]);
        prop_assert_eq!(u16::from_be_bytes([got[icmp_at + 2], got[icmp_at + 3]]), want_check);
        prop_assert_eq!(get32(&got, tcp_at + 4), get32(&pkt, tcp_at + 4).wrapping_add(off.seq));
        let mut want = pkt.clone();
        want[tcp_at + 4..tcp_at + 8].copy_from_slice(&got[tcp_at + 4..tcp_at + 8]);
        want[icmp_at + 2..icmp_at + 4].copy_from_slice(&got[icmp_at + 2..icmp_at + 4]);
        prop_assert_eq!(&got, &want);
        prop_assert!(translate_icmp_error(&mut got, off.inverse()).is_ok());
        prop_assert_eq!(&got, &pkt);
        // An echo request is no error: refused, unchanged.
        let mut echo = pkt.clone();
        echo[icmp_at] = if v4 { 8 } else { 128 };
        let before = echo.clone();
        prop_assert_eq!(translate_icmp_error(&mut echo, off), Err(XlateError::NotTcp));
        prop_assert_eq!(&echo, &before);
    }
}
