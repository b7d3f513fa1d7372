// SPDX-License-Identifier: GPL-2.0

//! Property tests of rule matching and the rendezvous hash
//! (src/cluster/select.rs) against their definitions.

use proptest::prelude::*;
use sockgroup_logic::request::{parse, Kind, Parse};
use sockgroup_logic::select::*;
use std::collections::BTreeSet;

/// Request fields chosen by the test.
#[derive(Clone, Debug, Default)]
struct Fake {
    kind: Option<Kind>,
    path: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
    cookies: Vec<(Vec<u8>, Vec<u8>)>,
    sni: Option<Vec<u8>>,
    session_id: Option<Vec<u8>>,
}

impl<'a> Fields<'a> for &'a Fake {
    fn kind(&self) -> Kind {
        self.kind.unwrap_or(Kind::Http1)
    }
    fn path(&self) -> Option<&'a [u8]> {
        let s: &'a Fake = self;
        s.path.as_deref()
    }
    fn host(&self) -> Option<&'a [u8]> {
        let s: &'a Fake = self;
        s.host.as_deref()
    }
    fn cookie(&self, name: &[u8]) -> Option<&'a [u8]> {
        let s: &'a Fake = self;
        s.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
    fn sni(&self) -> Option<&'a [u8]> {
        let s: &'a Fake = self;
        s.sni.as_deref()
    }
    fn session_id(&self) -> Option<&'a [u8]> {
        let s: &'a Fake = self;
        s.session_id.as_deref()
    }
}

fn m<'a>(kind: MatchKind, value: &[u8], f: &'a Fake) -> Option<&'a [u8]> {
    match_fields(kind, value, &f)
}

fn http(host: &[u8]) -> Fake {
    Fake {
        host: Some(host.to_vec()),
        ..Fake::default()
    }
}

/// The reference's own definition: the highest weight wins, ties to the
/// lower node (the first index for duplicates).
fn reference(ident: &[u8], targets: &[u32], self_id: u32, up: &[u32]) -> Option<usize> {
    let h = ident_hash(ident);
    let mut cands: Vec<(u64, std::cmp::Reverse<u32>, std::cmp::Reverse<usize>)> = targets
        .iter()
        .enumerate()
        .map(|(i, &t)| (resolve(t, self_id), i))
        .filter(|(n, _)| *n == self_id || up.contains(n))
        .map(|(n, i)| (weight(h, n), std::cmp::Reverse(n), std::cmp::Reverse(i)))
        .collect();
    cands.sort();
    cands.last().map(|c| (c.2).0)
}

#[test]
fn siphash_reference_vectors() {
    // The paper's key 00..0f and messages 00..(n-1) (vectors.h of the
    // reference implementation), and the paper's example (n = 15).
    let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
    let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
    let msg: Vec<u8> = (0u8..64).collect();
    assert_eq!(siphash24(k0, k1, &msg[..0]), 0x726f_db47_dd0e_0e31);
    assert_eq!(siphash24(k0, k1, &msg[..1]), 0x74f8_39c5_93dc_67fd);
    assert_eq!(siphash24(k0, k1, &msg[..8]), 0x93f5_f579_9a93_2462);
    assert_eq!(siphash24(k0, k1, &msg[..15]), 0xa129_ca61_49be_45e5);
}

#[test]
fn fixed_key_and_weights_are_stable() {
    // Every node of a cluster must compute these: a change here moves
    // sessions between nodes (README, "Rules").
    assert_eq!(HASH_KEY.0.to_le_bytes(), *b"sockgrou");
    assert_eq!(HASH_KEY.1.to_le_bytes(), *b"p-rendez");
    let h = ident_hash(b"session-42");
    assert_eq!(h, siphash24(HASH_KEY.0, HASH_KEY.1, b"session-42"));
    let mut b = h.to_le_bytes().to_vec();
    b.extend_from_slice(&7u32.to_le_bytes());
    assert_eq!(weight(h, 7), siphash24(HASH_KEY.0, HASH_KEY.1, &b));
}

