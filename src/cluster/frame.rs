// SPDX-License-Identifier: GPL-2.0

//! The control channel's frames: header, TLV payload, tag, and the typed
//! messages they carry.
//!
//! A frame is a 32-byte big-endian [`Header`], `length` bytes of payload
//! made of TLVs (u16 type, u16 value length, the value, zero padding to a
//! multiple of 4), then a [`TAG_LEN`]-byte HMAC-SHA256 tag over header and
//! payload. Everything here is pure: no allocation, no `unsafe`, no panic
//! on any input (the host tests fuzz it). The MAC itself is the caller's
//! (the kernel crypto API in the module, a crate in the host tests),
//! behind the [`Mac`] trait.
//!
//! Reading a stream: a [`FrameReader`] assembles frames in a caller-owned
//! buffer of [`FRAME_MAX`] bytes, rejecting a bad header before reading
//! its payload; [`Frame::verify`] checks the tag; [`check_hello`] (the
//! handshake) or [`check_frame`] (sender, key id, and the sequence number
//! through an [`RxSeq`]) check the header; then [`Msg::of`] decodes the
//! payload.
//! Writing: [`write_frame`] encodes a message, its header and its tag.

use core::fmt;

/// `"SGC1"`.
pub const MAGIC: u32 = 0x5347_4331;
/// The only version this code speaks.
pub const VERSION: u8 = 1;
/// Bytes in a header.
pub const HEADER_LEN: usize = 32;
/// Bytes in a tag (HMAC-SHA256).
pub const TAG_LEN: usize = 32;
/// The largest payload a frame may carry.
pub const MAX_PAYLOAD: usize = 32768;
/// The largest frame: the size of a [`FrameReader`]'s buffer.
pub const FRAME_MAX: usize = HEADER_LEN + MAX_PAYLOAD + TAG_LEN;
/// Bytes in a HELLO nonce.
pub const NONCE_LEN: usize = 16;
/// Bytes of a TLV's header (type and length).
pub const TLV_HEADER_LEN: usize = 4;
/// The most entries one TRANSFER carries.
pub const MAX_TRANSFER_ENTRIES: usize = 256;
/// The label at the start of the session key derivation's input.
pub const SESSION_LABEL: &[u8; 20] = b"sockgroup-session-v1";
/// The only key id in use: the pair's key for HELLO, the session key after.
pub const KEY_ID: u32 = 0;
/// Bytes of the session key derivation's input ([`session_key_input`]).
pub const SESSION_INPUT_LEN: usize = SESSION_LABEL.len() + 4 + 4 + 2 * NONCE_LEN;

/// Why a frame or a message is refused. Any of them closes the connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// Fewer bytes than a header.
    Short,
    /// The header's magic is not [`MAGIC`].
    BadMagic,
    /// The header's version is not [`VERSION`].
    BadVersion,
    /// The header's type is none of [`MsgType`].
    BadType,
    /// The header's flags are not 0.
    BadFlags,
    /// The header's reserved word is not 0.
    BadReserved,
    /// The header's length is over [`MAX_PAYLOAD`] (or the caller's buffer).
    TooLong,
    /// A TLV's header or value (with its padding) runs past the payload.
    TruncatedTlv,
    /// A TLV's padding is not zero.
    BadPadding,
    /// A known TLV has the wrong length or an invalid value.
    BadValue(u16),
    /// A known TLV appears twice in one message.
    Duplicate(u16),
    /// A mandatory TLV is missing.
    Missing(u16),
    /// Too many entries (TRANSFER).
    TooMany,
    /// The encoder's buffer is full, or a value is too long for a TLV.
    NoRoom,
    /// The payload's message type is not the one decoded.
    WrongType,
    /// The tag does not match.
    BadTag,
    /// The MAC could not be computed.
    Mac,
    /// The sequence number is not the one expected.
    BadSeq,
    /// HELLO after the handshake, or another type before it.
    Unexpected,
    /// The sender, or a HELLO's receiver, is not the node expected.
    WrongPeer,
    /// The key id is not [`KEY_ID`].
    BadKeyId,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Short => f.write_str("short header"),
            FrameError::BadMagic => f.write_str("bad magic"),
            FrameError::BadVersion => f.write_str("bad version"),
            FrameError::BadType => f.write_str("bad type"),
            FrameError::BadFlags => f.write_str("flags not zero"),
            FrameError::BadReserved => f.write_str("reserved not zero"),
            FrameError::TooLong => f.write_str("payload too long"),
            FrameError::TruncatedTlv => f.write_str("truncated TLV"),
            FrameError::BadPadding => f.write_str("TLV padding not zero"),
            FrameError::BadValue(t) => write!(f, "bad value of TLV {t}"),
            FrameError::Duplicate(t) => write!(f, "TLV {t} twice"),
            FrameError::Missing(t) => write!(f, "TLV {t} missing"),
            FrameError::TooMany => f.write_str("too many entries"),
            FrameError::NoRoom => f.write_str("no room"),
            FrameError::WrongType => f.write_str("wrong message type"),
            FrameError::BadTag => f.write_str("bad tag"),
            FrameError::Mac => f.write_str("MAC failed"),
            FrameError::BadSeq => f.write_str("bad sequence number"),
            FrameError::Unexpected => f.write_str("unexpected message"),
            FrameError::WrongPeer => f.write_str("wrong peer"),
            FrameError::BadKeyId => f.write_str("bad key id"),
        }
    }
}

/// A frame's type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum MsgType {
    /// Handshake: nonce, receiver, capabilities, heartbeat interval.
    Hello = 1,
    /// Liveness.
    Heartbeat = 2,
    /// A front-end hands a connection to a back-end.
    HandoffReq = 3,
    /// The back-end took it.
    HandoffAck = 4,
    /// The back-end refused it.
    HandoffNack = 5,
    /// The back-end saw the connection end.
    Term = 6,
    /// An owner tells the backup about a connection.
    ConnSync = 7,
    /// A connection ended.
    ConnEnd = 8,
    /// Entries handed over after a membership change.
    Transfer = 9,
    /// The receiver of a TRANSFER took its entries.
    TransferAck = 10,
}

impl MsgType {
    /// Every type, in wire order.
    pub const ALL: [MsgType; 10] = [
        MsgType::Hello,
        MsgType::Heartbeat,
        MsgType::HandoffReq,
        MsgType::HandoffAck,
        MsgType::HandoffNack,
        MsgType::Term,
        MsgType::ConnSync,
        MsgType::ConnEnd,
        MsgType::Transfer,
        MsgType::TransferAck,
    ];
}

impl TryFrom<u8> for MsgType {
    type Error = FrameError;

