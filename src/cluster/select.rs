// SPDX-License-Identifier: GPL-2.0

//! Rule matching against a parsed first request, and the rendezvous hash
//! that spreads identifiers (a session cookie, a TLS session id) over a set
//! of nodes.
//!
//! Matching: a rule has a type and a value (`any` and `session-id` have
//! none). A request that is incomplete, malformed, or an HTTP/2 preface (no
//! request to read) matches `any` only, so it takes the service's default.
//!
//! Rendezvous (highest random weight) hashing: the identifier goes to the
//! candidate node with the highest weight `w(id, node)`, among the
//! candidates that are up. Every node computes the same weights (the hash
//! and its key are fixed here, not per host), so they agree on the choice
//! without talking; a node that goes down takes away only the identifiers
//! it had (the others keep their highest weight), and one that comes back
//! gets the same ones back. The hash is SipHash-2-4 with a fixed key:
//! keyed-PRF quality weights (CRC32C is linear, which makes the weights of
//! one identifier over several nodes correlated), 2 compression rounds per
//! 8 bytes, allocation-free, and test vectors from its paper.
//! `w(id, node) = SipHash-2-4(K, le64(SipHash-2-4(K, id)) || le32(node))`:
//! the identifier is hashed once, then each candidate costs one 12-byte hash.
//!
//! `no_std`, no allocation, no panics: the module's packet path calls it.

use super::request::{Kind, Parse, Request};

/// The most targets of a hash rule.
pub const MAX_TARGETS: usize = 16;
/// The longest match value, in bytes (the netlink policy's max-len).
pub const MAX_VALUE: usize = 255;

/// The fixed SipHash key of the rendezvous hash: "sockgroup-rendez", as two
/// little-endian u64. Changing it moves identifiers between nodes: every
/// node of a cluster must run the same.
pub const HASH_KEY: (u64, u64) = (
    u64::from_le_bytes(*b"sockgrou"),
    u64::from_le_bytes(*b"p-rendez"),
);

/// SipHash-2-4 of `data` under the key `(k0, k1)` (the reference
/// algorithm of Aumasson and Bernstein, 2012).
pub fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v0 = k0 ^ 0x736f_6d65_7073_6575;
    let mut v1 = k1 ^ 0x646f_7261_6e64_6f6d;
    let mut v2 = k0 ^ 0x6c79_6765_6e65_7261;
    let mut v3 = k1 ^ 0x7465_6462_7974_6573;
    #[inline(always)]
    fn round(v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64) {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13);
        *v1 ^= *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16);
        *v3 ^= *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21);
        *v3 ^= *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17);
        *v1 ^= *v2;
        *v2 = v2.rotate_left(32);
    }
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let m = u64::from_le_bytes(w);
        v3 ^= m;
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        v0 ^= m;
    }
    let rest = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    // The length's low byte goes in the last byte of the final word.
    w[7] = data.len() as u8;
    let m = u64::from_le_bytes(w);
    v3 ^= m;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= m;
    v2 ^= 0xff;
    for _ in 0..4 {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    v0 ^ v1 ^ v2 ^ v3
}

/// The hash of an identifier, computed once per decision.
pub fn ident_hash(ident: &[u8]) -> u64 {
    siphash24(HASH_KEY.0, HASH_KEY.1, ident)
}

/// The weight of `node` for the identifier of hash `ident`.
pub fn weight(ident: u64, node: u32) -> u64 {
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&ident.to_le_bytes());
    b[8..].copy_from_slice(&node.to_le_bytes());
    siphash24(HASH_KEY.0, HASH_KEY.1, &b)
}

/// The node a target names: 0 is this node.
pub fn resolve(target: u32, self_id: u32) -> u32 {
    if target == 0 {
        self_id
    } else {
        target
    }
}

/// The index in `targets` (node ids, 0 = this node `self_id`) of the one
/// `ident` goes to, among those up (`up`: sorted node ids; this node counts
/// as up, listed or not): the highest weight, a tie to the lower node id (a
/// duplicate of a node: to its first index). `None` when none is up.
pub fn rendezvous(ident: &[u8], targets: &[u32], self_id: u32, up: &[u32]) -> Option<usize> {
    let h = ident_hash(ident);
    let mut best: Option<(usize, u32, u64)> = None;
    for (i, &t) in targets.iter().enumerate() {
        let node = resolve(t, self_id);
        if node != self_id && up.binary_search(&node).is_err() {
            continue;
        }
        let w = weight(h, node);
        let better = match best {
            None => true,
            Some((_, bn, bw)) => w > bw || (w == bw && node < bn),
        };
        if better {
            best = Some((i, node, w));
        }
    }
    best.map(|(i, _, _)| i)
}

/// A rule's target, as the choice sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TargetRef<'t> {
    /// This node.
    Local,
    /// One node (0: this node).
    Peer(u32),
    /// The set (0: this node), by rendezvous hash of the identifier.
    Hash(&'t [u32]),
}