#[test]
fn host_suffix_is_label_bounded() {
    let f = |h: &[u8]| host_suffix_matches(h, b"example.com");
    assert!(f(b"example.com"));
    assert!(f(b"a.example.com"));
    assert!(f(b"A.b.EXAMPLE.com"));
    assert!(f(b"a.example.com."));
    assert!(!f(b"badexample.com"));
    assert!(!f(b"example.com.evil"));
    assert!(!f(b"xample.com"));
    assert!(!f(b".example.co"));
    assert!(!f(b""));
}

#[test]
fn unparsed_requests_match_any_only() {
    let kinds = [
        MatchKind::PathPrefix,
        MatchKind::Host,
        MatchKind::HostSuffix,
        MatchKind::Cookie,
        MatchKind::CookieValue,
        MatchKind::Sni,
        MatchKind::SessionId,
    ];
    for p in [
        Parse::Malformed,
        Parse::Incomplete,
        parse(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ] {
        assert_eq!(match_parse(MatchKind::Any, b"", &p), Some(&b""[..]));
        for k in kinds {
            assert_eq!(match_parse(k, b"/", &p), None, "{k:?}");
            assert_eq!(match_parse(k, b"a=b", &p), None, "{k:?}");
        }
    }
}

#[test]
fn value_checks() {
    use MatchKind::*;
    use ValueError::*;
    assert_eq!(check_value(Any, None), Ok(()));
    assert_eq!(check_value(Any, Some(b"x")), Err(Forbidden));
    assert_eq!(check_value(SessionId, None), Ok(()));
    assert_eq!(check_value(SessionId, Some(b"")), Err(Forbidden));
    for k in [PathPrefix, Host, HostSuffix, Cookie, CookieValue, Sni] {
        assert_eq!(check_value(k, None), Err(Missing), "{k:?}");
        assert_eq!(check_value(k, Some(b"")), Err(Missing), "{k:?}");
    }
    assert_eq!(check_value(PathPrefix, Some(b"/api/")), Ok(()));
    assert_eq!(check_value(PathPrefix, Some(b"api")), Err(PathNotAbsolute));
    assert_eq!(check_value(PathPrefix, Some(&[b'/'; 256])), Err(TooLong));
    assert_eq!(check_value(PathPrefix, Some(&[b'/'; 255])), Ok(()));
    assert_eq!(check_value(HostSuffix, Some(b"example.com")), Ok(()));
    assert_eq!(check_value(HostSuffix, Some(b".example.com")), Err(BadHost));
    assert_eq!(check_value(Host, Some(b"a..b")), Err(BadHost));
    assert_eq!(check_value(Host, Some(b"a:80")), Err(BadHost));
    assert_eq!(check_value(Sni, Some(b"a b")), Err(BadHost));
    assert_eq!(check_value(Cookie, Some(b"SID")), Ok(()));
    assert_eq!(check_value(Cookie, Some(b"S=ID")), Err(BadCookieName));
    assert_eq!(check_value(CookieValue, Some(b"SID=abc")), Ok(()));
    assert_eq!(check_value(CookieValue, Some(b"SID=")), Ok(()));
    assert_eq!(check_value(CookieValue, Some(b"SID")), Err(NotNameValue));
    assert_eq!(check_value(CookieValue, Some(b"=abc")), Err(BadCookieName));
    assert_eq!(
        check_value(CookieValue, Some(b"SID=a;b")),
        Err(BadCookieValue)
    );
    assert_eq!(MatchKind::from_u32(8), None);
    for v in 0..8 {
        assert_eq!(MatchKind::from_u32(v).map(|k| k as u32), Some(v));
    }
}

#[test]
fn matches_by_kind() {
    use MatchKind::*;
    let mut f = http(b"Shop.Example.com");
    f.path = Some(b"/api/v1?x=1".to_vec());
    f.cookies = vec![
        (b"SID".to_vec(), b"abc".to_vec()),
        (b"empty".to_vec(), b"".to_vec()),
    ];
    assert_eq!(m(Any, b"", &f), Some(&b""[..]));
    assert!(m(PathPrefix, b"/api/", &f).is_some());
    assert!(m(PathPrefix, b"/API/", &f).is_none());
    assert!(m(Host, b"shop.example.COM", &f).is_some());
    assert!(m(Host, b"example.com", &f).is_none());
    assert!(m(HostSuffix, b"example.com", &f).is_some());
    assert!(m(HostSuffix, b"ample.com", &f).is_none());
    assert_eq!(m(Cookie, b"SID", &f), Some(&b"abc"[..]));
    assert_eq!(m(Cookie, b"sid", &f), None);
    assert_eq!(m(Cookie, b"empty", &f), None);
    assert_eq!(m(CookieValue, b"SID=abc", &f), Some(&b""[..]));
    assert_eq!(m(CookieValue, b"SID=abcd", &f), None);
    assert_eq!(m(CookieValue, b"empty=", &f), Some(&b""[..]));
    // TLS fields do not match an HTTP/1 request, and the reverse.
    f.sni = Some(b"shop.example.com".to_vec());
    f.session_id = Some(vec![1, 2, 3]);
    assert_eq!(m(Sni, b"shop.example.com", &f), None);
    assert_eq!(m(SessionId, b"", &f), None);
    f.kind = Some(Kind::Tls);
    assert!(m(Sni, b"SHOP.example.com", &f).is_some());
    assert_eq!(m(SessionId, b"", &f), Some(&[1u8, 2, 3][..]));
    assert!(m(PathPrefix, b"/api/", &f).is_none());
    assert!(m(Host, b"shop.example.com", &f).is_none());
    assert!(m(Cookie, b"SID", &f).is_none());
    f.session_id = Some(vec![]);
    assert_eq!(m(SessionId, b"", &f), None);
}

fn label() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(b"abcxyzAB09-".to_vec()), 1..6)
}