    fn try_from(v: u8) -> Result<Self, FrameError> {
        match v {
            1..=10 => Ok(MsgType::ALL[usize::from(v) - 1]),
            _ => Err(FrameError::BadType),
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_be_bytes(a)
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// A frame's header, without the fields that must be zero (flags,
/// reserved) and the constants (magic, version).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    /// The message type.
    pub msg_type: MsgType,
    /// Payload bytes, at most [`MAX_PAYLOAD`].
    pub length: u32,
    /// The sender's node id.
    pub sender: u32,
    /// The per-direction sequence number (HELLO: 0).
    pub seq: u64,
    /// Which key tags the frame (0 for now; the channel checks it).
    pub key_id: u32,
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        b[4] = VERSION;
        b[5] = self.msg_type as u8;
        // b[6..8]: flags, 0.
        b[8..12].copy_from_slice(&self.length.to_be_bytes());
        b[12..16].copy_from_slice(&self.sender.to_be_bytes());
        b[16..24].copy_from_slice(&self.seq.to_be_bytes());
        b[24..28].copy_from_slice(&self.key_id.to_be_bytes());
        // b[28..32]: reserved, 0.
        b
    }

    /// Parses and checks the first [`HEADER_LEN`] bytes of `b`.
    pub fn decode(b: &[u8]) -> Result<Header, FrameError> {
        if b.len() < HEADER_LEN {
            return Err(FrameError::Short);
        }
        if be32(b, 0) != MAGIC {
            return Err(FrameError::BadMagic);
        }
        if b[4] != VERSION {
            return Err(FrameError::BadVersion);
        }
        let msg_type = MsgType::try_from(b[5])?;
        if be16(b, 6) != 0 {
            return Err(FrameError::BadFlags);
        }
        let length = be32(b, 8);
        if length as usize > MAX_PAYLOAD {
            return Err(FrameError::TooLong);
        }
        if be32(b, 28) != 0 {
            return Err(FrameError::BadReserved);
        }
        Ok(Header {
            msg_type,
            length,
            sender: be32(b, 12),
            seq: be64(b, 16),
            key_id: be32(b, 24),
        })
    }
}

/// The MAC could not be computed (e.g. the kernel's crypto call failed).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MacError;

impl From<MacError> for FrameError {
    fn from(_: MacError) -> Self {
        FrameError::Mac
    }
}

/// HMAC-SHA256 under one key, provided by the caller.
pub trait Mac {
    /// The tag of the concatenation of `parts`. An error refuses the frame.
    fn tag(&self, parts: &[&[u8]]) -> Result<[u8; TAG_LEN], MacError>;
}

/// Whether `a == b`, in a time that depends on the lengths only.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= core::hint::black_box(x ^ y);
    }
    core::hint::black_box(diff) == 0
}

/// The input of the session key derivation: `Ks = HMAC(K, input)`.
pub fn session_key_input(
    connector: u32,
    acceptor: u32,
    connector_nonce: &[u8; NONCE_LEN],
    acceptor_nonce: &[u8; NONCE_LEN],
) -> [u8; SESSION_INPUT_LEN] {
    let mut b = [0u8; SESSION_INPUT_LEN];
    let l = SESSION_LABEL.len();
    b[..l].copy_from_slice(SESSION_LABEL);
    b[l..l + 4].copy_from_slice(&connector.to_be_bytes());
    b[l + 4..l + 8].copy_from_slice(&acceptor.to_be_bytes());
    b[l + 8..l + 8 + NONCE_LEN].copy_from_slice(connector_nonce);
    b[l + 8 + NONCE_LEN..].copy_from_slice(acceptor_nonce);
    b
}

/// The session key, `HMAC(K, session_key_input(..))`, with `mac` keyed
/// with the pair's configured key `K`.
pub fn derive_session_key<M: Mac + ?Sized>(
    mac: &M,
    connector: u32,
    acceptor: u32,
    connector_nonce: &[u8; NONCE_LEN],
    acceptor_nonce: &[u8; NONCE_LEN],
) -> Result<[u8; TAG_LEN], FrameError> {
    let input = session_key_input(connector, acceptor, connector_nonce, acceptor_nonce);
    mac.tag(&[&input]).map_err(FrameError::from)
}

/// A complete frame in a buffer: the header checked, the tag not yet.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// The parsed header.
    pub header: Header,
    bytes: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Splits a whole frame (header, payload, tag; nothing after) in `b`.
    pub fn parse(b: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        let header = Header::decode(b)?;
        if b.len() != HEADER_LEN + header.length as usize + TAG_LEN {
            return Err(FrameError::TooLong);
        }
        Ok(Frame { header, bytes: b })
    }

    /// The payload.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..self.bytes.len() - TAG_LEN]
    }

    /// Header and payload: what the tag covers.
    pub fn authenticated(&self) -> &'a [u8] {
        &self.bytes[..self.bytes.len() - TAG_LEN]
    }

    /// The tag received.
    pub fn tag(&self) -> &'a [u8] {
        &self.bytes[self.bytes.len() - TAG_LEN..]
    }

    /// The whole frame's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Checks the tag under `mac`'s key, in constant time.
    pub fn verify<M: Mac + ?Sized>(&self, mac: &M) -> Result<(), FrameError> {
        let want = mac.tag(&[self.authenticated()])?;
        if ct_eq(&want, self.tag()) {
            Ok(())
        } else {
            Err(FrameError::BadTag)
        }
    }
}

/// Where a [`FrameReader`] is in the current frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ReadState {
    /// Reading the header.
    Header,
    /// Reading payload and tag of a frame of this many bytes in all.
    Body(usize),
    /// A bad header was seen: the stream is dead.
    Failed(FrameError),
}

