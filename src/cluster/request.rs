// SPDX-License-Identifier: GPL-2.0

//! The first request of a connection, read for a decision: an HTTP/1.x
//! request line and header block, the HTTP/2 connection preface, or a TLS
//! ClientHello.
//!
//! [`parse`] reads the bytes a client sent so far (the contiguous prefix of
//! its stream) and says whether they hold a complete request head
//! ([`Parse::Complete`]), need more bytes ([`Parse::Incomplete`]: the
//! caller stops waiting at [`MAX_HEADER`] bytes or its time budget), or can
//! never be one ([`Parse::Malformed`]). A [`Request`] is the input and
//! ranges into it: nothing is copied, nothing allocated, nothing panics,
//! and the time is linear in the input. Every length read from the input
//! is checked against the input and the structure that contains it.
//!
//! Input from a valid request is never `Malformed` on a prefix: a request
//! that is `Complete` is `Incomplete` on every proper prefix (the host
//! tests check it).
//!
//! **HTTP/1.0 and 1.1** (RFC 9112). The request line is `method SP target
//! SP HTTP/1.d` (single spaces); empty lines before it are skipped; lines
//! end in CRLF or a bare LF (a bare CR is malformed). The target is in
//! origin form (`/path?query`), absolute form (`http://host:port/path`,
//! whose authority is the host; userinfo or an empty host is malformed),
//! authority form (`CONNECT host:port`) or asterisk form (`OPTIONS *`).
//! Header names are tokens compared case-insensitively, followed directly
//! by `:` (whitespace before the colon is malformed); values are trimmed
//! of spaces and tabs and may not hold control characters. Obsolete line
//! folding (a header line starting with a space or tab, RFC 9112 5.2) is
//! **malformed**: the RFC lets a server reject it with 400 instead of
//! unfolding it, and rejecting it leaves no doubt about what a folded Host
//! or Cookie means. Host: exactly one Host header in HTTP/1.1 (none, or
//! two even if equal, is malformed, RFC 9112 3.2), at most one in
//! HTTP/1.0; its value is `host[:port]` with the host a registered name or
//! a bracketed IP literal; [`Request::host`] is the host without port or
//! brackets, and the absolute form's authority wins over the header.
//! Cookie headers may repeat: the first [`MAX_COOKIE_HEADERS`] are kept
//! and searched in order by [`Request::cookie`]; later ones are ignored.
//! Only the first request of a pipeline is read: [`Request::header_len`]
//! ends at its empty line.
//!
//! **HTTP/2**: the 24-byte connection preface [`H2_PREFACE`] (a proper
//! prefix of it is `Incomplete`); there is no request to read.
//!
//! **TLS**: a first byte of 22 (handshake record). Records of type 22,
//! version 3.x and 1 to 2^14 bytes carry a handshake message of type 1
//! (ClientHello), which may span several records. Read from it: the
//! legacy_session_id (0 to 32 bytes), the server_name extension's
//! host_name (at most one, not empty), and whether a session_ticket
//! extension carries data. Cipher suites, compression methods and the
//! extension block are checked for length; a repeated server_name or
//! session_ticket extension is malformed. A session id or host name that a
//! client split across two records is legal TLS but not contiguous in the
//! input: it reads as absent (`None`) rather than being copied.
//!
//! Values are returned as sent (no case folding, no percent decoding).

/// The most bytes of a request head the caller reads before giving up.
pub const MAX_HEADER: usize = 16384;
/// The most Cookie headers whose cookies [`Request::cookie`] searches.
pub const MAX_COOKIE_HEADERS: usize = 16;
/// The HTTP/2 connection preface (RFC 9113 3.4).
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// TLS record content type of a handshake.
const TLS_HANDSHAKE: u8 = 22;
/// TLS handshake type of a ClientHello.
const TLS_CLIENT_HELLO: u8 = 1;
/// The most bytes of plaintext in a TLS record (RFC 8446 5.1).
const TLS_MAX_RECORD: usize = 1 << 14;
/// Extension types (RFC 6066, RFC 5077).
const EXT_SERVER_NAME: u16 = 0;
const EXT_SESSION_TICKET: u16 = 35;

/// What the connection speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// An HTTP/1.0 or 1.1 request.
    Http1,
    /// The HTTP/2 connection preface.
    Http2,
    /// A TLS ClientHello.
    Tls,
}

/// A range of the input (offsets fit in `u32`: see [`parse`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// `start..end` of an input of at most `u32::MAX` bytes.
    fn new(start: usize, end: usize) -> Self {
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    fn get(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or(&[])
    }
}

