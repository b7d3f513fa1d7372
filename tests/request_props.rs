// SPDX-License-Identifier: GPL-2.0

//! Property and example tests of the request parser
//! (src/cluster/request.rs): generated HTTP/1 requests and TLS
//! ClientHellos read back to what was generated, on every split; arbitrary
//! and mutated bytes; the malformed cases the parser documents; and the
//! first bytes of real clients (tests/captures/, made by capture.py there).

use proptest::prelude::*;
use sockgroup_logic::request::*;

fn complete(buf: &[u8]) -> Request<'_> {
    match parse(buf) {
        Parse::Complete(r) => r,
        other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
    }
}

/// What a parse decided, without the input (two inputs that decide the
/// same compare equal).
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Complete {
        kind: Kind,
        header_len: usize,
        method: Option<Vec<u8>>,
        path: Option<Vec<u8>>,
        host: Option<Vec<u8>>,
        cookies: Vec<Option<Vec<u8>>>,
        sni: Option<Vec<u8>>,
        session_id: Option<Vec<u8>>,
        ticket: bool,
    },
    Incomplete,
    Malformed,
}

fn outcome(p: &Parse<'_>) -> Outcome {
    let own = |v: Option<&[u8]>| v.map(<[u8]>::to_vec);
    match p {
        Parse::Complete(r) => Outcome::Complete {
            kind: r.kind(),
            header_len: r.header_len(),
            method: own(r.method()),
            path: own(r.path()),
            host: own(r.host()),
            cookies: [&b"a"[..], b"b", b"c", b"session"]
                .iter()
                .map(|n| own(r.cookie(n)))
                .collect(),
            sni: own(r.sni()),
            session_id: own(r.session_id()),
            ticket: r.has_ticket(),
        },
        Parse::Incomplete => Outcome::Incomplete,
        Parse::Malformed => Outcome::Malformed,
    }
}

/// Every proper prefix of `buf[..head]` is Incomplete.
fn prefixes_incomplete(buf: &[u8], head: usize) -> Result<(), TestCaseError> {
    for i in 0..head {
        prop_assert_eq!(parse(&buf[..i]), Parse::Incomplete, "prefix {}", i);
    }
    Ok(())
}

/// Once a prefix is Complete or Malformed, every longer input says the same.
fn outcome_is_final(buf: &[u8]) -> Result<(), TestCaseError> {
    let mut decided: Option<Outcome> = None;
    for i in 0..=buf.len() {
        let p = parse(&buf[..i]);
        if let Parse::Complete(r) = p {
            prop_assert!(r.header_len() <= i);
        }
        let o = outcome(&p);
        match &decided {
            Some(d) => prop_assert_eq!(&o, d, "prefix {} changed a decision", i),
            None if o != Outcome::Incomplete => decided = Some(o),
            None => {}
        }
    }
    Ok(())
}

// --- HTTP/1 ---

#[derive(Debug, Clone)]
struct Http1 {
    bytes: Vec<u8>,
    head: usize,
    method: Vec<u8>,
    path: Vec<u8>,
    host: Option<Vec<u8>>,
    /// (name, value) of every cookie pair, in header order.
    cookies: Vec<(Vec<u8>, Vec<u8>)>,
}

fn host_strategy() -> impl Strategy<Value = (String, String)> {
    // (as written in a Host header or authority, as host() returns it)
    prop_oneof![
        "[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?".prop_map(|h| (h.clone(), h)),
        (any::<[u8; 4]>()).prop_map(|a| {
            let h = format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
            (h.clone(), h)
        }),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| {
            let h = format!("{a:x}::{b:x}");
            (format!("[{h}]"), h)
        }),
        Just(("[::1]".to_string(), "::1".to_string())),
    ]
}