/// Where a matched rule places a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Choice {
    /// On `node` (`self_id` for this node), the target's entry `index`
    /// (0 for a local or peer target): the counter to bump.
    Node { index: usize, node: u32 },
    /// No candidate is up: this node serves it, counted apart.
    NoneUp,
}

/// The choice of target `t` for the identifier `ident`: a local target is
/// this node; a peer target its node if up (this node always is); a hash
/// target [`rendezvous`]. `up`: sorted ids of the nodes up.
pub fn choose(t: TargetRef<'_>, ident: &[u8], self_id: u32, up: &[u32]) -> Choice {
    let index = match t {
        TargetRef::Local => Some((0, self_id)),
        TargetRef::Peer(p) => {
            let node = resolve(p, self_id);
            (node == self_id || up.binary_search(&node).is_ok()).then_some((0, node))
        }
        TargetRef::Hash(peers) => {
            rendezvous(ident, peers, self_id, up).map(|i| (i, resolve(peers[i], self_id)))
        }
    };
    match index {
        Some((index, node)) => Choice::Node { index, node },
        None => Choice::NoneUp,
    }
}

/// What a rule matches (the values of the spec's enum `match-type`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MatchKind {
    /// Everything, also what could not be parsed.
    Any = 0,
    /// HTTP/1: the path starts with the value (bytes, case-sensitive).
    PathPrefix = 1,
    /// HTTP/1: Host equals the value (ASCII case-insensitive).
    Host = 2,
    /// HTTP/1: a cookie of this name (the value) is present and not empty;
    /// its value is the identifier.
    Cookie = 3,
    /// TLS: the server name equals the value (ASCII case-insensitive).
    Sni = 4,
    /// HTTP/1: Host is the value or ends with "." and the value (a whole
    /// label: "example.com" matches "a.example.com", not
    /// "badexample.com"), ASCII case-insensitive.
    HostSuffix = 5,
    /// HTTP/1: the value is "NAME=VALUE": the cookie NAME has exactly VALUE.
    CookieValue = 6,
    /// TLS: a (non-empty) legacy session id, the identifier.
    SessionId = 7,
}

impl MatchKind {
    /// The kind of the spec's number.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::Any,
            1 => Self::PathPrefix,
            2 => Self::Host,
            3 => Self::Cookie,
            4 => Self::Sni,
            5 => Self::HostSuffix,
            6 => Self::CookieValue,
            7 => Self::SessionId,
            _ => return None,
        })
    }

    /// Whether a match carries an identifier that a hash target can spread
    /// (the cookie's value, the session id).
    pub fn has_identifier(self) -> bool {
        matches!(self, Self::Cookie | Self::SessionId)
    }

    /// Whether the match takes a value.
    pub fn takes_value(self) -> bool {
        !matches!(self, Self::Any | Self::SessionId)
    }
}

/// Why a match value is refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValueError {
    /// This type takes no value.
    Forbidden,
    /// This type needs a value.
    Missing,
    /// Longer than [`MAX_VALUE`].
    TooLong,
    /// A path prefix must start with "/".
    PathNotAbsolute,
    /// A host or server name with a byte that no host name has (control,
    /// space, ':' or '/'), or an empty label (a leading, trailing or double
    /// dot).
    BadHost,
    /// A cookie name with a byte no cookie name has (control, space,
    /// separators of RFC 6265: `()<>@,;:\"/[]?={}`).
    BadCookieName,
    /// cookie-value without "NAME=VALUE" (a non-empty name and a '=').
    NotNameValue,
    /// A cookie value with a control byte, space, '"', ',', ';' or '\'.
    BadCookieValue,
}

fn host_ok(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|&b| b > b' ' && b != 0x7f && b != b':' && b != b'/')
        && v.split(|&b| b == b'.').all(|label| !label.is_empty())
}

