// SPDX-License-Identifier: GPL-2.0

//! STAND-IN for H-parser's request parser (handoff part 2 contract, item 1):
//! exactly the contract's API so that the rules compile; `parse` here knows
//! nothing and answers `Malformed` for everything but a proper prefix of the
//! HTTP/2 preface (`Incomplete`) and the preface itself (`Complete(Http2)`).
//! The lead takes H-parser's version of this file at merge.

/// The most header bytes a decision reads.
pub const MAX_HEADER: usize = 16384;

/// What the request is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Http1,
    Http2,
    Tls,
}

/// A parsed request: ranges into the input, no allocation.
pub struct Request<'a> {
    kind: Kind,
    input: &'a [u8],
}

impl<'a> Request<'a> {
    /// What the request is.
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// HTTP/1: the method.
    pub fn method(&self) -> Option<&'a [u8]> {
        None
    }
    /// HTTP/1: the path of the request target, query included.
    pub fn path(&self) -> Option<&'a [u8]> {
        None
    }
    /// HTTP/1: Host, without port or surrounding whitespace.
    pub fn host(&self) -> Option<&'a [u8]> {
        None
    }
    /// The first cookie of that name over all Cookie headers.
    pub fn cookie(&self, _name: &[u8]) -> Option<&'a [u8]> {
        None
    }
    /// TLS: server_name (host_name).
    pub fn sni(&self) -> Option<&'a [u8]> {
        None
    }
    /// TLS: legacy_session_id when non-empty.
    pub fn session_id(&self) -> Option<&'a [u8]> {
        None
    }
    /// TLS: a session_ticket extension with data.
    pub fn has_ticket(&self) -> bool {
        false
    }
    /// Bytes of input the decision used.
    pub fn header_len(&self) -> usize {
        self.input.len()
    }
}

/// The outcome of [`parse`].
pub enum Parse<'a> {
    Complete(Request<'a>),
    Incomplete,
    Malformed,
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Stand-in: see the module's documentation.
pub fn parse(buf: &[u8]) -> Parse<'_> {
    if buf.len() >= PREFACE.len() && buf.starts_with(PREFACE) {
        Parse::Complete(Request {
            kind: Kind::Http2,
            input: &buf[..PREFACE.len()],
        })
    } else if PREFACE.starts_with(buf) {
        Parse::Incomplete
    } else {
        Parse::Malformed
    }
}
