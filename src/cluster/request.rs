// SPDX-License-Identifier: GPL-2.0

//! STAND-IN of H-parser's request parser (contract item 1 of issue 11's
//! part 2): the same API, minimal behaviour, so that the hold builds and
//! runs before the real parser lands. The lead takes H-parser's file at the
//! merge. It says `Complete` at the end of an HTTP/1 header block ("\r\n\r\n"),
//! at the HTTP/2 preface, and at the end of a TLS record that starts with a
//! handshake; it extracts nothing.

/// The most header bytes a decision reads.
pub const MAX_HEADER: usize = 16384;

/// What the connection speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// HTTP/1.0 or 1.1.
    Http1,
    /// The HTTP/2 preface.
    Http2,
    /// A TLS ClientHello.
    Tls,
}

/// A complete request's header.
pub struct Request<'a> {
    kind: Kind,
    buf: &'a [u8],
    len: usize,
}

impl<'a> Request<'a> {
    /// What the connection speaks.
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// HTTP/1 method (stand-in: none).
    pub fn method(&self) -> Option<&'a [u8]> {
        None
    }
    /// HTTP/1 path (stand-in: none).
    pub fn path(&self) -> Option<&'a [u8]> {
        None
    }
    /// HTTP/1 Host (stand-in: none).
    pub fn host(&self) -> Option<&'a [u8]> {
        None
    }
    /// A cookie (stand-in: none).
    pub fn cookie(&self, _name: &[u8]) -> Option<&'a [u8]> {
        None
    }
    /// TLS SNI (stand-in: none).
    pub fn sni(&self) -> Option<&'a [u8]> {
        None
    }
    /// TLS session id (stand-in: none).
    pub fn session_id(&self) -> Option<&'a [u8]> {
        None
    }
    /// TLS session ticket (stand-in: false).
    pub fn has_ticket(&self) -> bool {
        false
    }
    /// Bytes of input the decision used.
    pub fn header_len(&self) -> usize {
        let _ = self.buf;
        self.len
    }
}

/// The parser's answer.
pub enum Parse<'a> {
    /// The header is complete.
    Complete(Request<'a>),
    /// More bytes are needed.
    Incomplete,
    /// Not a request the parser understands.
    Malformed,
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Parses the first request of `buf`.
pub fn parse(buf: &[u8]) -> Parse<'_> {
    let done = |kind, len| Parse::Complete(Request { kind, buf, len });
    if buf.is_empty() {
        return Parse::Incomplete;
    }
    if buf[0] == 0x16 {
        if buf.len() < 5 {
            return Parse::Incomplete;
        }
        let len = 5 + usize::from(u16::from_be_bytes([buf[3], buf[4]]));
        return if buf.len() >= len {
            done(Kind::Tls, len)
        } else {
            Parse::Incomplete
        };
    }
    let n = buf.len().min(PREFACE.len());
    if buf[..n] == PREFACE[..n] {
        return if n == PREFACE.len() {
            done(Kind::Http2, n)
        } else {
            Parse::Incomplete
        };
    }
    match buf.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => done(Kind::Http1, i + 4),
        None if !buf[0].is_ascii_alphabetic() => Parse::Malformed,
        None => Parse::Incomplete,
    }
}