/// Assembles frames from a byte stream in a caller-owned buffer.
///
/// The reader holds no buffer, only how far the current frame is: the
/// caller passes the same buffer (at least [`FRAME_MAX`] bytes) to every
/// call. The header is checked as soon as its 32 bytes are in, so a bad
/// header or an oversized length is refused before any payload byte is
/// asked for. Bytes are never asked for past the current frame: a frame
/// complete in the buffer starts at its first byte.
///
/// Receiving straight into the buffer: write into [`Self::unfilled`], then
/// call [`Self::advance`] with how many bytes were written. Or copy from
/// elsewhere with [`Self::feed`].
#[derive(Clone, Copy, Debug)]
pub struct FrameReader {
    filled: usize,
    state: ReadState,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameReader {
    /// A reader at the start of a frame.
    pub const fn new() -> Self {
        FrameReader {
            filled: 0,
            state: ReadState::Header,
        }
    }

    /// How many bytes the current frame needs in all, as far as known.
    fn need(&self) -> usize {
        match self.state {
            ReadState::Header => HEADER_LEN,
            ReadState::Body(n) => n,
            ReadState::Failed(_) => 0,
        }
    }

    /// Whether a bad header was seen (every later call fails).
    pub fn failed(&self) -> bool {
        matches!(self.state, ReadState::Failed(_))
    }

    /// Bytes of the current frame already in the buffer.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Where the next bytes go: the rest of the current stage (header, or
    /// payload and tag) in `buf`. Empty after a failure or if `buf` is too
    /// short.
    pub fn unfilled<'b>(&self, buf: &'b mut [u8]) -> &'b mut [u8] {
        let need = self.need().min(buf.len());
        let start = self.filled.min(need);
        &mut buf[start..need]
    }

    /// Records that the first `n` bytes of [`Self::unfilled`] were written;
    /// returns the frame if it is complete. The next call starts the next
    /// frame at the start of `buf`, so the caller is done with a frame
    /// before it writes more.
    pub fn advance<'b>(
        &mut self,
        buf: &'b [u8],
        n: usize,
    ) -> Result<Option<Frame<'b>>, FrameError> {
        if let ReadState::Failed(e) = self.state {
            return Err(e);
        }
        let need = self.need();
        if n > need - self.filled || need > buf.len() {
            return self.fail(FrameError::TooLong);
        }
        self.filled += n;
        if self.filled < need {
            return Ok(None);
        }
        if self.state == ReadState::Header {
            let header = match Header::decode(&buf[..HEADER_LEN]) {
                Ok(h) => h,
                Err(e) => return self.fail(e),
            };
            let total = HEADER_LEN + header.length as usize + TAG_LEN;
            if total > buf.len() {
                return self.fail(FrameError::TooLong);
            }
            self.state = ReadState::Body(total);
            return Ok(None);
        }
        let frame = Frame::parse(&buf[..need]);
        *self = FrameReader::new();
        frame.map(Some)
    }

    fn fail<T>(&mut self, e: FrameError) -> Result<T, FrameError> {
        self.state = ReadState::Failed(e);
        Err(e)
    }

    /// Copies from `data` as much as the current frame needs and advances.
    /// Returns how many bytes of `data` were used, and the frame if it is
    /// complete; call again with the rest of `data`.
    pub fn feed<'b>(
        &mut self,
        buf: &'b mut [u8],
        data: &[u8],
    ) -> (usize, Result<Option<Frame<'b>>, FrameError>) {
        let room = self.unfilled(buf);
        let n = room.len().min(data.len());
        room[..n].copy_from_slice(&data[..n]);
        let buf: &'b [u8] = buf;
        (n, self.advance(buf, n))
    }
}

/// The receive side's sequence check: HELLO with seq 0 first, then every
/// other type with seq 1, 2, 3...
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RxSeq {
    /// The last sequence number accepted; `None` before the HELLO.
    last: Option<u64>,
}

impl RxSeq {
    /// Before the HELLO.
    pub const fn new() -> Self {
        RxSeq { last: None }
    }

    /// Accepts `header` if its type and sequence number are the ones
    /// expected next, and records it.
    pub fn check(&mut self, header: &Header) -> Result<(), FrameError> {
        let next = match self.last {
            None if header.msg_type != MsgType::Hello => return Err(FrameError::Unexpected),
            None => 0,
            Some(_) if header.msg_type == MsgType::Hello => return Err(FrameError::Unexpected),
            Some(last) => last.checked_add(1).ok_or(FrameError::BadSeq)?,
        };
        if header.seq != next {
            return Err(FrameError::BadSeq);
        }
        self.last = Some(next);
        Ok(())
    }

    /// The last sequence number accepted.
    pub fn last(&self) -> Option<u64> {
        self.last
    }
}

/// Which end of a control connection this node is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// The lower id: it connects.
    Connector,
    /// The higher id: it accepts.
    Acceptor,
}

/// Checks a received HELLO (its tag already verified under the pair's
/// key): from `peer` to `own`, the lower id connecting, with [`KEY_ID`]
/// and seq 0 (the latter also checked by [`RxSeq::check`]).
pub fn check_hello(
    role: Role,
    header: &Header,
    hello: &Hello,
    peer: u32,
    own: u32,
) -> Result<(), FrameError> {
    if header.msg_type != MsgType::Hello || header.seq != 0 {
        return Err(FrameError::Unexpected);
    }
    if header.key_id != KEY_ID {
        return Err(FrameError::BadKeyId);
    }
    let order = match role {
        Role::Acceptor => peer < own,
        Role::Connector => own < peer,
    };
    if header.sender != peer || hello.receiver != own || !order {
        return Err(FrameError::WrongPeer);
    }
    Ok(())
}

/// Checks a received frame's header (its tag already verified) before
/// its payload is acted on: from `peer`, with [`KEY_ID`], and the next
/// sequence number, which `rx` then records.
pub fn check_frame(rx: &mut RxSeq, header: &Header, peer: u32) -> Result<(), FrameError> {
    if header.sender != peer {
        return Err(FrameError::WrongPeer);
    }
    if header.key_id != KEY_ID {
        return Err(FrameError::BadKeyId);
    }
    rx.check(header)
}

/// The send side's sequence numbers: 0 for the HELLO, then 1, 2, 3...
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TxSeq {
    next: u64,
}

impl TxSeq {
    /// Before the HELLO.
    pub const fn new() -> Self {
        TxSeq { next: 0 }
    }

    /// The next frame's sequence number (it is used up).
    pub fn take(&mut self) -> u64 {
        let s = self.next;
        self.next = self.next.wrapping_add(1);
        s
    }
}

/// One TLV of a payload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tlv<'a> {
    /// Its type.
    pub ty: u16,
    /// Its value, without padding.
    pub value: &'a [u8],
}

/// The value length padded to 4.
const fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// The TLVs of a payload, in order. Yields an error (and then nothing) at
/// a truncated or overlong TLV or non-zero padding.
#[derive(Clone, Debug)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> TlvIter<'a> {
    /// The TLVs of `payload`.
    pub fn new(payload: &'a [u8]) -> Self {
        TlvIter {
            rest: payload,
            failed: false,
        }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let r = self.rest;
        let err = |s: &mut Self, e| {
            s.failed = true;
            Some(Err(e))
        };
        if r.len() < TLV_HEADER_LEN {
            return err(self, FrameError::TruncatedTlv);
        }
        let ty = be16(r, 0);
        let len = usize::from(be16(r, 2));
        let end = TLV_HEADER_LEN + padded(len);
        if end > r.len() {
            return err(self, FrameError::TruncatedTlv);
        }
        if r[TLV_HEADER_LEN + len..end].iter().any(|&b| b != 0) {
            return err(self, FrameError::BadPadding);
        }
        self.rest = &r[end..];
        Some(Ok(Tlv {
            ty,
            value: &r[TLV_HEADER_LEN..TLV_HEADER_LEN + len],
        }))
    }
}

