// SPDX-License-Identifier: GPL-2.0

//! Rule matching on what the request parser really reads
//! (src/cluster/request.rs, then src/cluster/select.rs): real clients'
//! first bytes (tests/captures/) and generated HTTP/1 requests.

mod common;

use common::{http_request as request, token};
use proptest::prelude::*;
use sockgroup_logic::request::parse;
use sockgroup_logic::select::*;

use MatchKind::*;

fn m<'a>(kind: MatchKind, value: &[u8], buf: &'a [u8]) -> Option<&'a [u8]> {
    match_parse(kind, value, &parse(buf))
}

#[test]
fn curl_http1() {
    let b = include_bytes!("captures/curl_http1.bin");
    assert!(m(PathPrefix, b"/api/", b).is_some());
    assert!(m(PathPrefix, b"/static/", b).is_none());
    assert!(m(Host, b"127.0.0.1", b).is_some());
    assert_eq!(m(Cookie, b"session", b), Some(&b"abc123"[..]));
    assert!(m(CookieValue, b"theme=dark", b).is_some());
    assert!(m(CookieValue, b"theme=light", b).is_none());
    assert!(m(Sni, b"127.0.0.1", b).is_none());
    assert!(m(SessionId, b"", b).is_none());
    // Cut anywhere before its end, it is incomplete: any only.
    for i in 0..b.len() {
        assert!(m(PathPrefix, b"/api/", &b[..i]).is_none(), "{i}");
        assert!(m(Any, b"", &b[..i]).is_some(), "{i}");
    }
}

#[test]
fn curl_h2c_matches_any_only() {
    let b = include_bytes!("captures/curl_h2c.bin");
    assert!(m(Any, b"", b).is_some());
    for k in [PathPrefix, Host, HostSuffix, Cookie, Sni, SessionId] {
        assert!(m(k, b"/", b).is_none(), "{k:?}");
    }
}

#[test]
fn tls_captures() {
    let b = include_bytes!("captures/openssl_tls13.bin");
    assert!(m(Sni, b"WWW.example.com", b).is_some());
    assert!(m(HostSuffix, b"example.com", b).is_none()); // Host is HTTP's
    assert_eq!(
        m(SessionId, b"", b).map(|id| id[..4].to_vec()),
        Some(vec![0xfe, 0x23, 0xca, 0x59])
    );
    assert!(m(Cookie, b"session", b).is_none());
    let b = include_bytes!("captures/openssl_tls12_nosni.bin");
    assert!(m(Sni, b"www.example.com", b).is_none());
    assert!(m(SessionId, b"", b).is_none());
    // The resuming client has a session id: the identifier its hash target
    // spreads; the same id, the same node.
    let b = include_bytes!("captures/openssl_tls12_resume.bin");
    let id = m(SessionId, b"", b).unwrap();
    let nodes = [2, 3, 4, 5];
    let first = rendezvous(id, &nodes, 1, &nodes);
    assert!(first.is_some());
    assert_eq!(rendezvous(id, &nodes, 1, &nodes), first);
}

proptest! {
    /// Session affinity (seed 004): requests of one session (the same SID
    /// cookie), whatever their path, Host and other cookies, reach the
    /// same node; the identifier is the cookie's value.
    #[test]
    fn same_session_same_node(
        sid in token(),
        paths in prop::collection::vec("/[a-z]{0,8}", 2..5),
        hosts in prop::collection::vec("[a-z]{1,8}\\.example\\.com", 2..5),
        others in prop::collection::vec((token(), token()), 0..4),
        nodes in prop::collection::btree_set(1u32..50, 1..=MAX_TARGETS),
    ) {
        let nodes: Vec<u32> = nodes.into_iter().collect();
        let mut chosen = None;
        for (i, path) in paths.iter().enumerate() {
            let mut cookies: Vec<(String, String)> =
                others.iter().filter(|(n, _)| n != "SID").cloned().collect();
            cookies.insert(i.min(cookies.len()), ("SID".into(), sid.clone()));
            let b = request(path, &hosts[i % hosts.len()], &cookies);
            let id = m(Cookie, b"SID", &b);
            prop_assert_eq!(id, Some(sid.as_bytes()));
            prop_assert!(m(HostSuffix, b"example.com", &b).is_some());
            prop_assert!(m(HostSuffix, b"ample.com", &b).is_none());
            let c = choose(TargetRef::Hash(&nodes), id.unwrap(), 1000, &nodes);
            prop_assert!(chosen.is_none() || chosen == Some(c));
            chosen = Some(c);
        }
    }

    /// A cookie-value rule matches exactly the value, and the path prefix
    /// the path, on parsed requests.
    #[test]
    fn cookie_value_and_path_on_parsed(sid in token(), other in token(), path in "/[a-z/]{0,12}", prefix in "/[a-z/]{0,4}") {
        let b = request(&path, "a.example.com", &[("SID".into(), sid.clone())]);
        let same = format!("SID={}", sid);
        let another = format!("SID={}", other);
        prop_assert!(m(CookieValue, same.as_bytes(), &b).is_some());
        prop_assert_eq!(m(CookieValue, another.as_bytes(), &b).is_some(), other == sid);
        prop_assert_eq!(m(PathPrefix, prefix.as_bytes(), &b).is_some(), path.starts_with(&prefix));
    }
}