fn host_of(labels: &[Vec<u8>]) -> Vec<u8> {
    labels.join(&b'.')
}

fn targets_and_up() -> impl Strategy<Value = (Vec<u32>, Vec<u32>)> {
    (
        prop::collection::btree_set(1u32..40, 1..=MAX_TARGETS),
        prop::collection::btree_set(1u32..40, 0..40),
    )
        .prop_map(|(t, up)| (t.into_iter().collect(), up.into_iter().collect()))
}

proptest! {
    #[test]
    fn siphash_is_std_siphasher(k0: u64, k1: u64, data in prop::collection::vec(any::<u8>(), 0..100)) {
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
        std::hash::Hasher::write(&mut h, &data);
        prop_assert_eq!(siphash24(k0, k1, &data), std::hash::Hasher::finish(&h));
    }

    #[test]
    fn suffix_matches_iff_whole_labels(labels in prop::collection::vec(label(), 1..5), cut in 0usize..5, junk in label()) {
        let host = host_of(&labels);
        let cut = cut % labels.len();
        let suffix = host_of(&labels[cut..]);
        prop_assert!(host_suffix_matches(&host, &suffix));
        prop_assert!(host_suffix_matches(&host.to_ascii_uppercase(), &suffix));
        // A label glued to the front of the suffix's first label: no match
        // unless the host really has such a label boundary.
        let mut glued = junk.clone();
        glued.extend_from_slice(&suffix);
        let f = http(&glued);
        let label_bounded = glued.len() == suffix.len()
            || glued[glued.len() - suffix.len() - 1] == b'.';
        prop_assert_eq!(m(MatchKind::HostSuffix, &suffix, &f).is_some(), label_bounded);
        // A host matches a suffix longer than itself never.
        let mut longer = b"a.".to_vec();
        longer.extend_from_slice(&host);
        prop_assert!(!host_suffix_matches(&host, &longer));
    }

    #[test]
    fn path_prefix_is_starts_with(path in prop::collection::vec(any::<u8>(), 0..40), prefix in prop::collection::vec(any::<u8>(), 1..10)) {
        let f = Fake { path: Some(path.clone()), ..Fake::default() };
        prop_assert_eq!(m(MatchKind::PathPrefix, &prefix, &f).is_some(), path.starts_with(&prefix));
    }

    #[test]
    fn hash_choice_is_rendezvous(ident in prop::collection::vec(any::<u8>(), 0..40), (targets, up) in targets_and_up(), self_id in 1u32..40) {
        let want = match rendezvous(&ident, &targets, self_id, &up) {
            Some(i) => Choice::Node { index: i, node: targets[i] },
            None => Choice::NoneUp,
        };
        prop_assert_eq!(choose(TargetRef::Hash(&targets), &ident, self_id, &up), want);
    }

    #[test]
    fn rendezvous_is_its_definition(ident in prop::collection::vec(any::<u8>(), 0..40), (targets, up) in targets_and_up(), self_id in 1u32..40) {
        let got = rendezvous(&ident, &targets, self_id, &up);
        prop_assert_eq!(got, reference(&ident, &targets, self_id, &up));
        // Deterministic: the same inputs, the same choice.
        prop_assert_eq!(got, rendezvous(&ident, &targets, self_id, &up));
        // The choice is up and among the targets; none only if no target is up.
        let is_up = |t: u32| t == self_id || up.contains(&t);
        match got {
            Some(i) => prop_assert!(is_up(targets[i])),
            None => prop_assert!(targets.iter().all(|&t| !is_up(t))),
        }
    }

    #[test]
    fn target_zero_is_this_node(ident in prop::collection::vec(any::<u8>(), 0..40), (targets, up) in targets_and_up(), pick in any::<prop::sample::Index>()) {
        // Naming this node as 0 or by its id chooses the same node.
        let self_id = targets[pick.index(targets.len())];
        let zeroed: Vec<u32> = targets.iter().map(|&t| if t == self_id { 0 } else { t }).collect();
        prop_assert_eq!(rendezvous(&ident, &targets, self_id, &up), rendezvous(&ident, &zeroed, self_id, &up));
    }

    #[test]
    fn order_of_targets_does_not_matter(ident in prop::collection::vec(any::<u8>(), 0..40), (targets, up) in targets_and_up(), seed: u64) {
        let mut shuffled = targets.clone();
        // A deterministic permutation from the seed.
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (seed.wrapping_mul(i as u64 + 1) >> 7) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        let a = rendezvous(&ident, &targets, 1000, &up).map(|i| targets[i]);
        let b = rendezvous(&ident, &shuffled, 1000, &up).map(|i| shuffled[i]);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn removal_moves_only_the_removed_share(targets in prop::collection::btree_set(1u32..100, 2..=MAX_TARGETS), pick in any::<prop::sample::Index>(), ids in prop::collection::vec(any::<u64>(), 50..200)) {
        let targets: Vec<u32> = targets.into_iter().collect();
        let gone = targets[pick.index(targets.len())];
        let up_all = targets.clone();
        let up_less: Vec<u32> = targets.iter().copied().filter(|&t| t != gone).collect();
        for id in ids {
            let id = id.to_le_bytes();
            let before = targets[rendezvous(&id, &targets, 1000, &up_all).unwrap()];
            let after = targets[rendezvous(&id, &targets, 1000, &up_less).unwrap()];
            if before != gone {
                // Identifiers of the nodes that stay do not move.
                prop_assert_eq!(before, after);
            } else {
                prop_assert!(after != gone);
            }
            // And it comes back when the node does.
            prop_assert_eq!(targets[rendezvous(&id, &targets, 1000, &up_all).unwrap()], before);
        }
    }

    #[test]
    fn adding_a_node_takes_only_for_itself(targets in prop::collection::btree_set(1u32..100, 1..MAX_TARGETS), new in 100u32..200, ids in prop::collection::vec(any::<u64>(), 50..200)) {
        let old: Vec<u32> = targets.into_iter().collect();
        let mut grown = old.clone();
        grown.push(new);
        let up: Vec<u32> = grown.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
        for id in ids {
            let id = id.to_le_bytes();
            let before = old[rendezvous(&id, &old, 1000, &up).unwrap()];
            let after = grown[rendezvous(&id, &grown, 1000, &up).unwrap()];
            prop_assert!(after == before || after == new);
        }
    }

    #[test]
    fn unparsed_matches_any_only(kind in 0u32..8, value in prop::collection::vec(any::<u8>(), 0..20), buf in prop::collection::vec(any::<u8>(), 0..64)) {
        let kind = MatchKind::from_u32(kind).unwrap();
        let p = parse(&buf);
        let complete_not_h2 = matches!(&p, Parse::Complete(r) if r.kind() != Kind::Http2);
        if !complete_not_h2 {
            prop_assert_eq!(match_parse(kind, &value, &p).is_some(), kind == MatchKind::Any);
        }
    }
}

#[test]
fn choose_by_target() {
    // Node 5 is this node; 2 and 3 are up, 4 is down.
    let up = [2, 3, 5];
    assert_eq!(
        choose(TargetRef::Local, b"", 5, &up),
        Choice::Node { index: 0, node: 5 }
    );
    assert_eq!(
        choose(TargetRef::Peer(0), b"", 5, &up),
        Choice::Node { index: 0, node: 5 }
    );
    assert_eq!(
        choose(TargetRef::Peer(3), b"", 5, &up),
        Choice::Node { index: 0, node: 3 }
    );
    assert_eq!(choose(TargetRef::Peer(4), b"", 5, &up), Choice::NoneUp);
    // This node counts as up even when `up` does not list it.
    assert_eq!(
        choose(TargetRef::Peer(5), b"", 5, &[]),
        Choice::Node { index: 0, node: 5 }
    );
    assert_eq!(
        choose(TargetRef::Hash(&[4, 6]), b"x", 5, &up),
        Choice::NoneUp
    );
    assert_eq!(
        choose(TargetRef::Hash(&[4, 3]), b"x", 5, &up),
        Choice::Node { index: 1, node: 3 }
    );
    assert_eq!(
        choose(TargetRef::Hash(&[4, 0]), b"x", 5, &[]),
        Choice::Node { index: 1, node: 5 }
    );
}

#[test]
fn distribution_is_roughly_even() {
    // 20000 identifiers over 8 nodes: each gets its 1/8 within 10%
    // (the standard deviation of a share is about 2.3% of it).
    let targets: Vec<u32> = (1..=8).collect();
    let mut counts = [0u32; 8];
    for i in 0u32..20_000 {
        let id = format!("session-{i}");
        counts[rendezvous(id.as_bytes(), &targets, 1000, &targets).unwrap()] += 1;
    }
    for c in counts {
        assert!((2250..=2750).contains(&c), "{counts:?}");
    }
    // With one node down its share spreads over all the others.
    let up: Vec<u32> = (2..=8).collect();
    let mut moved = [0u32; 8];
    for i in 0u32..20_000 {
        let id = format!("session-{i}");
        let before = rendezvous(id.as_bytes(), &targets, 1000, &targets).unwrap();
        if before == 0 {
            moved[rendezvous(id.as_bytes(), &targets, 1000, &up).unwrap()] += 1;
        }
    }
    assert_eq!(moved[0], 0);
    for &c in &moved[1..] {
        assert!(c > counts[0] / 7 / 2, "{moved:?}");
    }
}