/// Appends TLVs to a caller's buffer, never past its end nor past
/// [`MAX_PAYLOAD`]. A failed put leaves the written bytes as they were.
#[derive(Debug)]
pub struct TlvWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> TlvWriter<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        TlvWriter { buf, len: 0 }
    }

    fn limit(&self) -> usize {
        self.buf.len().min(MAX_PAYLOAD)
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Reserves a TLV header and `len` value bytes (padded, zeroed);
    /// returns where the value starts.
    fn reserve(&mut self, ty: u16, len: usize) -> Result<usize, FrameError> {
        let len16 = u16::try_from(len).map_err(|_| FrameError::NoRoom)?;
        let end = self
            .len
            .checked_add(TLV_HEADER_LEN + padded(len))
            .ok_or(FrameError::NoRoom)?;
        if end > self.limit() {
            return Err(FrameError::NoRoom);
        }
        let at = self.len;
        self.buf[at..at + 2].copy_from_slice(&ty.to_be_bytes());
        self.buf[at + 2..at + 4].copy_from_slice(&len16.to_be_bytes());
        self.buf[at + TLV_HEADER_LEN..end].fill(0);
        self.len = end;
        Ok(at + TLV_HEADER_LEN)
    }

    /// Appends a TLV.
    pub fn put(&mut self, ty: u16, value: &[u8]) -> Result<(), FrameError> {
        let at = self.reserve(ty, value.len())?;
        self.buf[at..at + value.len()].copy_from_slice(value);
        Ok(())
    }

    /// Appends a TLV with no value (a flag).
    pub fn put_flag(&mut self, ty: u16) -> Result<(), FrameError> {
        self.put(ty, &[])
    }

    /// Appends a u8 TLV.
    pub fn put_u8(&mut self, ty: u16, v: u8) -> Result<(), FrameError> {
        self.put(ty, &[v])
    }

    /// Appends a big-endian u16 TLV.
    pub fn put_u16(&mut self, ty: u16, v: u16) -> Result<(), FrameError> {
        self.put(ty, &v.to_be_bytes())
    }

    /// Appends a big-endian u32 TLV.
    pub fn put_u32(&mut self, ty: u16, v: u32) -> Result<(), FrameError> {
        self.put(ty, &v.to_be_bytes())
    }

    /// Appends a big-endian u64 TLV.
    pub fn put_u64(&mut self, ty: u16, v: u64) -> Result<(), FrameError> {
        self.put(ty, &v.to_be_bytes())
    }

    /// Appends a TLV whose value is the TLVs `f` writes.
    pub fn nested(
        &mut self,
        ty: u16,
        f: impl FnOnce(&mut TlvWriter<'_>) -> Result<(), FrameError>,
    ) -> Result<(), FrameError> {
        let start = self.len;
        let limit = self.limit();
        if start + TLV_HEADER_LEN > limit {
            return Err(FrameError::NoRoom);
        }
        let inner_len = {
            let mut inner = TlvWriter::new(&mut self.buf[start + TLV_HEADER_LEN..limit]);
            f(&mut inner)?;
            inner.len
        };
        let len16 = u16::try_from(inner_len).map_err(|_| FrameError::NoRoom)?;
        self.buf[start..start + 2].copy_from_slice(&ty.to_be_bytes());
        self.buf[start + 2..start + 4].copy_from_slice(&len16.to_be_bytes());
        // Nested TLVs are padded already: inner_len is a multiple of 4.
        self.len = start + TLV_HEADER_LEN + inner_len;
        Ok(())
    }
}

/// TLV types. One numbering for all messages.
pub mod attr {
    /// [`super::Tuple`], 40 bytes.
    pub const TUPLE: u16 = 1;
    /// HELLO nonce, 16 bytes.
    pub const NONCE: u16 = 2;
    /// HELLO receiver id, u32.
    pub const RECEIVER: u16 = 3;
    /// HELLO capabilities, u32.
    pub const CAPS: u16 = 4;
    /// HELLO heartbeat interval in ms, u32.
    pub const HB_INTERVAL: u16 = 5;
    /// HEARTBEAT membership generation, u64.
    pub const GENERATION: u16 = 6;
    /// HEARTBEAT uptime in ms, u64.
    pub const UPTIME: u16 = 7;
    /// The client's initial sequence number, u32.
    pub const CLIENT_ISN: u16 = 8;
    /// The front-end's initial sequence number, u32.
    pub const SERVER_ISN: u16 = 9;
    /// The client's MSS, u16.
    pub const MSS: u16 = 10;
    /// Window scale: client's then front-end's shift, 2 bytes.
    pub const WSCALE: u16 = 11;
    /// SACK permitted, flag.
    pub const SACK_OK: u16 = 12;
    /// Timestamps: client TSval, fe TSval now, offset; 3 x u32.
    pub const TIMESTAMPS: u16 = 13;
    /// ECN negotiated, flag.
    pub const ECN: u16 = 14;
    /// The client's last window, unscaled, u32.
    pub const CLIENT_WINDOW: u16 = 15;
    /// Smoothed RTT in microseconds, u32.
    pub const RTT: u16 = 16;
    /// The request bytes read so far.
    pub const REQUEST: u16 = 17;
    /// The back-end's initial sequence number, u32.
    pub const BACKEND_ISN: u16 = 18;
    /// The back-end socket's TCP state, u8.
    pub const STATE: u16 = 19;
    /// A reason code, u32.
    pub const REASON: u16 = 20;
    /// Owner node id, u32.
    pub const OWNER: u16 = 21;
    /// Backup node id, u32.
    pub const BACKUP: u16 = 22;
    /// Back-end node id, u32.
    pub const BACKEND: u16 = 23;
    /// One TRANSFER entry, nested CONN_SYNC TLVs.
    pub const ENTRY: u16 = 24;
    /// The service a connection belongs to, u32.
    pub const SERVICE: u16 = 25;
    /// Where a connection is served ([`super::Placement`]), u8.
    pub const PLACEMENT: u16 = 26;
    /// A TRANSFER's number, which its TRANSFER_ACK echoes, u32.
    pub const BATCH: u16 = 27;
    /// How many entries of a TRANSFER were taken, u32.
    pub const ACCEPTED: u16 = 28;
}

/// HANDOFF_NACK reasons (other values are passed through).
pub mod nack {
    /// No listener for the service on the back-end.
    pub const NO_LISTENER: u32 = 1;
    /// Out of memory or another local limit.
    pub const NO_RESOURCES: u32 = 2;
    /// The back-end refuses handoffs (policy or configuration).
    pub const REFUSED: u32 = 3;
    /// The request was inconsistent.
    pub const INVALID: u32 = 4;
}

/// TERM reasons (other values are passed through).
pub mod term {
    /// Closed with FIN (from the back-end).
    pub const FIN: u32 = 1;
    /// Reset (from the back-end).
    pub const RST: u32 = 2;
    /// Timed out: from the front-end, which gave up waiting for the
    /// back-end's answer (its hold-timeout passed, or the answer came for a
    /// connection it no longer holds) and serves the connection itself;
    /// the back-end must drop it.
    pub const TIMEOUT: u32 = 3;
}

/// An address family on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    /// IPv4: the address in the first 4 bytes, the rest zero.
    V4,
    /// IPv6.
    V6,
}

