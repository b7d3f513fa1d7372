// SPDX-License-Identifier: GPL-2.0

//! A session identifier read from arbitrary request bytes, by a cookie
//! name from the input or the TLS session id: no panic; an identifier is a
//! non-empty part of the request; the back-end chosen for it is one of the
//! back-ends up, and the same when another back-end leaves.
//!
//! Input: byte 0 the cookie name's length (0: the TLS session id), the
//! name, then the request.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockgroup_logic::affinity::{backend_for, identifier, Source};
use sockgroup_logic::request::parse;

fuzz_target!(|data: &[u8]| {
    let [n, rest @ ..] = data else {
        return;
    };
    let (name, req) = rest.split_at(usize::from(*n).min(rest.len()));
    let source = if name.is_empty() {
        Source::SessionId
    } else {
        Source::Cookie(name)
    };
    let p = parse(req);
    let Some(id) = identifier(&p, source) else {
        return;
    };
    assert!(!id.is_empty());
    let range = req.as_ptr_range();
    assert!(range.start <= id.as_ptr() && id.as_ptr_range().end <= range.end);
    let backends = [3, 0, 5, 8, 13];
    let up = [3, 5, 8, 13];
    let b = backend_for(id, &backends, &up).expect("back-ends are up");
    assert!(up.contains(&b));
    let others: Vec<u32> = up.iter().copied().filter(|&x| x != b).collect();
    let without = others.first().copied();
    let rest: Vec<u32> = up.iter().copied().filter(|&x| Some(x) != without).collect();
    assert_eq!(backend_for(id, &backends, &rest), Some(b));
});
