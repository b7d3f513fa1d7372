// SPDX-License-Identifier: GPL-2.0

//! Property tests of request parsing and validation against their definitions.

use proptest::prelude::*;
use sockgroup_logic::uapi::{
    check_len, parse_header, validate, Candidate, Fam, Refusal, F_ALL, MAX_MEMBERS, REQ2_LEN,
    REQ_LEN, STALL_MAX_MS, STALL_MIN_MS, VERSION, VERSION_2,
};

fn header(
    version: u32,
    flags: u32,
    policy: u32,
    count: u32,
    stall: u32,
    reserved: u32,
) -> [u8; REQ2_LEN] {
    let mut h = [0u8; REQ2_LEN];
    for (i, v) in [version, flags, policy, count, stall, reserved]
        .iter()
        .enumerate()
    {
        h[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    h
}

fn fam() -> impl Strategy<Value = Option<Fam>> {
    prop_oneof![
        Just(None),
        Just(Some(Fam::V4)),
        Just(Some(Fam::V6Dual)),
        Just(Some(Fam::V6Only))
    ]
}

fn candidate() -> impl Strategy<Value = Candidate> {
    (
        fam(),
        any::<bool>(),
        any::<bool>(),
        0usize..6,
        prop::option::of(0u64..3),
    )
        .prop_map(|(fam, same_net, listening, key, group)| Candidate {
            fam,
            same_net,
            listening,
            key,
            group,
        })
}

proptest! {
    #[test]
    fn header_accepts_exactly_the_valid_ones(
        version in prop_oneof![Just(VERSION), Just(VERSION_2), any::<u32>()],
        flags in prop_oneof![Just(0u32), Just(F_ALL), any::<u32>()],
        policy in prop_oneof![0u32..3, any::<u32>()],
        count in prop_oneof![0u32..70, any::<u32>()],
        stall in prop_oneof![Just(0u32), STALL_MIN_MS - 1..STALL_MAX_MS + 2, any::<u32>()],
        reserved in prop_oneof![Just(0u32), any::<u32>()],
        extra in prop_oneof![Just(0usize), 0usize..300],
    ) {
        let hlen = if version == VERSION_2 { REQ2_LEN } else { REQ_LEN };
        let optlen = hlen + 4 * (count.min(1000) as usize) + extra;
        // What the caller reads: at most the longest header, zeros after.
        let mut h = header(version, flags, policy, count, stall, reserved);
        h[optlen.min(REQ2_LEN)..].fill(0);
        let got = parse_header(optlen, &h);
        let v2_ok = optlen >= REQ2_LEN
            && reserved == 0
            && (stall == 0 || (STALL_MIN_MS..=STALL_MAX_MS).contains(&stall));
        let valid_fields = (version == VERSION || (version == VERSION_2 && v2_ok))
            && flags & !F_ALL == 0
            && policy < 2;
        let fits = (count as usize) < MAX_MEMBERS;
        match got {
            Ok(r) => {
                prop_assert!(valid_fields && fits && extra == 0);
                prop_assert_eq!(r.count, count as usize);
                prop_assert_eq!(r.flags, flags);
                prop_assert_eq!(r.header_len, hlen);
                prop_assert_eq!(r.stall_ms, if version == VERSION_2 { stall } else { 0 });
            }
            Err(Refusal::TooBig) => prop_assert!(valid_fields && !fits),
            Err(Refusal::Invalid) => prop_assert!(!valid_fields || (fits && extra != 0)),
            Err(other) => prop_assert!(false, "unexpected refusal {:?}", other),
        }
        prop_assert_eq!(check_len(optlen).is_ok(), optlen >= REQ_LEN);
    }

    #[test]
    fn validation_accepts_exactly_the_valid_sets(
        anchor in candidate(),
        listed in prop::collection::vec(candidate(), 0..6),
    ) {
        let ok = validate(&anchor, &listed).is_ok();
        let all: Vec<&Candidate> = std::iter::once(&anchor).chain(&listed).collect();
        let joins = |c: &Candidate| match (anchor.fam, c.fam) {
            (Some(a), Some(f)) => f.joins(a),
            _ => false,
        };
        let keys_unique = all.iter().enumerate().all(|(i, c)| all[..i].iter().all(|p| p.key != c.key));
        let expected = all.iter().all(|c| {
            c.fam.is_some()
                && c.same_net
                && joins(c)
                && c.listening
                && (c.group.is_none() || c.group == anchor.group)
        }) && keys_unique;
        prop_assert_eq!(ok, expected);
    }
}