/// Bytes of an encoded [`Tuple`].
pub const TUPLE_LEN: usize = 40;

/// A TCP connection as the client sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tuple {
    /// The family of both addresses.
    pub family: Family,
    /// The client's address (IPv4 in the first 4 bytes).
    pub client: [u8; 16],
    /// The address the client connected to.
    pub server: [u8; 16],
    /// The client's port.
    pub client_port: u16,
    /// The port the client connected to.
    pub server_port: u16,
}

impl Tuple {
    /// Wire layout: family (4 or 6), 3 zero bytes, client address,
    /// server address, client port, server port.
    pub fn encode(&self) -> [u8; TUPLE_LEN] {
        let mut b = [0u8; TUPLE_LEN];
        b[0] = match self.family {
            Family::V4 => 4,
            Family::V6 => 6,
        };
        b[4..20].copy_from_slice(&self.client);
        b[20..36].copy_from_slice(&self.server);
        b[36..38].copy_from_slice(&self.client_port.to_be_bytes());
        b[38..40].copy_from_slice(&self.server_port.to_be_bytes());
        b
    }

    /// Parses [`Self::encode`]'s layout; an IPv4 tuple must have zeros
    /// past its addresses.
    pub fn decode(b: &[u8]) -> Result<Tuple, FrameError> {
        let bad = FrameError::BadValue(attr::TUPLE);
        if b.len() != TUPLE_LEN || b[1..4] != [0, 0, 0] {
            return Err(bad);
        }
        let family = match b[0] {
            4 => Family::V4,
            6 => Family::V6,
            _ => return Err(bad),
        };
        let mut client = [0u8; 16];
        let mut server = [0u8; 16];
        client.copy_from_slice(&b[4..20]);
        server.copy_from_slice(&b[20..36]);
        if family == Family::V4 && (client[4..].iter().chain(&server[4..]).any(|&x| x != 0)) {
            return Err(bad);
        }
        Ok(Tuple {
            family,
            client,
            server,
            client_port: be16(b, 36),
            server_port: be16(b, 38),
        })
    }
}

/// A message that can be sent.
pub trait Encode {
    /// The header's type for it.
    const TYPE: MsgType;
    /// Appends its TLVs.
    fn encode(&self, w: &mut TlvWriter<'_>) -> Result<(), FrameError>;
}

/// A message that can be received.
pub trait Decode<'a>: Sized {
    /// Parses a payload: unknown TLVs are skipped; a missing mandatory
    /// one, a duplicate or a bad value is an error.
    fn decode(payload: &'a [u8]) -> Result<Self, FrameError>;
}

/// Writes a whole frame for `msg` into `buf` (at least [`FRAME_MAX`]
/// bytes, or as much as the message needs): header, payload, and the tag
/// under `mac`. Returns the frame's length.
pub fn write_frame<M: Mac + ?Sized, T: Encode>(
    buf: &mut [u8],
    sender: u32,
    seq: u64,
    key_id: u32,
    msg: &T,
    mac: &M,
) -> Result<usize, FrameError> {
    if buf.len() < HEADER_LEN + TAG_LEN {
        return Err(FrameError::NoRoom);
    }
    let body_end = buf.len() - TAG_LEN;
    let length = {
        let mut w = TlvWriter::new(&mut buf[HEADER_LEN..body_end]);
        msg.encode(&mut w)?;
        w.len()
    };
    let header = Header {
        msg_type: T::TYPE,
        length: length as u32,
        sender,
        seq,
        key_id,
    };
    buf[..HEADER_LEN].copy_from_slice(&header.encode());
    let end = HEADER_LEN + length;
    let tag = mac.tag(&[&buf[..end]])?;
    buf[end..end + TAG_LEN].copy_from_slice(&tag);
    Ok(end + TAG_LEN)
}

/// Stores a value seen once.
fn once<T>(slot: &mut Option<T>, ty: u16, v: T) -> Result<(), FrameError> {
    if slot.is_some() {
        return Err(FrameError::Duplicate(ty));
    }
    *slot = Some(v);
    Ok(())
}

fn need<T>(slot: Option<T>, ty: u16) -> Result<T, FrameError> {
    slot.ok_or(FrameError::Missing(ty))
}

fn fixed<const N: usize>(t: &Tlv<'_>) -> Result<[u8; N], FrameError> {
    let mut a = [0u8; N];
    if t.value.len() != N {
        return Err(FrameError::BadValue(t.ty));
    }
    a.copy_from_slice(t.value);
    Ok(a)
}

/// A value that is one TLV of fixed size.
trait Field: Sized {
    fn put(&self, w: &mut TlvWriter<'_>, ty: u16) -> Result<(), FrameError>;
    fn get(t: &Tlv<'_>) -> Result<Self, FrameError>;
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn put(&self, w: &mut TlvWriter<'_>, ty: u16) -> Result<(), FrameError> {
                w.put(ty, &self.to_be_bytes())
            }

            fn get(t: &Tlv<'_>) -> Result<Self, FrameError> {
                fixed(t).map(<$t>::from_be_bytes)
            }
        }
    )*};
}

int_field!(u8, u16, u32, u64);

impl<const N: usize> Field for [u8; N] {
    fn put(&self, w: &mut TlvWriter<'_>, ty: u16) -> Result<(), FrameError> {
        w.put(ty, self)
    }

    fn get(t: &Tlv<'_>) -> Result<Self, FrameError> {
        fixed(t)
    }
}

impl Field for Tuple {
    fn put(&self, w: &mut TlvWriter<'_>, ty: u16) -> Result<(), FrameError> {
        w.put(ty, &self.encode())
    }

    fn get(t: &Tlv<'_>) -> Result<Self, FrameError> {
        Tuple::decode(t.value)
    }
}