prop_compose! {
    fn http1_strategy()(
        method in "[A-Z]{1,8}".prop_filter("not CONNECT", |m| m != "CONNECT"),
        path in "/[a-zA-Z0-9._~%/-]{0,30}(\\?[a-zA-Z0-9=&%]{0,20})?",
        (host_text, host) in host_strategy(),
        port in prop::option::of(any::<u16>()),
        absolute in any::<bool>(),
        (other_host_text, _) in host_strategy(),
        minor in 0u8..2,
        with_host in any::<bool>(),
        host_name in prop::sample::select(vec!["Host", "host", "HOST", "hOsT"]),
        others in prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,12}", "[ -~]{0,30}"), 0..8),
        cookie_headers in prop::collection::vec(prop::collection::vec(("[a-z]{1,3}", "[A-Za-z0-9\"]{0,8}"), 1..4), 0..4),
        cookie_name in prop::sample::select(vec!["Cookie", "cookie", "COOKIE"]),
        positions in prop::collection::vec(any::<prop::sample::Index>(), 5),
        ows in prop::sample::select(vec!["", " ", "\t", " \t "]),
        crlf in any::<bool>(),
        leading in 0usize..3,
        body in prop::collection::vec(any::<u8>(), 0..40),
    ) -> Http1 {
        let eol = if crlf { "\r\n" } else { "\n" };
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let target = if absolute {
            format!("http://{host_text}{port}{path}")
        } else {
            path.clone()
        };
        let mut lines: Vec<String> = others
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("host") && !n.eq_ignore_ascii_case("cookie"))
            .map(|(n, v)| format!("{n}:{ows}{v}"))
            .collect();
        let mut insert = |line: String, i: usize| {
            let at = positions[i % positions.len()].index(lines.len() + 1);
            lines.insert(at, line);
        };
        // HTTP/1.1 needs its Host; with the absolute form the header may
        // name another host: the target's wins.
        let host_header = minor == 1 || with_host;
        if host_header {
            let h = if absolute { other_host_text } else { format!("{host_text}{port}") };
            insert(format!("{host_name}:{ows}{h}{ows}"), 0);
        }
        for (i, pairs) in cookie_headers.iter().enumerate() {
            let v: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
            insert(format!("{cookie_name}:{ows}{}{ows}", v.join("; ")), i + 1);
        }
        let mut cookies = Vec::new();
        for line in &lines {
            if let Some(v) = line.strip_prefix(cookie_name).and_then(|l| l.strip_prefix(':')) {
                for pair in v.split(';') {
                    let (n, v) = pair.split_once('=').unwrap();
                    cookies.push((n.trim().as_bytes().to_vec(), v.trim().as_bytes().to_vec()));
                }
            }
        }
        let mut text = eol.repeat(leading);
        text += &format!("{method} {target} HTTP/1.{minor}{eol}");
        for l in &lines {
            text += l;
            text += eol;
        }
        text += eol;
        let head = text.len();
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&body);
        Http1 {
            bytes,
            head,
            method: method.into_bytes(),
            path: if absolute && path.is_empty() { b"/".to_vec() } else { path.into_bytes() },
            host: (absolute || host_header).then(|| host.into_bytes()),
            cookies,
        }
    }
}

fn check_http1(r: &Request<'_>, c: &Http1) -> Result<(), TestCaseError> {
    prop_assert_eq!(r.kind(), Kind::Http1);
    prop_assert_eq!(r.header_len(), c.head);
    prop_assert_eq!(r.method(), Some(&c.method[..]));
    prop_assert_eq!(r.path(), Some(&c.path[..]));
    prop_assert_eq!(r.host(), c.host.as_deref());
    for (name, _) in &c.cookies {
        let want = c
            .cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| &v[..]);
        prop_assert_eq!(r.cookie(name), want);
    }
    prop_assert_eq!(r.cookie(b"not-sent"), None);
    prop_assert_eq!(
        (r.sni(), r.session_id(), r.has_ticket()),
        (None, None, false)
    );
    Ok(())
}

// --- TLS ---

#[derive(Debug, Clone)]
struct Hello {
    bytes: Vec<u8>,
    sni: Option<Vec<u8>>,
    sid: Option<Vec<u8>>,
    ticket: bool,
}

