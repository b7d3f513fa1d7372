// SPDX-License-Identifier: GPL-2.0

//! Session affinity across connections and dispatchers (seed 004's
//! identifier): requests that carry the same session identifier reach the
//! same back-end, whichever dispatcher owns their connection.
//!
//! The identifier is read from the first request the owner parses
//! (`request::parse`), through the rules' own matching
//! (`select::match_parse`): the value of a configured cookie of an HTTP/1
//! request, or a TLS ClientHello's legacy session id; empty values and
//! anything else (incomplete, malformed, HTTP/2) carry none. A TLS 1.3
//! client sends a fresh random session id on every connection (RFC 8446,
//! middlebox compatibility), so only TLS 1.2 resumption by session id
//! keeps affinity; tickets do not.
//!
//! The back-end is the rendezvous choice of the rules' hash targets
//! (`select::ident_hash`, `select::weight`: SipHash-2-4 under a key fixed
//! for the cluster) over the back-ends up, named by node id. It depends
//! on the identifier and the back-ends only, never on the dispatcher that
//! computes it (unlike a rule's target 0, "this node", which each
//! dispatcher resolves to itself), so membership changes of dispatchers do
//! not move a session; a back-end that leaves moves only the sessions it
//! had, and gets them back when it returns.
//!
//! Pure: `no_std`, no allocation, no panic on any input.

use super::request::Parse;
use super::select::{ident_hash, match_parse, weight, MatchKind};

/// Where a service's session identifier is read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source<'c> {
    /// The value of the HTTP/1 cookie of this name.
    Cookie(&'c [u8]),
    /// The TLS ClientHello's legacy session id.
    SessionId,
}

/// The session identifier of a parsed first request, if it carries one
/// (not empty).
pub fn identifier<'a>(parse: &Parse<'a>, source: Source<'_>) -> Option<&'a [u8]> {
    let id = match source {
        Source::Cookie(name) => match_parse(MatchKind::Cookie, name, parse),
        Source::SessionId => match_parse(MatchKind::SessionId, b"", parse),
    }?;
    (!id.is_empty()).then_some(id)
}

/// The back-end of the session `ident` among `backends` (node ids; 0, no
/// node, is skipped) that are up (`up`: sorted node ids): the highest
/// weight, equal weights to the lower id. `None` when none is up.
pub fn backend_for(ident: &[u8], backends: &[u32], up: &[u32]) -> Option<u32> {
    let h = ident_hash(ident);
    let mut best: Option<(u64, u32)> = None;
    for &b in backends {
        if b == 0 || up.binary_search(&b).is_err() {
            continue;
        }
        let w = weight(h, b);
        let better = match best {
            None => true,
            Some((bw, bid)) => w > bw || (w == bw && b < bid),
        };
        if better {
            best = Some((w, b));
        }
    }
    best.map(|(_, b)| b)
}