/// A zero-length TLV: present or not.
fn v_flag(t: &Tlv<'_>) -> Result<(), FrameError> {
    fixed::<0>(t).map(|_| ())
}

/// Defines a message whose fields are all mandatory TLVs of fixed size,
/// with its [`Encode`] and [`Decode`].
macro_rules! message {
    (
        $(#[$m:meta])*
        $name:ident = $ty:ident {
            $($(#[$fm:meta])* $field:ident: $fty:ty = $attr:path,)*
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub struct $name {
            $($(#[$fm])* pub $field: $fty,)*
        }

        impl Encode for $name {
            const TYPE: MsgType = MsgType::$ty;

            fn encode(&self, w: &mut TlvWriter<'_>) -> Result<(), FrameError> {
                $(self.$field.put(w, $attr)?;)*
                Ok(())
            }
        }

        impl<'a> Decode<'a> for $name {
            fn decode(payload: &'a [u8]) -> Result<Self, FrameError> {
                $(let mut $field: Option<$fty> = None;)*
                for t in TlvIter::new(payload) {
                    let t = t?;
                    match t.ty {
                        $($attr => once(&mut $field, t.ty, <$fty>::get(&t)?)?,)*
                        _ => {}
                    }
                }
                Ok($name {
                    $($field: need($field, $attr)?,)*
                })
            }
        }
    };
}

message! {
    /// HELLO: the handshake.
    Hello = Hello {
        /// 16 random bytes.
        nonce: [u8; NONCE_LEN] = attr::NONCE,
        /// The node id the sender means to talk to.
        receiver: u32 = attr::RECEIVER,
        /// The sender's capabilities (bits).
        caps: u32 = attr::CAPS,
        /// The sender's heartbeat interval in ms.
        hb_interval_ms: u32 = attr::HB_INTERVAL,
    }
}

message! {
    /// HEARTBEAT: liveness, with the sender's view of the membership.
    Heartbeat = Heartbeat {
        /// The sender's membership generation.
        generation: u64 = attr::GENERATION,
        /// The sender's channel uptime in ms.
        uptime_ms: u64 = attr::UPTIME,
    }
}

/// The largest window scale shift (RFC 7323).
pub const MAX_WSCALE: u8 = 14;

/// Window scaling, when both sides offered it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WScale {
    /// The client's shift.
    pub client: u8,
    /// The front-end's shift (what it offered in its SYN-ACK).
    pub server: u8,
}

/// Timestamps, when negotiated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Timestamps {
    /// The client's latest TSval.
    pub client_tsval: u32,
    /// The front-end's TSval clock now.
    pub fe_tsval_now: u32,
    /// What the front-end added to its clock in the TSvals it sent.
    pub ts_offset: u32,
}

/// HANDOFF_REQ: the front-end's state of a connection and the request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HandoffReq<'a> {
    /// The connection.
    pub tuple: Tuple,
    /// The client's initial sequence number.
    pub client_isn: u32,
    /// The front-end's initial sequence number.
    pub server_isn: u32,
    /// The client's MSS option.
    pub mss: u16,
    /// Window scaling, if negotiated.
    pub wscale: Option<WScale>,
    /// SACK permitted.
    pub sack_ok: bool,
    /// Timestamps, if negotiated.
    pub timestamps: Option<Timestamps>,
    /// ECN negotiated.
    pub ecn: bool,
    /// The client's last advertised window, unscaled.
    pub client_window: u32,
    /// Smoothed RTT in microseconds (0: unknown).
    pub rtt_us: u32,
    /// The request bytes the front-end read.
    pub request: &'a [u8],
}

impl<'a> Encode for HandoffReq<'a> {
    const TYPE: MsgType = MsgType::HandoffReq;

    fn encode(&self, w: &mut TlvWriter<'_>) -> Result<(), FrameError> {
        w.put(attr::TUPLE, &self.tuple.encode())?;
        w.put_u32(attr::CLIENT_ISN, self.client_isn)?;
        w.put_u32(attr::SERVER_ISN, self.server_isn)?;
        w.put_u16(attr::MSS, self.mss)?;
        if let Some(ws) = self.wscale {
            w.put(attr::WSCALE, &[ws.client, ws.server])?;
        }
        if self.sack_ok {
            w.put_flag(attr::SACK_OK)?;
        }
        if let Some(ts) = self.timestamps {
            let mut b = [0u8; 12];
            b[0..4].copy_from_slice(&ts.client_tsval.to_be_bytes());
            b[4..8].copy_from_slice(&ts.fe_tsval_now.to_be_bytes());
            b[8..12].copy_from_slice(&ts.ts_offset.to_be_bytes());
            w.put(attr::TIMESTAMPS, &b)?;
        }
        if self.ecn {
            w.put_flag(attr::ECN)?;
        }
        w.put_u32(attr::CLIENT_WINDOW, self.client_window)?;
        w.put_u32(attr::RTT, self.rtt_us)?;
        w.put(attr::REQUEST, self.request)
    }
}

impl<'a> Decode<'a> for HandoffReq<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, FrameError> {
        let (mut tuple, mut cisn, mut sisn, mut mss) = (None, None, None, None);
        let (mut wscale, mut sack, mut ts, mut ecn) = (None, None, None, None);
        let (mut win, mut rtt, mut request) = (None, None, None);
        for t in TlvIter::new(payload) {
            let t = t?;
            match t.ty {
                attr::TUPLE => once(&mut tuple, t.ty, Tuple::get(&t)?)?,
                attr::CLIENT_ISN => once(&mut cisn, t.ty, u32::get(&t)?)?,
                attr::SERVER_ISN => once(&mut sisn, t.ty, u32::get(&t)?)?,
                attr::MSS => once(&mut mss, t.ty, u16::get(&t)?)?,
                attr::WSCALE => {
                    let [client, server] = fixed::<2>(&t)?;
                    if client > MAX_WSCALE || server > MAX_WSCALE {
                        return Err(FrameError::BadValue(t.ty));
                    }
                    once(&mut wscale, t.ty, WScale { client, server })?
                }
                attr::SACK_OK => once(&mut sack, t.ty, v_flag(&t)?)?,
                attr::TIMESTAMPS => {
                    let b = fixed::<12>(&t)?;
                    let v = Timestamps {
                        client_tsval: be32(&b, 0),
                        fe_tsval_now: be32(&b, 4),
                        ts_offset: be32(&b, 8),
                    };
                    once(&mut ts, t.ty, v)?
                }
                attr::ECN => once(&mut ecn, t.ty, v_flag(&t)?)?,
                attr::CLIENT_WINDOW => once(&mut win, t.ty, u32::get(&t)?)?,
                attr::RTT => once(&mut rtt, t.ty, u32::get(&t)?)?,
                attr::REQUEST => once(&mut request, t.ty, t.value)?,
                _ => {}
            }
        }
        Ok(HandoffReq {
            tuple: need(tuple, attr::TUPLE)?,
            client_isn: need(cisn, attr::CLIENT_ISN)?,
            server_isn: need(sisn, attr::SERVER_ISN)?,
            mss: need(mss, attr::MSS)?,
            wscale,
            sack_ok: sack.is_some(),
            timestamps: ts,
            ecn: ecn.is_some(),
            client_window: need(win, attr::CLIENT_WINDOW)?,
            rtt_us: need(rtt, attr::RTT)?,
            request: need(request, attr::REQUEST)?,
        })
    }
}

message! {
    /// HANDOFF_ACK: the back-end took the connection.
    HandoffAck = HandoffAck {
        /// The connection.
        tuple: Tuple = attr::TUPLE,
        /// The back-end's initial sequence number.
        backend_isn: u32 = attr::BACKEND_ISN,
        /// The back-end socket's TCP state (the kernel's `TCP_*` value).
        state: u8 = attr::STATE,
    }
}

message! {
    /// HANDOFF_NACK: the back-end refused the connection.
    HandoffNack = HandoffNack {
        /// The connection.
        tuple: Tuple = attr::TUPLE,
        /// Why (see [`nack`]).
        reason: u32 = attr::REASON,
    }
}

message! {
    /// TERM: the back-end saw the connection end, or the front-end
    /// withdrew its handoff ([`term::TIMEOUT`]).
    Term = Term {
        /// The connection.
        tuple: Tuple = attr::TUPLE,
        /// How (see [`term`]).
        reason: u32 = attr::REASON,
    }
}

impl Term {
    /// Whether the front-end withdraws the handoff of the connection
    /// ([`term::TIMEOUT`]: its receiver, the back-end, drops it), rather
    /// than the back-end reporting its end (to the front-end).
    pub fn withdraws_handoff(&self) -> bool {
        self.reason == term::TIMEOUT
    }
}

/// Where a dispatcher's connection is served: what its backup owner needs
/// to know to take over its forwarding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Placement {
    /// Moved to the back-end `backend` (handed off and adopted): its
    /// packets are forwarded there in the encapsulation (type 0x02), by
    /// whichever dispatcher owns it. A takeover keeps it.
    Forwarded = 1,
    /// Handed to `backend`, not yet acknowledged: the owner holds its
    /// segments. A takeover cannot resume a hold: the new owner drops the
    /// entry when the handoff's outcome does not reach it.
    Pending = 2,
    /// Served by the owner's own TCP (`backend` is the owner): it dies
    /// with the owner.
    Local = 3,
}

impl Field for Placement {
    fn put(&self, w: &mut TlvWriter<'_>, ty: u16) -> Result<(), FrameError> {
        w.put_u8(ty, *self as u8)
    }

    fn get(t: &Tlv<'_>) -> Result<Self, FrameError> {
        match u8::get(t)? {
            1 => Ok(Placement::Forwarded),
            2 => Ok(Placement::Pending),
            3 => Ok(Placement::Local),
            _ => Err(FrameError::BadValue(t.ty)),
        }
    }
}

message! {
    /// CONN_SYNC: where a connection lives, from its owner to its backup
    /// (and, nested, a TRANSFER's entry).
    ConnSync = ConnSync {
        /// The connection.
        tuple: Tuple = attr::TUPLE,
        /// The dispatcher that owns it.
        owner: u32 = attr::OWNER,
        /// The dispatcher that backs the owner up.
        backup: u32 = attr::BACKUP,
        /// The node that serves it.
        backend: u32 = attr::BACKEND,
        /// The membership generation under which the sender computed owner
        /// and backup.
        generation: u64 = attr::GENERATION,
        /// The service it belongs to.
        service: u32 = attr::SERVICE,
        /// The client's initial sequence number (a SYN with another one on
        /// the same tuple is a new connection).
        client_isn: u32 = attr::CLIENT_ISN,
        /// The initial sequence number the client got in the SYN-ACK.
        server_isn: u32 = attr::SERVER_ISN,
        /// Where it is served.
        placement: Placement = attr::PLACEMENT,
    }
}

message! {
    /// CONN_END: a connection ended (client FIN or RST).
    ConnEnd = ConnEnd {
        /// The connection.
        tuple: Tuple = attr::TUPLE,
        /// The client's initial sequence number: a CONN_END that comes
        /// late, after the client reused its port, ends only the
        /// connection it was sent for.
        client_isn: u32 = attr::CLIENT_ISN,
    }
}

message! {
    /// TRANSFER_ACK: the receiver of a TRANSFER took (stored) `accepted`
    /// of its entries; the sender may free the ones it handed over.
    TransferAck = TransferAck {
        /// The TRANSFER's generation.
        generation: u64 = attr::GENERATION,
        /// The TRANSFER's batch number.
        batch: u32 = attr::BATCH,
        /// How many of its entries were taken (the others were refused:
        /// not for the receiver under its view, or no room).
        accepted: u32 = attr::ACCEPTED,
    }
}

/// TRANSFER: entries (as CONN_SYNC) handed over after a membership
/// change, with the generation of the view that moved them and a batch
/// number (the sender's, echoed by the TRANSFER_ACK). Decoding checks
/// every entry, so a bad one refuses the whole message before any is acted
/// on; [`Self::entries`] then yields them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Transfer<'a> {
    /// The membership generation of the view that moved the entries.
    pub generation: u64,
    /// The sender's number for this TRANSFER.
    pub batch: u32,
    payload: &'a [u8],
    count: usize,
}