/// The path of an HTTP/1 request target.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Path {
    /// Bytes of the input.
    Span(Span),
    /// An absolute-form target with an empty path: `/`.
    Root,
}

/// A complete request head: the input and ranges into it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Request<'a> {
    buf: &'a [u8],
    kind: Kind,
    method: Option<Span>,
    path: Option<Path>,
    host: Option<Span>,
    cookies: [Span; MAX_COOKIE_HEADERS],
    n_cookies: u8,
    sni: Option<Span>,
    session_id: Option<Span>,
    ticket: bool,
    header_len: usize,
}

impl<'a> Request<'a> {
    fn new(buf: &'a [u8], kind: Kind) -> Self {
        Request {
            buf,
            kind,
            method: None,
            path: None,
            host: None,
            cookies: [Span::default(); MAX_COOKIE_HEADERS],
            n_cookies: 0,
            sni: None,
            session_id: None,
            ticket: false,
            header_len: 0,
        }
    }

    fn span(&self, s: Option<Span>) -> Option<&'a [u8]> {
        s.map(|s| s.get(self.buf))
    }

    /// What the connection speaks.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// HTTP/1: the method.
    pub fn method(&self) -> Option<&'a [u8]> {
        self.span(self.method)
    }

    /// HTTP/1: the path of the request target, query included (`*` for
    /// `OPTIONS *`, `/` for an absolute form without path, `None` for the
    /// authority form of CONNECT).
    pub fn path(&self) -> Option<&'a [u8]> {
        match self.path? {
            Path::Span(s) => Some(s.get(self.buf)),
            Path::Root => Some(b"/"),
        }
    }

    /// HTTP/1: the host of the absolute-form or authority-form target, else
    /// of the Host header; without port, brackets or surrounding
    /// whitespace. `None` without one (HTTP/1.0, or an empty Host).
    pub fn host(&self) -> Option<&'a [u8]> {
        self.span(self.host)
    }

    /// HTTP/1: the value of the first cookie named `name` over the Cookie
    /// headers in order (the first [`MAX_COOKIE_HEADERS`] of them). Names
    /// compare exactly; the value is trimmed of spaces and tabs and keeps
    /// its double quotes if it has them.
    pub fn cookie(&self, name: &[u8]) -> Option<&'a [u8]> {
        let n = usize::from(self.n_cookies).min(MAX_COOKIE_HEADERS);
        self.cookies[..n].iter().find_map(|s| {
            s.get(self.buf).split(|&b| b == b';').find_map(|pair| {
                let eq = pair.iter().position(|&b| b == b'=')?;
                let (k, v) = (trim(&pair[..eq]), trim(&pair[eq + 1..]));
                (k == name).then_some(v)
            })
        })
    }

    /// TLS: the server_name extension's host_name.
    pub fn sni(&self) -> Option<&'a [u8]> {
        self.span(self.sni)
    }

    /// TLS: the legacy_session_id, when not empty.
    pub fn session_id(&self) -> Option<&'a [u8]> {
        self.span(self.session_id)
    }

    /// TLS: whether the ClientHello has a session_ticket extension with
    /// data (a ticket to resume with).
    pub fn has_ticket(&self) -> bool {
        self.ticket
    }

    /// Bytes of input the decision used: through the empty line ending the
    /// first header block, the preface, or the ClientHello's last byte.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
}

/// The outcome of [`parse`].
// No allocation here, so no boxing: the outcome is a few hundred bytes of
// stack, once per parse.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Parse<'a> {
    /// A complete request head.
    Complete(Request<'a>),
    /// The input is a proper prefix of a request head.
    Incomplete,
    /// The input can never be a request head.
    Malformed,
}

/// Reads the first request of a connection from the bytes received so far.
///
/// Auto-detects: first byte 0x16 => TLS ClientHello (may span records); the HTTP/2
/// preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" => Complete(Http2) (a proper prefix of it:
/// Incomplete); otherwise HTTP/1.x (Complete at the end of the header block; the first of
/// pipelined requests decides). Never panics, no allocation, O(len) time.
///
/// Only the first `u32::MAX` bytes are looked at (the caller gives at most
/// [`MAX_HEADER`]).
pub fn parse(buf: &[u8]) -> Parse<'_> {
    let buf = &buf[..buf.len().min(u32::MAX as usize)];
    let res = match buf.first() {
        None => Err(Stop::Incomplete),
        Some(&TLS_HANDSHAKE) => client_hello(buf),
        Some(_) if is_h2_preface(buf) => h2(buf),
        Some(_) => http1(buf),
    };
    match res {
        Ok(r) => Parse::Complete(r),
        Err(Stop::Incomplete) => Parse::Incomplete,
        Err(Stop::Malformed) => Parse::Malformed,
    }
}

