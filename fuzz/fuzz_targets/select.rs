// SPDX-License-Identifier: GPL-2.0

//! A rule (its type and value from the input) matched against arbitrary
//! request bytes, and the identifier hashed over a target set: no panic;
//! `any` always matches and only `any` when the request is not a complete
//! HTTP/1 or TLS one; an identifier is part of the request; the choice is
//! among the candidates up.
//!
//! Input: byte 0 the match type (mod 8), byte 1 the value's length, the
//! value, then the request.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockgroup_logic::request::{parse, Kind, Parse};
use sockgroup_logic::select::{check_value, choose, match_parse, Choice, MatchKind, TargetRef};

fuzz_target!(|data: &[u8]| {
    let [t, n, rest @ ..] = data else {
        return;
    };
    let kind = MatchKind::from_u32(u32::from(*t % 8)).expect("0..8 are kinds");
    let (value, req) = rest.split_at(usize::from(*n).min(rest.len()));
    let _ = check_value(kind, Some(value));
    let p = parse(req);
    let readable = matches!(&p, Parse::Complete(r) if r.kind() != Kind::Http2);
    let got = match_parse(kind, value, &p);
    if kind == MatchKind::Any {
        assert!(got.is_some());
    } else if !readable {
        assert!(got.is_none());
    }
    if let Some(id) = got.filter(|id| !id.is_empty()) {
        let range = req.as_ptr_range();
        assert!(range.start <= id.as_ptr() && id.as_ptr_range().end <= range.end);
        let targets = [2, 0, 7, 9];
        let up = [1, 2, 9];
        match choose(TargetRef::Hash(&targets), id, 1, &up) {
            Choice::Node { index, node } => {
                assert!(index < targets.len() && [1, 2, 9].contains(&node))
            }
            Choice::NoneUp => panic!("this node (0) is a candidate"),
        }
    }
});