/// Encodes entries as a TRANSFER payload (see [`write_frame`]).
#[derive(Clone, Copy, Debug)]
pub struct TransferOut<'e> {
    /// The membership generation of the view that moved the entries.
    pub generation: u64,
    /// The sender's number for this TRANSFER.
    pub batch: u32,
    /// The entries, at most [`MAX_TRANSFER_ENTRIES`].
    pub entries: &'e [ConnSync],
}

impl<'a> Transfer<'a> {
    /// How many entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries, in order.
    pub fn entries(&self) -> TransferIter<'a> {
        TransferIter {
            tlvs: TlvIter::new(self.payload),
        }
    }

    /// Appends a TRANSFER's generation and batch, then its entries one at
    /// a time: returns how many of `entries` fit in `w` (the rest go into
    /// another TRANSFER), or [`FrameError::NoRoom`] when not even the
    /// generation and batch do.
    pub fn encode_some(
        generation: u64,
        batch: u32,
        entries: &[ConnSync],
        w: &mut TlvWriter<'_>,
    ) -> Result<usize, FrameError> {
        w.put_u64(attr::GENERATION, generation)?;
        w.put_u32(attr::BATCH, batch)?;
        let mut n = 0;
        for e in entries.iter().take(MAX_TRANSFER_ENTRIES) {
            if w.nested(attr::ENTRY, |w| e.encode(w)).is_err() {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}

impl<'a> Encode for Transfer<'a> {
    const TYPE: MsgType = MsgType::Transfer;

    /// Re-encodes the decoded message.
    fn encode(&self, w: &mut TlvWriter<'_>) -> Result<(), FrameError> {
        w.put_u64(attr::GENERATION, self.generation)?;
        w.put_u32(attr::BATCH, self.batch)?;
        for e in self.entries() {
            w.nested(attr::ENTRY, |w| e.encode(w))?;
        }
        Ok(())
    }
}

impl<'a> Decode<'a> for Transfer<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, FrameError> {
        let (mut generation, mut batch) = (None, None);
        let mut count = 0;
        for t in TlvIter::new(payload) {
            let t = t?;
            match t.ty {
                attr::GENERATION => once(&mut generation, t.ty, u64::get(&t)?)?,
                attr::BATCH => once(&mut batch, t.ty, u32::get(&t)?)?,
                attr::ENTRY => {
                    ConnSync::decode(t.value)?;
                    count += 1;
                    if count > MAX_TRANSFER_ENTRIES {
                        return Err(FrameError::TooMany);
                    }
                }
                _ => {}
            }
        }
        Ok(Transfer {
            generation: need(generation, attr::GENERATION)?,
            batch: need(batch, attr::BATCH)?,
            payload,
            count,
        })
    }
}

impl Encode for TransferOut<'_> {
    const TYPE: MsgType = MsgType::Transfer;

    /// All entries or an error ([`FrameError::TooMany`], [`FrameError::NoRoom`]).
    fn encode(&self, w: &mut TlvWriter<'_>) -> Result<(), FrameError> {
        if self.entries.len() > MAX_TRANSFER_ENTRIES {
            return Err(FrameError::TooMany);
        }
        w.put_u64(attr::GENERATION, self.generation)?;
        w.put_u32(attr::BATCH, self.batch)?;
        for e in self.entries {
            w.nested(attr::ENTRY, |w| e.encode(w))?;
        }
        Ok(())
    }
}