/// A ClientHello handshake message; with the offsets in it of the session
/// id and the host name.
fn client_hello(
    sid: &[u8],
    sni: Option<&[u8]>,
    ticket: Option<&[u8]>,
    others: &[(u16, Vec<u8>)],
    sni_at: usize,
    no_extensions: bool,
) -> (Vec<u8>, usize, Option<usize>) {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(sid.len() as u8);
    let sid_at = 4 + body.len();
    body.extend_from_slice(sid);
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02, 1, 0]);
    let mut exts: Vec<(u16, Vec<u8>)> = others.to_vec();
    let mut sni_pos = None;
    if let Some(name) = sni {
        let mut d = Vec::new();
        d.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        d.push(0);
        d.extend_from_slice(&(name.len() as u16).to_be_bytes());
        d.extend_from_slice(name);
        sni_pos = Some(sni_at.min(exts.len()));
        exts.insert(sni_pos.unwrap(), (0, d));
    }
    if let Some(t) = ticket {
        exts.push((35, t.to_vec()));
    }
    let mut sni_off = None;
    if !(no_extensions && exts.is_empty()) {
        let total: usize = exts.iter().map(|(_, d)| 4 + d.len()).sum();
        body.extend_from_slice(&(total as u16).to_be_bytes());
        for (i, (ty, d)) in exts.iter().enumerate() {
            body.extend_from_slice(&ty.to_be_bytes());
            body.extend_from_slice(&(d.len() as u16).to_be_bytes());
            if Some(i) == sni_pos {
                sni_off = Some(4 + body.len() + 5);
            }
            body.extend_from_slice(d);
        }
    }
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    (hs, sid_at, sni_off)
}

/// `hs` in TLS records, cut at `cuts` (offsets into `hs`).
fn records(hs: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bounds: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < hs.len())
        .collect();
    bounds.push(0);
    bounds.push(hs.len());
    bounds.sort_unstable();
    bounds.dedup();
    for (i, w) in bounds.windows(2).enumerate() {
        out.extend_from_slice(&[22, 3, if i == 0 { 1 } else { 3 }]);
        out.extend_from_slice(&((w[1] - w[0]) as u16).to_be_bytes());
        out.extend_from_slice(&hs[w[0]..w[1]]);
    }
    out
}

/// Whether `at..at + len` of the handshake lies in one record.
fn in_one_record(at: usize, len: usize, cuts: &[usize]) -> bool {
    !cuts.iter().any(|&c| c > at && c < at + len)
}