/// Why parsing stopped short.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    Incomplete,
    Malformed,
}

type Res<T> = Result<T, Stop>;

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

// --- HTTP/2 ---

/// Whether `buf` starts with the preface or is a proper prefix of it.
fn is_h2_preface(buf: &[u8]) -> bool {
    let n = buf.len().min(H2_PREFACE.len());
    buf[..n] == H2_PREFACE[..n]
}

fn h2(buf: &[u8]) -> Res<Request<'_>> {
    if buf.len() < H2_PREFACE.len() {
        return Err(Stop::Incomplete);
    }
    let mut r = Request::new(buf, Kind::Http2);
    r.header_len = H2_PREFACE.len();
    Ok(r)
}

// --- HTTP/1 ---

/// A position in the input; reading past its end is `Incomplete`.
struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cur<'_> {
    fn peek(&self) -> Res<u8> {
        self.buf.get(self.pos).copied().ok_or(Stop::Incomplete)
    }

    /// Takes the byte `b`, else malformed.
    fn expect(&mut self, b: u8) -> Res<()> {
        if self.peek()? != b {
            return Err(Stop::Malformed);
        }
        self.pos += 1;
        Ok(())
    }

    /// Takes one or more token characters; returns where they started.
    fn token(&mut self) -> Res<usize> {
        let start = self.pos;
        while is_tchar(self.peek()?) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(Stop::Malformed);
        }
        Ok(start)
    }

    /// Takes a line end: CRLF, or a bare LF (RFC 9112 2.2 allows it).
    fn eol(&mut self) -> Res<()> {
        match self.peek()? {
            b'\r' => {
                self.pos += 1;
                self.expect(b'\n')
            }
            b'\n' => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(Stop::Malformed),
        }
    }
}

/// RFC 9110 5.6.2 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A visible byte: VCHAR or obs-text, of a field value (RFC 9110 5.5) or a
/// request target (where servers accept obs-text too).
fn is_visible(b: u8) -> bool {
    matches!(b, 0x21..=0x7e | 0x80..=0xff)
}

fn http1(buf: &[u8]) -> Res<Request<'_>> {
    let mut c = Cur { buf, pos: 0 };
    // RFC 9112 2.2: empty lines before the request line are ignored.
    while matches!(c.peek()?, b'\r' | b'\n') {
        c.eol()?;
    }
    let m0 = c.token()?;
    let method = Span::new(m0, c.pos);
    c.expect(b' ')?;
    let t0 = c.pos;
    while is_visible(c.peek()?) {
        c.pos += 1;
    }
    let target = Span::new(t0, c.pos);
    c.expect(b' ')?;
    for &b in b"HTTP/1." {
        c.expect(b)?;
    }
    let minor = c.peek()?;
    if !minor.is_ascii_digit() {
        return Err(Stop::Malformed);
    }
    c.pos += 1;
    c.eol()?;

    let mut r = Request::new(buf, Kind::Http1);
    r.method = Some(method);
    // The target's form, decided before the headers are read.
    let t = target.get(buf);
    let mut target_host = None;
    if t.first() == Some(&b'/') {
        r.path = Some(Path::Span(target));
    } else if t == b"*" {
        if method.get(buf) != b"OPTIONS" {
            return Err(Stop::Malformed);
        }
        r.path = Some(Path::Span(target));
    } else if method.get(buf) == b"CONNECT" {
        target_host = authority_host(t, t0, true)?;
    } else {
        let (host, path) = absolute_form(t, t0)?;
        target_host = Some(host);
        r.path = Some(path);
    }
    let mut host_header: Option<Option<Span>> = None;
    loop {
        match c.peek()? {
            b'\r' | b'\n' => {
                c.eol()?;
                break;
            }
            // obs-fold, or whitespace before the first field line.
            b' ' | b'\t' => return Err(Stop::Malformed),
            _ => {}
        }
        let n0 = c.token()?;
        let name = &buf[n0..c.pos];
        c.expect(b':')?;
        while matches!(c.peek()?, b' ' | b'\t') {
            c.pos += 1;
        }
        let v0 = c.pos;
        let mut v1 = v0;
        loop {
            match c.peek()? {
                b'\r' | b'\n' => break,
                b' ' | b'\t' => c.pos += 1,
                b if is_visible(b) => {
                    c.pos += 1;
                    v1 = c.pos;
                }
                _ => return Err(Stop::Malformed),
            }
        }
        c.eol()?;
        let value = Span::new(v0, v1);
        if name.eq_ignore_ascii_case(b"host") {
            if host_header.is_some() {
                return Err(Stop::Malformed);
            }
            host_header = Some(authority_host(value.get(buf), v0, false)?);
        } else if name.eq_ignore_ascii_case(b"cookie") {
            if let Some(slot) = r.cookies.get_mut(usize::from(r.n_cookies)) {
                *slot = value;
                r.n_cookies += 1;
            }
        }
    }
    if minor != b'0' && host_header.is_none() {
        return Err(Stop::Malformed);
    }
    r.host = target_host.or(host_header.flatten());
    r.header_len = c.pos;
    Ok(r)
}

