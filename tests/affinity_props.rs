// SPDX-License-Identifier: GPL-2.0

//! Property tests of the session affinity (src/dispatch/affinity.rs): the
//! identifier read from real and generated first requests, and the
//! back-end chosen by it, which only that back-end's departure moves.

mod common;

use common::{http_request, token};
use proptest::prelude::*;
use sockgroup_logic::affinity::*;
use sockgroup_logic::request::parse;
use sockgroup_logic::select::rendezvous;
use std::collections::BTreeSet;

fn ident(b: &[u8], s: Source<'_>) -> Option<Vec<u8>> {
    identifier(&parse(b), s).map(<[u8]>::to_vec)
}

#[test]
fn identifiers_of_real_clients() {
    let http = include_bytes!("captures/curl_http1.bin");
    assert_eq!(
        ident(http, Source::Cookie(b"session")),
        Some(b"abc123".to_vec())
    );
    assert_eq!(ident(http, Source::Cookie(b"nope")), None);
    assert_eq!(ident(http, Source::SessionId), None);
    // Cut short: incomplete, no identifier yet.
    assert_eq!(
        ident(&http[..http.len() - 1], Source::Cookie(b"session")),
        None
    );
    let resume = include_bytes!("captures/openssl_tls12_resume.bin");
    let id = ident(resume, Source::SessionId).unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(ident(resume, Source::Cookie(b"session")), None);
    // A first TLS 1.2 connection offers no session id.
    let fresh = include_bytes!("captures/openssl_tls12_nosni.bin");
    assert_eq!(ident(fresh, Source::SessionId), None);
    // HTTP/2 carries none.
    let h2 = include_bytes!("captures/curl_h2c.bin");
    assert_eq!(ident(h2, Source::Cookie(b"session")), None);
    // An empty cookie value is none.
    let b = http_request("/", "a", &[("SID".into(), String::new())]);
    assert_eq!(ident(&b, Source::Cookie(b"SID")), None);
}

#[test]
fn no_backend_up() {
    assert_eq!(backend_for(b"x", &[1, 2], &[]), None);
    assert_eq!(backend_for(b"x", &[], &[1, 2]), None);
    // 0 is no node, even if listed up.
    assert_eq!(backend_for(b"x", &[0], &[0]), None);
    assert_eq!(backend_for(b"x", &[0, 7], &[0, 7]), Some(7));
}

fn backends() -> impl Strategy<Value = BTreeSet<u32>> {
    prop::collection::btree_set(1u32..100, 1..16)
}

proptest! {
    /// Requests of one session, whatever else they carry, name the same
    /// identifier, so the same back-end.
    #[test]
    fn same_cookie_same_backend(
        sid in token(),
        reqs in prop::collection::vec(("/[a-z]{0,8}", "[a-z]{1,8}\\.example", prop::collection::vec((token(), token()), 0..3)), 1..6),
        bs in backends(),
    ) {
        let bs: Vec<u32> = bs.into_iter().collect();
        let mut chosen = BTreeSet::new();
        for (path, host, others) in &reqs {
            let mut cookies: Vec<(String, String)> =
                others.iter().filter(|(n, _)| n != "SID").cloned().collect();
            cookies.push(("SID".into(), sid.clone()));
            let b = http_request(path, host, &cookies);
            let id = identifier(&parse(&b), Source::Cookie(b"SID"));
            prop_assert_eq!(id, Some(sid.as_bytes()));
            chosen.insert(backend_for(id.unwrap(), &bs, &bs));
        }
        prop_assert_eq!(chosen.len(), 1);
    }

    /// The choice is the rules' rendezvous (a hash target naming these
    /// nodes), whichever node computes it, in any order of the list.
    #[test]
    fn is_the_rules_rendezvous(id in prop::collection::vec(any::<u8>(), 0..40), bs in backends(), down in prop::collection::btree_set(1u32..100, 0..5), me in 100u32..200, rot in 0usize..16) {
        let up: Vec<u32> = bs.difference(&down).copied().collect();
        let list: Vec<u32> = bs.iter().copied().collect();
        let want = rendezvous(&id, &list, me, &up).map(|i| list[i]);
        prop_assert_eq!(backend_for(&id, &list, &up), want);
        let mut turned = list.clone();
        turned.rotate_left(rot % list.len());
        prop_assert_eq!(backend_for(&id, &turned, &up), want);
    }

    /// A back-end that leaves moves only its own sessions; when it comes
    /// back, they return to it.
    #[test]
    fn departure_moves_only_its_sessions(bs in prop::collection::btree_set(1u32..100, 2..16), pick in any::<prop::sample::Index>(), ids in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..24), 1..60)) {
        let list: Vec<u32> = bs.iter().copied().collect();
        let gone = *pick.get(&list);
        let rest: Vec<u32> = list.iter().copied().filter(|&b| b != gone).collect();
        for id in &ids {
            let before = backend_for(id, &list, &list).unwrap();
            let after = backend_for(id, &list, &rest).unwrap();
            prop_assert_eq!(before != after, before == gone);
            prop_assert_ne!(after, gone);
            prop_assert_eq!(backend_for(id, &list, &list), Some(before));
        }
    }
}