prop_compose! {
    fn hello_strategy()(
        sid in prop::collection::vec(any::<u8>(), 0..=32),
        sni in prop::option::of("[a-z0-9]([a-z0-9.-]{0,40}[a-z0-9])?"),
        ticket in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        others in prop::collection::vec(
            ((1u16..0xffff).prop_filter("not read", |t| *t != 35), prop::collection::vec(any::<u8>(), 0..60)),
            0..6),
        sni_at in 0usize..6,
        no_extensions in any::<bool>(),
        cuts in prop::collection::vec(0usize..400, 0..5),
        trailer in prop::collection::vec(any::<u8>(), 0..20),
    ) -> Hello {
        let (hs, sid_at, sni_off) =
            client_hello(&sid, sni.as_deref().map(str::as_bytes), ticket.as_deref(), &others, sni_at, no_extensions);
        let mut bytes = records(&hs, &cuts);
        bytes.extend_from_slice(&trailer);
        let sid_ok = !sid.is_empty() && in_one_record(sid_at, sid.len(), &cuts);
        let sni_ok = sni.as_ref().is_some_and(|s| in_one_record(sni_off.unwrap(), s.len(), &cuts));
        Hello {
            bytes,
            sni: sni.filter(|_| sni_ok).map(String::into_bytes),
            sid: sid_ok.then_some(sid),
            ticket: ticket.is_some_and(|t| !t.is_empty()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn http1_reads_back_on_every_split(c in http1_strategy()) {
        let r = complete(&c.bytes);
        check_http1(&r, &c)?;
        // Pipelined or body bytes after the head change nothing.
        check_http1(&complete(&c.bytes[..c.head]), &c)?;
        prefixes_incomplete(&c.bytes, c.head)?;
    }

    #[test]
    fn client_hello_reads_back_on_every_split(h in hello_strategy()) {
        let r = complete(&h.bytes);
        prop_assert_eq!(r.kind(), Kind::Tls);
        prop_assert_eq!(r.sni(), h.sni.as_deref());
        prop_assert_eq!(r.session_id(), h.sid.as_deref());
        prop_assert_eq!(r.has_ticket(), h.ticket);
        prop_assert_eq!((r.method(), r.path(), r.host(), r.cookie(b"a")), (None, None, None, None));
        prefixes_incomplete(&h.bytes, r.header_len())?;
        // The decision used the ClientHello and nothing after it.
        prop_assert_eq!(outcome(&parse(&h.bytes[..r.header_len()])), outcome(&Parse::Complete(r)));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_decisions_are_final(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        first in prop::sample::select(vec![None, Some(22u8), Some(b'G'), Some(b'P')]),
    ) {
        let mut b = bytes;
        if let Some(f) = first {
            b.insert(0, f);
        }
        outcome_is_final(&b)?;
    }

    #[test]
    fn mutated_requests_never_panic_and_decisions_are_final(
        c in http1_strategy(),
        h in hello_strategy(),
        tls in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut b = if tls { h.bytes } else { c.bytes };
        for (at, byte, op) in edits {
            let i = at.index(b.len() + 1);
            match op {
                0 if i < b.len() => b[i] = byte,
                1 => b.insert(i, byte),
                _ => b.truncate(i),
            }
        }
        outcome_is_final(&b)?;
        if let Parse::Complete(r) = parse(&b) {
            for v in [r.method(), r.path(), r.host(), r.sni(), r.session_id()].into_iter().flatten() {
                // Every value is the input's own bytes (or the root path).
                prop_assert!(v == b"/" || b.windows(v.len()).any(|w| w == v));
            }
        }
    }
}

// --- Examples ---

#[test]
fn h2_preface() {
    let p = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    for i in 0..p.len() {
        assert_eq!(parse(&p[..i]), Parse::Incomplete, "{i}");
    }
    let r = complete(p);
    assert_eq!((r.kind(), r.header_len()), (Kind::Http2, 24));
    assert_eq!((r.method(), r.path(), r.host()), (None, None, None));
    // Not the preface after its first line: an HTTP/2.0 request line.
    assert_eq!(parse(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), Parse::Malformed);
}

#[test]
fn curl_http1() {
    let b = include_bytes!("captures/curl_http1.bin");
    let r = complete(b);
    assert_eq!(r.kind(), Kind::Http1);
    assert_eq!(r.method(), Some(&b"GET"[..]));
    assert_eq!(r.path(), Some(&b"/api/v1/items?id=7"[..]));
    assert_eq!(r.host(), Some(&b"127.0.0.1"[..]));
    assert_eq!(r.cookie(b"session"), Some(&b"abc123"[..]));
    assert_eq!(r.cookie(b"theme"), Some(&b"dark"[..]));
    assert_eq!(r.cookie(b"Session"), None);
    assert_eq!(r.header_len(), b.len());
}

#[test]
fn curl_h2c_prior_knowledge() {
    // The preface, then curl's SETTINGS frame and more.
    let b = include_bytes!("captures/curl_h2c.bin");
    assert!(b.len() > 24);
    let r = complete(b);
    assert_eq!((r.kind(), r.header_len()), (Kind::Http2, 24));
}

/// Where a one-record ClientHello's 32-byte session id is: after the record
/// and handshake headers, legacy_version, random and the id's length.
const SID: core::ops::Range<usize> = 5 + 4 + 2 + 32 + 1..5 + 4 + 2 + 32 + 1 + 32;

#[test]
fn openssl_tls13() {
    let b = include_bytes!("captures/openssl_tls13.bin");
    let r = complete(b);
    assert_eq!(r.kind(), Kind::Tls);
    assert_eq!(r.sni(), Some(&b"www.example.com"[..]));
    assert_eq!(r.session_id(), Some(&b[SID]));
    assert_eq!(b[SID][..4], [0xfe, 0x23, 0xca, 0x59]);
    assert!(!r.has_ticket()); // an empty session_ticket extension
    assert_eq!(r.header_len(), 249);
    for i in 0..b.len() {
        assert_eq!(parse(&b[..i]), Parse::Incomplete, "{i}");
    }
}

#[test]
fn curl_tls13() {
    let r = complete(include_bytes!("captures/curl_tls13.bin"));
    assert_eq!(r.sni(), Some(&b"localhost"[..]));
    assert_eq!(r.session_id().map(<[u8]>::len), Some(32));
    assert!(!r.has_ticket());
    assert_eq!(r.header_len(), 517);
}

#[test]
fn openssl_tls12_without_sni() {
    let r = complete(include_bytes!("captures/openssl_tls12_nosni.bin"));
    assert_eq!(
        (r.sni(), r.session_id(), r.has_ticket()),
        (None, None, false)
    );
    assert_eq!(r.header_len(), 188);
}

#[test]
fn openssl_tls12_stream_and_resumption() {
    // A whole TLS 1.2 client stream: the decision is the ClientHello's.
    let b = include_bytes!("captures/openssl_tls12_stream.bin");
    let r = complete(b);
    assert_eq!(r.sni(), Some(&b"shop.example.org"[..]));
    assert_eq!((r.session_id(), r.has_ticket()), (None, false));
    assert_eq!(r.header_len(), 213);
    assert!(b.len() > 213);
    // The same client resuming: a 176-byte ticket, and a session id.
    let b = include_bytes!("captures/openssl_tls12_resume.bin");
    let r = complete(b);
    assert_eq!(r.sni(), Some(&b"shop.example.org"[..]));
    assert!(r.has_ticket());
    assert_eq!(r.session_id(), Some(&b[SID]));
    assert_eq!(b[SID][..4], [0xdc, 0xd4, 0x47, 0xee]);
    assert_eq!(r.header_len(), 421);
}

#[test]
fn openssl_tls13_split_into_records() {
    // The capture's handshake message re-cut into 1-byte records: legal,
    // read through, but the values straddle records.
    let b = include_bytes!("captures/openssl_tls13.bin");
    let hs = &b[5..];
    let cuts: Vec<usize> = (1..hs.len()).collect();
    let ones = records(hs, &cuts);
    let r = complete(&ones);
    assert_eq!((r.sni(), r.session_id()), (None, None));
    // Cut just before the host name: it is in one record again.
    let at = hs
        .windows(15)
        .position(|w| w == b"www.example.com")
        .unwrap();
    let three = records(hs, &[at, at + 15]);
    let r = complete(&three);
    assert_eq!(r.sni(), Some(&b"www.example.com"[..]));
    assert_eq!(r.session_id().map(<[u8]>::len), Some(32));
}

#[test]
fn http1_examples() {
    let r =
        complete(b"\r\nOPTIONS * HTTP/1.1\r\nHost: a.example:8080\r\n\r\nGET /second HTTP/1.1\r\n");
    assert_eq!(
        (r.path(), r.host()),
        (Some(&b"*"[..]), Some(&b"a.example"[..]))
    );
    let r = complete(b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n");
    assert_eq!((r.path(), r.host()), (None, Some(&b"2001:db8::1"[..])));
    let r = complete(b"GET http://x.example HTTP/1.1\nHost: y.example\n\n");
    assert_eq!(
        (r.path(), r.host()),
        (Some(&b"/"[..]), Some(&b"x.example"[..]))
    );
    let r = complete(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.host(), None);
    let r = complete(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
    assert_eq!(r.host(), None);
    let r = complete(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b = \"2\" ;c\r\nX: y\r\ncookie: b=3; d=4\r\n\r\n");
    assert_eq!(r.cookie(b"b"), Some(&b"\"2\""[..]));
    assert_eq!(r.cookie(b"d"), Some(&b"4"[..]));
    assert_eq!(r.cookie(b"c"), None);
    // Cookie headers past the 16th are not searched.
    let mut many = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..MAX_COOKIE_HEADERS + 1 {
        many.extend_from_slice(format!("Cookie: c{i}=v{i}\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let r = complete(&many);
    assert_eq!(r.cookie(b"c15"), Some(&b"v15"[..]));
    assert_eq!(r.cookie(b"c16"), None);
}

#[test]
fn malformed_http1() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", // repeated Host
        b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", // repeated Host
        b"GET / HTTP/1.1\r\n\r\n",                       // no Host in 1.1
        b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", // obs-fold
        b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",           // whitespace before a field
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",           // whitespace before the colon
        b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",      // bare CR
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", // control character
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",            // not HTTP/1
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",           // two spaces
        b"GET / HTTP/1.1 \r\n",                          // trailing space
        b"GET /\r\n",                                    // HTTP/0.9
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",          // bad host
        b"GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n",         // bad port
        b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",         // open bracket
        b"GET / HTTP/1.1\r\nHost: []\r\n\r\n",           // empty literal
        b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",          // userinfo
        b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",  // userinfo
        b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",    // empty host
        b"GET x HTTP/1.1\r\nHost: a\r\n\r\n",            // no form
        b"GET x HTTP/1.1\r\n",                           // known before the headers
        b"GET  HTTP/1.1\r\n",                            // empty target
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",            // * but not OPTIONS
        b"CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n",        // CONNECT without port
        b"\x00GET / HTTP/1.1\r\n",                       // not a token
    ];
    for c in cases {
        assert_eq!(
            parse(c),
            Parse::Malformed,
            "{:?}",
            String::from_utf8_lossy(c)
        );
    }
}

#[test]
fn malformed_tls() {
    let (hs, _, _) = client_hello(&[7; 32], Some(b"a.example"), Some(b"t"), &[], 0, false);
    let good = records(&hs, &[]);
    complete(&good);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        outcome(&parse(&b))
    };
    assert_eq!(edit(&|b| b[1] = 2), Outcome::Malformed); // record version 2.x
    assert_eq!(edit(&|b| b[5] = 2), Outcome::Malformed); // not a ClientHello
    assert_eq!(edit(&|b| b[9] = 2), Outcome::Malformed); // legacy_version 2.x
    assert_eq!(edit(&|b| b[9 + 34] = 33), Outcome::Malformed); // session id > 32
    assert_eq!(
        edit(&|b| b[3..5].copy_from_slice(&[0, 0])),
        Outcome::Malformed
    ); // empty record
    assert_eq!(
        edit(&|b| b[3..5].copy_from_slice(&[0x40, 1])),
        Outcome::Malformed
    ); // record > 2^14
       // The handshake length 1 byte short: its end is inside the extensions.
    assert_eq!(
        edit(&|b| {
            let len = u32::from_be_bytes([0, b[6], b[7], b[8]]) - 1;
            b[6..9].copy_from_slice(&len.to_be_bytes()[1..]);
        }),
        Outcome::Malformed
    );
    // A second record of another type before the ClientHello ends.
    let mut two = records(&hs, &[50]);
    let second = 5 + 50;
    two[second] = 23;
    assert_eq!(parse(&two), Parse::Malformed);
    // Odd cipher suites' length, no compression method.
    let (mut odd, _, _) = client_hello(&[], None, None, &[], 0, true);
    odd[4 + 35 + 1] = 3;
    assert_eq!(parse(&records(&odd, &[])), Parse::Malformed);
    let (mut nocomp, _, _) = client_hello(&[], None, None, &[], 0, true);
    nocomp[4 + 35 + 2 + 4] = 0;
    assert_eq!(parse(&records(&nocomp, &[])), Parse::Malformed);
    // Repeated server_name; an empty host_name; an empty name list.
    let sni_ext = |name: &[u8]| {
        let mut d = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        d.push(0);
        d.extend_from_slice(&(name.len() as u16).to_be_bytes());
        d.extend_from_slice(name);
        d
    };
    let (twice, _, _) = client_hello(
        &[],
        None,
        None,
        &[(0, sni_ext(b"a")), (0, sni_ext(b"b"))],
        0,
        false,
    );
    assert_eq!(parse(&records(&twice, &[])), Parse::Malformed);
    let (empty, _, _) = client_hello(&[], None, None, &[(0, sni_ext(b""))], 0, false);
    assert_eq!(parse(&records(&empty, &[])), Parse::Malformed);
    let (nolist, _, _) = client_hello(&[], None, None, &[(0, vec![0, 0])], 0, false);
    assert_eq!(parse(&records(&nolist, &[])), Parse::Malformed);
    // Two host_names in one list.
    let mut two_names = sni_ext(b"a");
    two_names.extend_from_slice(&[0, 0, 1, b'b']);
    let l = (two_names.len() - 2) as u16;
    two_names[..2].copy_from_slice(&l.to_be_bytes());
    let (two_names, _, _) = client_hello(&[], None, None, &[(0, two_names)], 0, false);
    assert_eq!(parse(&records(&two_names, &[])), Parse::Malformed);
    // Repeated session_ticket.
    let (tt, _, _) = client_hello(&[], None, Some(b""), &[(35, vec![1])], 0, false);
    assert_eq!(parse(&records(&tt, &[])), Parse::Malformed);
    // Without any extension (TLS 1.2 allows it).
    let (bare, _, _) = client_hello(&[1], None, None, &[], 0, true);
    let bare = records(&bare, &[]);
    let r = complete(&bare);
    assert_eq!(
        (r.sni(), r.session_id(), r.has_ticket()),
        (None, Some(&[1u8][..]), false)
    );
}
