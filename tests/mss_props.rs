// SPDX-License-Identifier: GPL-2.0

//! Property tests of the SYN-ACK MSS clamp (src/cluster/mss.rs): the
//! incrementally updated checksum equals one computed from scratch (IPv4
//! and IPv6, options at odd offsets), a pseudo-header-only field is left
//! as it is and the device's sum is still right, exactly the MSS options
//! change (to the limit, never up), and a malformed option list or MSS
//! option is refused with the header untouched.

mod common;

use common::tcp::*;
use proptest::prelude::*;
use sockgroup_logic::encap::OVERHEAD_V4;
use sockgroup_logic::mss::*;
use sockgroup_logic::xlate::{pseudo_partial, CsumMode, Options, XlateError, OPT_MSS};

/// Where the generated segment's MSS options' values are.
fn mss_sites(seg: &Seg) -> Vec<(usize, u16)> {
    let mut at = 20;
    let mut v = Vec::new();
    for o in &seg.opts {
        if let GenOpt::Mss(m) = o {
            v.push((at + 2, *m));
        }
        at += o.bytes().len();
    }
    v
}

/// The segment's bytes after a clamp to `max`, by the model.
fn model(seg: &Seg, max: u16) -> Vec<u8> {
    let mut b = seg.bytes.clone();
    for (at, m) in mss_sites(seg) {
        b[at..at + 2].copy_from_slice(&m.min(max).to_be_bytes());
    }
    b
}

fn without_check(b: &[u8]) -> Vec<u8> {
    let mut b = b.to_vec();
    b[16] = 0;
    b[17] = 0;
    b
}