/// The authority and path of an absolute-form target `t` (at offset `at`):
/// `scheme "://" authority path-abempty ["?" query]`.
fn absolute_form(t: &[u8], at: usize) -> Res<(Span, Path)> {
    let colon = t.iter().position(|&b| b == b':').ok_or(Stop::Malformed)?;
    let scheme = &t[..colon];
    let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok || !t[colon..].starts_with(b"://") {
        return Err(Stop::Malformed);
    }
    let a0 = colon + 3;
    let a1 = t[a0..]
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .map_or(t.len(), |i| a0 + i);
    let host = authority_host(&t[a0..a1], at + a0, false)?.ok_or(Stop::Malformed)?;
    let path = if a1 == t.len() {
        Path::Root
    } else {
        Path::Span(Span::new(at + a1, at + t.len()))
    };
    Ok((host, path))
}

/// The host of `host[:port]` (`v`, at offset `at` of the input), without
/// port or brackets; `None` if `v` is empty. With `need_port` (CONNECT) the
/// port must be there. Userinfo is malformed (RFC 9110 4.2.4).
fn authority_host(v: &[u8], at: usize, need_port: bool) -> Res<Option<Span>> {
    if v.is_empty() && !need_port {
        return Ok(None);
    }
    let (h0, h1, rest) = if v.first() == Some(&b'[') {
        let close = v.iter().position(|&b| b == b']').ok_or(Stop::Malformed)?;
        let lit = &v[1..close];
        let ok = !lit.is_empty()
            && lit
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
            && lit.contains(&b':');
        if !ok {
            return Err(Stop::Malformed);
        }
        (1, close, &v[close + 1..])
    } else {
        let end = v.iter().position(|&b| b == b':').unwrap_or(v.len());
        if end == 0 || !is_reg_name(&v[..end]) {
            return Err(Stop::Malformed);
        }
        (0, end, &v[end..])
    };
    let port_ok = match rest {
        [] => !need_port,
        [b':', port @ ..] => port.iter().all(u8::is_ascii_digit) && !(need_port && port.is_empty()),
        _ => false,
    };
    if !port_ok {
        return Err(Stop::Malformed);
    }
    Ok(Some(Span::new(at + h0, at + h1)))
}

/// RFC 3986 reg-name: unreserved, sub-delims and percent-encoded octets.
fn is_reg_name(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let hex = |j: usize| s.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

// --- TLS ---

/// A reader of the handshake bytes carried by consecutive TLS records.
struct Tls<'a> {
    buf: &'a [u8],
    /// The next byte to read in `buf`.
    pos: usize,
    /// The end in `buf` of the current record's payload.
    frag_end: usize,
    /// Handshake bytes read so far.
    n: usize,
}