fn cookie_name_ok(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|&b| b > b' ' && b < 0x7f && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

fn cookie_value_ok(v: &[u8]) -> bool {
    v.iter()
        .all(|&b| b > b' ' && b < 0x7f && !b"\",;\\".contains(&b))
}

/// Checks a rule's match value (`None`: no value attribute) for its kind.
pub fn check_value(kind: MatchKind, value: Option<&[u8]>) -> Result<(), ValueError> {
    let v = match (kind.takes_value(), value) {
        (false, None) => return Ok(()),
        (false, Some(_)) => return Err(ValueError::Forbidden),
        (true, None) => return Err(ValueError::Missing),
        (true, Some(b"")) => return Err(ValueError::Missing),
        (true, Some(v)) => v,
    };
    if v.len() > MAX_VALUE {
        return Err(ValueError::TooLong);
    }
    match kind {
        MatchKind::Any | MatchKind::SessionId => Ok(()),
        MatchKind::PathPrefix if v[0] != b'/' => Err(ValueError::PathNotAbsolute),
        MatchKind::PathPrefix => Ok(()),
        MatchKind::Host | MatchKind::HostSuffix | MatchKind::Sni if !host_ok(v) => {
            Err(ValueError::BadHost)
        }
        MatchKind::Host | MatchKind::HostSuffix | MatchKind::Sni => Ok(()),
        MatchKind::Cookie if !cookie_name_ok(v) => Err(ValueError::BadCookieName),
        MatchKind::Cookie => Ok(()),
        MatchKind::CookieValue => {
            let Some((name, value)) = split_name_value(v) else {
                return Err(ValueError::NotNameValue);
            };
            if !cookie_name_ok(name) {
                Err(ValueError::BadCookieName)
            } else if !cookie_value_ok(value) {
                Err(ValueError::BadCookieValue)
            } else {
                Ok(())
            }
        }
    }
}

/// "NAME=VALUE" split at the first '=' (a cookie name has none).
fn split_name_value(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = v.iter().position(|&b| b == b'=')?;
    Some((&v[..eq], &v[eq + 1..]))
}

/// The fields of a complete request that rules look at: what
/// [`Request`] gives, as a trait so that the matching is tested on the host
/// with any fields.
pub trait Fields<'a> {
    fn kind(&self) -> Kind;
    fn path(&self) -> Option<&'a [u8]>;
    fn host(&self) -> Option<&'a [u8]>;
    fn cookie(&self, name: &[u8]) -> Option<&'a [u8]>;
    fn sni(&self) -> Option<&'a [u8]>;
    fn session_id(&self) -> Option<&'a [u8]>;
}

impl<'a> Fields<'a> for Request<'a> {
    fn kind(&self) -> Kind {
        Request::kind(self)
    }
    fn path(&self) -> Option<&'a [u8]> {
        Request::path(self)
    }
    fn host(&self) -> Option<&'a [u8]> {
        Request::host(self)
    }
    fn cookie(&self, name: &[u8]) -> Option<&'a [u8]> {
        Request::cookie(self, name)
    }
    fn sni(&self) -> Option<&'a [u8]> {
        Request::sni(self)
    }
    fn session_id(&self) -> Option<&'a [u8]> {
        Request::session_id(self)
    }
}

/// `a` and `b` equal but for ASCII case.
fn eq_nocase(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A host without one trailing dot (the absolute form "example.com.").
fn strip_root(host: &[u8]) -> &[u8] {
    host.strip_suffix(b".").unwrap_or(host)
}

/// Whether `host` is `suffix` or ends with "." and `suffix`, ASCII
/// case-insensitive.
pub fn host_suffix_matches(host: &[u8], suffix: &[u8]) -> bool {
    let host = strip_root(host);
    if host.len() == suffix.len() {
        return eq_nocase(host, suffix);
    }
    if host.len() < suffix.len() + 1 || suffix.is_empty() {
        return false;
    }
    let cut = host.len() - suffix.len();
    host[cut - 1] == b'.' && eq_nocase(&host[cut..], suffix)
}

/// Matches one rule (`kind`, `value`) against a complete request's fields.
/// `Some(identifier)` when it matches: the cookie's value or the session id
/// for the kinds that carry one, else empty.
pub fn match_fields<'a, F: Fields<'a>>(kind: MatchKind, value: &[u8], f: &F) -> Option<&'a [u8]> {
    const NONE: &[u8] = b"";
    if kind == MatchKind::Any {
        return Some(NONE);
    }
    let http1 = f.kind() == Kind::Http1;
    let tls = f.kind() == Kind::Tls;
    let hit = match kind {
        MatchKind::Any => true,
        MatchKind::PathPrefix => http1 && f.path().is_some_and(|p| p.starts_with(value)),
        MatchKind::Host => http1 && f.host().is_some_and(|h| eq_nocase(strip_root(h), value)),
        MatchKind::HostSuffix => http1 && f.host().is_some_and(|h| host_suffix_matches(h, value)),
        MatchKind::Sni => tls && f.sni().is_some_and(|s| eq_nocase(strip_root(s), value)),
        MatchKind::Cookie => {
            return match f.cookie(value) {
                Some(v) if http1 && !v.is_empty() => Some(v),
                _ => None,
            };
        }
        MatchKind::CookieValue => {
            let (name, want) = split_name_value(value)?;
            http1 && f.cookie(name) == Some(want)
        }
        MatchKind::SessionId => {
            return match f.session_id() {
                Some(id) if tls && !id.is_empty() => Some(id),
                _ => None,
            };
        }
    };
    hit.then_some(NONE)
}

/// Matches one rule against the parser's outcome: an incomplete or
/// malformed request, and an HTTP/2 preface, match `any` only.
pub fn match_parse<'a>(kind: MatchKind, value: &[u8], parse: &Parse<'a>) -> Option<&'a [u8]> {
    match parse {
        Parse::Complete(r) if r.kind() != Kind::Http2 => match_fields(kind, value, r),
        _ => (kind == MatchKind::Any).then_some(&b""[..]),
    }
}