fn max_strategy() -> impl Strategy<Value = u16> {
    prop_oneof![any::<u16>(), 88u16..1500, Just(0), Just(u16::MAX)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn full_checksum_equals_scratch_and_only_mss_changes(
        seg in seg_strategy(),
        pseudo in pseudo_strategy(),
        max in max_strategy(),
    ) {
        let mut b = seg.bytes.clone();
        fill_check(&mut b, &pseudo);
        let r = clamp(&mut b, max, CsumMode::Full).unwrap();
        prop_assert_eq!(check_of(&b), reference_checksum(&pseudo, &b));
        prop_assert_eq!(without_check(&b), without_check(&model(&seg, max)));
        let sites = mss_sites(&seg);
        match sites.first() {
            None => prop_assert_eq!(r, Clamp::NoOption),
            Some(&(_, m)) if m <= max => prop_assert_eq!(r, Clamp::Within(m)),
            Some(&(_, m)) => prop_assert_eq!(r, Clamp::Lowered { from: m, to: max }),
        }
    }

    #[test]
    fn partial_field_untouched_and_device_sum_equals_scratch(
        seg in seg_strategy(),
        pseudo in pseudo_strategy(),
        max in max_strategy(),
    ) {
        let mut b = seg.bytes.clone();
        let partial = pseudo_partial(&pseudo, b.len() as u32);
        set_check(&mut b, partial);
        clamp(&mut b, max, CsumMode::PseudoOnly).unwrap();
        prop_assert_eq!(check_of(&b), partial);
        prop_assert_eq!(finish_partial(&b), reference_checksum(&pseudo, &b));
        prop_assert_eq!(without_check(&b), without_check(&model(&seg, max)));
    }

    #[test]
    fn clamping_twice_changes_nothing_more(seg in seg_strategy(), max in max_strategy()) {
        let mut b = seg.bytes.clone();
        clamp(&mut b, max, CsumMode::Full).unwrap();
        let once = b.clone();
        let r = clamp(&mut b, max, CsumMode::Full).unwrap();
        prop_assert_eq!(&b, &once);
        let lowered = matches!(r, Clamp::Lowered { .. });
        prop_assert!(!lowered);
    }

    #[test]
    fn malformed_options_are_refused_untouched(
        opts in raw_options(&[0, 1, 2, 3, 4, 5, 6, 8, 10], 3),
        doff_err in 0u8..4,
        pseudo in pseudo_strategy(),
        max in max_strategy(),
    ) {
        let mut b = raw_segment(&opts, 0x12, doff_err, &[]);
        fill_check(&mut b, &pseudo);
        let before = b.clone();
        let walk_ok = Options::new(&before).and_then(|o| o.check()).is_ok();
        let mss_ok = Options::new(&before)
            .map(|it| it.flatten().all(|o| o.kind != OPT_MSS || o.len == OPT_MSS_LEN))
            .unwrap_or(false);
        let r = clamp(&mut b, max, CsumMode::Full);
        prop_assert_eq!(r.is_ok(), walk_ok && mss_ok);
        if r.is_err() {
            prop_assert_eq!(&b, &before);
        } else {
            prop_assert_eq!(check_of(&b), reference_checksum(&pseudo, &b));
        }
    }

    #[test]
    fn any_bytes_never_panic(mut b in prop::collection::vec(any::<u8>(), 0..80), max in any::<u16>()) {
        let before = b.clone();
        if clamp(&mut b, max, CsumMode::Full).is_err() {
            prop_assert_eq!(b, before);
        }
    }

    #[test]
    fn forwarded_mss_leaves_room_for_the_overhead(mtu in any::<u32>(), v6 in any::<bool>()) {
        let m = u32::from(forwarded_mss(mtu, v6));
        let ip = if v6 { 40 } else { 20 };
        prop_assert!(m >= 88);
        if m > 88 {
            prop_assert!(m + 20 + ip + OVERHEAD_V4 as u32 <= mtu);
        }
        if mtu >= 88 + 20 + ip + OVERHEAD_V4 as u32 && mtu < 65535 + 20 + ip + OVERHEAD_V4 as u32 {
            prop_assert_eq!(m + 20 + ip + OVERHEAD_V4 as u32, mtu);
        }
    }
}

#[test]
fn a_linux_syn_ack_at_mtu_1500() {
    // MSS 1460, SACK-permitted and timestamps, window scale: as
    // `tcp_options_write` lays a SYN-ACK's options out.
    let mut b = vec![
        0x1f, 0x90, 0xc3, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, 0xa0, 0x12, 0xff, 0xff, 0, 0, 0, 0, 2, 4,
        0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7,
    ];
    let pseudo = sockgroup_logic::xlate::Pseudo::V4([10, 0, 0, 1], [10, 0, 0, 2]);
    fill_check(&mut b, &pseudo);
    let max = forwarded_mss(1500, false);
    assert_eq!(max, 1500 - 108 - 40);
    assert_eq!(
        clamp(&mut b, max, CsumMode::Full),
        Ok(Clamp::Lowered {
            from: 1460,
            to: 1352
        })
    );
    assert_eq!(&b[22..24], &1352u16.to_be_bytes());
    assert_eq!(check_of(&b), reference_checksum(&pseudo, &b));
    assert_eq!(forwarded_mss(1500, true), 1332);
    assert_eq!(forwarded_mss(0, false), 88);
}

#[test]
fn an_mss_option_of_another_length_is_refused() {
    let mut b = vec![0u8; 20];
    b[12] = 6 << 4;
    b.extend_from_slice(&[2, 3, 5, 1]);
    let before = b.clone();
    assert_eq!(
        clamp(&mut b, 100, CsumMode::Full),
        Err(XlateError::BadOptionLength(OPT_MSS))
    );
    assert_eq!(b, before);
}

/// Writes seeds for the `mss` fuzz target (README, "Fuzzing"): 2 bytes of
/// limit and 1 of field kind and family, then a generated segment.
#[test]
fn fuzz_corpus() {
    write_seeds(|i, seg| {
        let mut seed = (1000 + 7 * i as u16).to_be_bytes().to_vec();
        seed.push((i % 4) as u8);
        seed.extend_from_slice(&seg.bytes);
        seed
    });
}
