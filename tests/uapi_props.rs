// SPDX-License-Identifier: GPL-2.0

//! Property tests of request parsing and validation against their definitions.

use proptest::prelude::*;
use sockgroup_logic::uapi::{
    check_len, parse_header, validate, Candidate, Fam, Refusal, F_ALL, MAX_MEMBERS, REQ_LEN,
    VERSION,
};

fn header(version: u32, flags: u32, policy: u32, count: u32) -> [u8; REQ_LEN] {
    let mut h = [0u8; REQ_LEN];
    for (i, v) in [version, flags, policy, count].iter().enumerate() {
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
        version in prop_oneof![Just(VERSION), any::<u32>()],
        flags in prop_oneof![Just(0u32), Just(F_ALL), any::<u32>()],
        policy in prop_oneof![0u32..3, any::<u32>()],
        count in prop_oneof![0u32..70, any::<u32>()],
        extra in prop_oneof![Just(0usize), 0usize..300],
    ) {
        let optlen = REQ_LEN + 4 * (count.min(1000) as usize) + extra;
        let got = parse_header(optlen, &header(version, flags, policy, count));
        let valid_fields = version == VERSION && flags & !F_ALL == 0 && policy < 2;
        let fits = (count as usize) < MAX_MEMBERS;
        match got {
            Ok(r) => {
                prop_assert!(valid_fields && fits && extra == 0);
                prop_assert_eq!(r.count, count as usize);
                prop_assert_eq!(r.flags, flags);
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