/// The entries of a decoded [`Transfer`].
#[derive(Clone, Debug)]
pub struct TransferIter<'a> {
    tlvs: TlvIter<'a>,
}

impl<'a> Iterator for TransferIter<'a> {
    type Item = ConnSync;

    fn next(&mut self) -> Option<ConnSync> {
        // Checked by `Transfer::decode`: no TLV and no entry fails here.
        self.tlvs
            .by_ref()
            .flatten()
            .filter(|t| t.ty == attr::ENTRY)
            .find_map(|t| ConnSync::decode(t.value).ok())
    }
}

/// Bytes of one encoded TRANSFER entry: its TLV header, the tuple, six
/// u32 (owner, backup, back-end, service, the two ISNs), the generation
/// and the placement (one byte, padded to 4).
pub const TRANSFER_ENTRY_LEN: usize = TLV_HEADER_LEN
    + (TLV_HEADER_LEN + TUPLE_LEN)
    + 6 * (TLV_HEADER_LEN + 4)
    + (TLV_HEADER_LEN + 8)
    + (TLV_HEADER_LEN + 4);
/// Bytes of a TRANSFER before its entries: the generation and the batch.
pub const TRANSFER_HEAD_LEN: usize = (TLV_HEADER_LEN + 8) + (TLV_HEADER_LEN + 4);

// A TRANSFER of the most entries fits in one frame.
const _: () = assert!(TRANSFER_HEAD_LEN + MAX_TRANSFER_ENTRIES * TRANSFER_ENTRY_LEN <= MAX_PAYLOAD);

/// Any message, decoded by the header's type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Msg<'a> {
    /// HELLO.
    Hello(Hello),
    /// HEARTBEAT.
    Heartbeat(Heartbeat),
    /// HANDOFF_REQ.
    HandoffReq(HandoffReq<'a>),
    /// HANDOFF_ACK.
    HandoffAck(HandoffAck),
    /// HANDOFF_NACK.
    HandoffNack(HandoffNack),
    /// TERM.
    Term(Term),
    /// CONN_SYNC.
    ConnSync(ConnSync),
    /// CONN_END.
    ConnEnd(ConnEnd),
    /// TRANSFER.
    Transfer(Transfer<'a>),
    /// TRANSFER_ACK.
    TransferAck(TransferAck),
}

impl<'a> Msg<'a> {
    /// Decodes `payload` as a message of type `ty`.
    pub fn decode(ty: MsgType, payload: &'a [u8]) -> Result<Msg<'a>, FrameError> {
        Ok(match ty {
            MsgType::Hello => Msg::Hello(Hello::decode(payload)?),
            MsgType::Heartbeat => Msg::Heartbeat(Heartbeat::decode(payload)?),
            MsgType::HandoffReq => Msg::HandoffReq(HandoffReq::decode(payload)?),
            MsgType::HandoffAck => Msg::HandoffAck(HandoffAck::decode(payload)?),
            MsgType::HandoffNack => Msg::HandoffNack(HandoffNack::decode(payload)?),
            MsgType::Term => Msg::Term(Term::decode(payload)?),
            MsgType::ConnSync => Msg::ConnSync(ConnSync::decode(payload)?),
            MsgType::ConnEnd => Msg::ConnEnd(ConnEnd::decode(payload)?),
            MsgType::Transfer => Msg::Transfer(Transfer::decode(payload)?),
            MsgType::TransferAck => Msg::TransferAck(TransferAck::decode(payload)?),
        })
    }

    /// Decodes a verified frame's payload by its header's type.
    pub fn of(frame: &Frame<'a>) -> Result<Msg<'a>, FrameError> {
        Msg::decode(frame.header.msg_type, frame.payload())
    }

    /// Its type.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Msg::Hello(_) => MsgType::Hello,
            Msg::Heartbeat(_) => MsgType::Heartbeat,
            Msg::HandoffReq(_) => MsgType::HandoffReq,
            Msg::HandoffAck(_) => MsgType::HandoffAck,
            Msg::HandoffNack(_) => MsgType::HandoffNack,
            Msg::Term(_) => MsgType::Term,
            Msg::ConnSync(_) => MsgType::ConnSync,
            Msg::ConnEnd(_) => MsgType::ConnEnd,
            Msg::Transfer(_) => MsgType::Transfer,
            Msg::TransferAck(_) => MsgType::TransferAck,
        }
    }
}