impl Tls<'_> {
    fn at(&self, i: usize) -> Res<u8> {
        self.buf.get(i).copied().ok_or(Stop::Incomplete)
    }

    /// Steps over the next record's header (at `pos`, the end of the last
    /// record's payload). Each byte is checked as soon as it is there.
    fn next_record(&mut self) -> Res<()> {
        let p = self.pos;
        if self.at(p)? != TLS_HANDSHAKE || self.at(p + 1)? != 3 || self.at(p + 2)? > 4 {
            return Err(Stop::Malformed);
        }
        let len = usize::from(u16::from_be_bytes([self.at(p + 3)?, self.at(p + 4)?]));
        // RFC 8446 5.1: no empty handshake fragments, none over 2^14.
        if len == 0 || len > TLS_MAX_RECORD {
            return Err(Stop::Malformed);
        }
        self.pos = p + 5;
        self.frag_end = self.pos + len;
        Ok(())
    }

    fn u8(&mut self) -> Res<u8> {
        if self.pos == self.frag_end {
            self.next_record()?;
        }
        let b = self.at(self.pos)?;
        self.pos += 1;
        self.n += 1;
        Ok(b)
    }

    fn u16(&mut self) -> Res<u16> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    /// Takes `len` bytes; their span if they lie in one record.
    fn take(&mut self, len: usize) -> Res<Option<Span>> {
        if len == 0 {
            return Ok(Some(Span::new(self.pos, self.pos)));
        }
        if self.pos == self.frag_end {
            self.next_record()?;
        }
        if self.frag_end.saturating_sub(self.pos) >= len {
            if self.buf.len().saturating_sub(self.pos) < len {
                return Err(Stop::Incomplete);
            }
            let s = Span::new(self.pos, self.pos + len);
            self.pos += len;
            self.n += len;
            return Ok(Some(s));
        }
        for _ in 0..len {
            self.u8()?;
        }
        Ok(None)
    }

    /// Malformed unless `len` more bytes fit before the handshake offset `end`.
    fn fits(&self, len: usize, end: usize) -> Res<()> {
        if end.saturating_sub(self.n) < len {
            return Err(Stop::Malformed);
        }
        Ok(())
    }
}

fn client_hello(buf: &[u8]) -> Res<Request<'_>> {
    let mut t = Tls {
        buf,
        pos: 0,
        frag_end: 0,
        n: 0,
    };
    if t.u8()? != TLS_CLIENT_HELLO {
        return Err(Stop::Malformed);
    }
    let len = usize::from(t.u8()?) << 16 | usize::from(t.u16()?);
    let end = t.n + len;
    let mut r = Request::new(buf, Kind::Tls);

    // legacy_version, random.
    t.fits(2 + 32 + 1, end)?;
    if t.u8()? != 3 {
        return Err(Stop::Malformed);
    }
    t.take(1 + 32)?;
    let sid_len = usize::from(t.u8()?);
    if sid_len > 32 {
        return Err(Stop::Malformed);
    }
    t.fits(sid_len + 2, end)?;
    let sid = t.take(sid_len)?;
    if sid_len > 0 {
        r.session_id = sid;
    }
    let cs_len = usize::from(t.u16()?);
    if cs_len < 2 || cs_len % 2 != 0 {
        return Err(Stop::Malformed);
    }
    t.fits(cs_len + 1, end)?;
    t.take(cs_len)?;
    let comp_len = usize::from(t.u8()?);
    if comp_len == 0 {
        return Err(Stop::Malformed);
    }
    t.fits(comp_len, end)?;
    t.take(comp_len)?;
    // Extensions may be absent before TLS 1.3 (RFC 5246 7.4.1.2).
    if t.n < end {
        t.fits(2, end)?;
        let ext_len = usize::from(t.u16()?);
        if end.saturating_sub(t.n) != ext_len {
            return Err(Stop::Malformed);
        }
        let (mut seen_sni, mut seen_ticket) = (false, false);
        while t.n < end {
            t.fits(4, end)?;
            let ty = t.u16()?;
            let len = usize::from(t.u16()?);
            t.fits(len, end)?;
            match ty {
                EXT_SERVER_NAME => {
                    if seen_sni {
                        return Err(Stop::Malformed);
                    }
                    seen_sni = true;
                    r.sni = server_name(&mut t, len)?;
                }
                EXT_SESSION_TICKET => {
                    if seen_ticket {
                        return Err(Stop::Malformed);
                    }
                    seen_ticket = true;
                    r.ticket = len > 0;
                    t.take(len)?;
                }
                _ => {
                    t.take(len)?;
                }
            }
        }
    }
    r.header_len = t.pos;
    Ok(r)
}

/// The host_name of a server_name extension of `len` bytes (RFC 6066 3).
fn server_name(t: &mut Tls<'_>, len: usize) -> Res<Option<Span>> {
    let end = t.n + len;
    t.fits(2, end)?;
    let list_len = usize::from(t.u16()?);
    if list_len == 0 || end.saturating_sub(t.n) != list_len {
        return Err(Stop::Malformed);
    }
    let (mut seen, mut host) = (false, None);
    while t.n < end {
        t.fits(3, end)?;
        let ty = t.u8()?;
        let name_len = usize::from(t.u16()?);
        t.fits(name_len, end)?;
        let name = t.take(name_len)?;
        if ty == 0 {
            if seen || name_len == 0 {
                return Err(Stop::Malformed);
            }
            seen = true;
            host = name;
        }
    }
    Ok(host)
}
