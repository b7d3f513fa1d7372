// SPDX-License-Identifier: GPL-2.0

//! Arbitrary bytes from the network into the request parser: no panic, every
//! value it returns is a part of the input, and a decision made on a prefix
//! (Complete or Malformed) is the decision on the whole.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockgroup_logic::request::{parse, Parse, Request};

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Parse::Complete(r) = &whole {
        check(r, data);
    }
    // Prefixes: at a point the first byte picks, the half, all but one.
    let pick = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    for end in [pick, data.len() / 2, data.len().saturating_sub(1)] {
        match parse(&data[..end]) {
            Parse::Incomplete => {}
            Parse::Malformed => assert_eq!(whole, Parse::Malformed),
            Parse::Complete(p) => match &whole {
                Parse::Complete(w) => assert_eq!(values(&p), values(w)),
                other => panic!("Complete on a prefix, {other:?} on the whole"),
            },
        }
    }
});

type Values<'a> = (
    [Option<&'a [u8]>; 8],
    sockgroup_logic::request::Kind,
    bool,
    usize,
);

fn values<'a>(r: &Request<'a>) -> Values<'a> {
    (
        [
            r.method(),
            r.path(),
            r.host(),
            r.sni(),
            r.session_id(),
            r.cookie(b"session"),
            r.cookie(b"a"),
            r.cookie(b""),
        ],
        r.kind(),
        r.has_ticket(),
        r.header_len(),
    )
}

fn check(r: &Request<'_>, data: &[u8]) {
    assert!(r.header_len() <= data.len());
    let range = data.as_ptr_range();
    for v in values(r).0.into_iter().flatten() {
        let inside = range.start <= v.as_ptr() && v.as_ptr_range().end <= range.end;
        assert!(inside || v == b"/", "a value outside the input");
    }
}
