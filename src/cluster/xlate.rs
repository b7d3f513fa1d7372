// SPDX-License-Identifier: GPL-2.0

//! Sequence, acknowledgement, SACK and timestamp translation of a handed-off
//! TCP connection (seed 002, claims 7 and 9), with incremental checksum
//! updates (RFC 1624).
//!
//! The client saw the front-end's initial sequence number and timestamp
//! clock; the back-end that now serves the connection has its own. Where the
//! replay could not align them (design memo, section 3), every packet of the
//! connection is translated:
//!
//! | direction | rewritten | by |
//! |---|---|---|
//! | [`Dir::ToBackend`] (the client's packets) | ack (if ACK), every SACK block edge, TSecr (if ACK) | `+ seq`, `+ ts` |
//! | [`Dir::ToClient`] (the back-end's replies) | seq, TSval | `- seq`, `- ts` |
//!
//! where [`Offsets`] holds `seq` = back-end ISN − front-end ISN and `ts` =
//! back-end TSval − front-end TSval at the same instant, both in serial
//! (wrapping) arithmetic. The client's own numbers (its seq, its TSval, the
//! SACK blocks the back-end sends about the client's data) are never touched.
//!
//! The TCP checksum is updated incrementally, by one's complement
//! arithmetic on the changed 16-bit words only (RFC 1624 equation 3; a
//! field at an odd offset in the header, as an option without NOP padding
//! puts it, is summed byte-swapped, RFC 1071). What the checksum field holds
//! is the caller's to say ([`CsumMode`]): the full checksum, or, for a
//! kernel `CHECKSUM_PARTIAL` packet, only the folded pseudo-header sum, which
//! a change of the TCP header does not touch (the device or
//! `skb_checksum_help` sums the header later); this is what the kernel's
//! `inet_proto_csum_replace4(.., pseudohdr = false)` does. A changed address
//! (the literal rewrite of claims 7 and 9) is a pseudo-header change:
//! [`pseudo_addr_changed`] updates the field in both modes. On
//! `CHECKSUM_COMPLETE` packets, `skb->csum` needs no update for a header
//! translation: the field's change cancels the words' change.
//!
//! Options are walked with bounds ([`Options`]): a malformed option list (a
//! length byte missing, a length under 2 or past the header, a SACK or
//! timestamp option of the wrong size) is refused whole before any byte
//! changes, so a refused packet is left as it was and the caller drops it.
//! Pure: no allocation, no panic on any input, no `unsafe`.

/// Bytes of a TCP header without options.
pub const TCP_HDR_MIN: usize = 20;
/// The most bytes of options (data offset 15).
pub const TCP_OPTS_MAX: usize = 40;
/// End of the option list.
pub const OPT_EOL: u8 = 0;
/// No operation (padding).
pub const OPT_NOP: u8 = 1;
/// Maximum segment size (RFC 9293).
pub const OPT_MSS: u8 = 2;
/// Selective acknowledgement blocks (RFC 2018).
pub const OPT_SACK: u8 = 5;
/// Timestamps (RFC 7323).
pub const OPT_TS: u8 = 8;
/// Bytes of a timestamps option.
pub const OPT_TS_LEN: usize = 10;
/// Bytes of one SACK block.
pub const SACK_BLOCK_LEN: usize = 8;
/// The most SACK blocks an option holds (2 + 4 * 8 = 34 bytes).
pub const SACK_MAX_BLOCKS: usize = 4;
/// The IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;

/// Offsets of the header's fields.
const SEQ_AT: usize = 4;
const ACK_AT: usize = 8;
const DOFF_AT: usize = 12;
const FLAGS_AT: usize = 13;
const CHECK_AT: usize = 16;
/// The ACK flag.
const FLAG_ACK: u8 = 0x10;

/// Why a header is refused (and left untouched).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum XlateError {
    /// Fewer bytes than 20, or than the data offset says.
    Short,
    /// A data offset under 5.
    BadDataOffset,
    /// An option's length byte is missing, or the option runs past the
    /// header.
    TruncatedOption(u8),
    /// An option's length is under 2, or a SACK or timestamps option has
    /// the wrong size.
    BadOptionLength(u8),
    /// Addresses of different or wrong lengths ([`pseudo_addr_changed`]).
    BadAddress,
    /// Not a whole, unfragmented TCP packet ([`translate_packet`]).
    NotTcp,
}

/// One option of a header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Opt {
    /// Its kind.
    pub kind: u8,
    /// Where it starts in the TCP header (its kind byte).
    pub at: usize,
    /// Its length, kind and length bytes included.
    pub len: usize,
}

impl Opt {
    /// Where its value starts in the TCP header.
    pub fn value_at(&self) -> usize {
        self.at.saturating_add(2)
    }

    /// How many SACK blocks it holds (0 unless a SACK option).
    pub fn sack_blocks(&self) -> usize {
        if self.kind == OPT_SACK {
            self.len.saturating_sub(2) / SACK_BLOCK_LEN
        } else {
            0
        }
    }
}

/// The options of a TCP header, in order, without NOPs; stops at EOL or
/// at the data offset. Yields an error (and then nothing) at a malformed
/// option. At most 20 items (40 bytes of 2-byte options).
#[derive(Clone, Debug)]
pub struct Options<'a> {
    hdr: &'a [u8],
    pos: usize,
    end: usize,
    failed: bool,
}

impl<'a> Options<'a> {
    /// The options of `tcp` (a TCP header and maybe its payload), after
    /// checking the data offset.
    pub fn new(tcp: &'a [u8]) -> Result<Self, XlateError> {
        let end = header_len(tcp)?;
        Ok(Options {
            hdr: tcp,
            pos: TCP_HDR_MIN,
            end,
            failed: false,
        })
    }

    /// Checks the whole list: `Ok` if no option is malformed.
    pub fn check(self) -> Result<(), XlateError> {
        for o in self {
            o?;
        }
        Ok(())
    }
}

impl Iterator for Options<'_> {
    type Item = Result<Opt, XlateError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && self.pos < self.end {
            let at = self.pos;
            let kind = *self.hdr.get(at)?;
            match kind {
                OPT_EOL => {
                    self.pos = self.end;
                    return None;
                }
                OPT_NOP => {
                    self.pos = at.saturating_add(1);
                    continue;
                }
                _ => {}
            }
            let len = match self.hdr.get(at.saturating_add(1)) {
                Some(&l) if at.saturating_add(1) < self.end => usize::from(l),
                _ => return self.fail(XlateError::TruncatedOption(kind)),
            };
            if len < 2 {
                return self.fail(XlateError::BadOptionLength(kind));
            }
            if at.saturating_add(len) > self.end {
                return self.fail(XlateError::TruncatedOption(kind));
            }
            let size_ok = match kind {
                OPT_SACK => len >= 2 + SACK_BLOCK_LEN && (len - 2) % SACK_BLOCK_LEN == 0,
                OPT_TS => len == OPT_TS_LEN,
                _ => true,
            };
            if !size_ok {
                return self.fail(XlateError::BadOptionLength(kind));
            }
            self.pos = at.saturating_add(len);
            return Some(Ok(Opt { kind, at, len }));
        }
        None
    }
}

impl Options<'_> {
    fn fail(&mut self, e: XlateError) -> Option<Result<Opt, XlateError>> {
        self.failed = true;
        Some(Err(e))
    }
}

/// The header's length by its data offset, checked against `tcp`.
pub fn header_len(tcp: &[u8]) -> Result<usize, XlateError> {
    let doff = match tcp.get(DOFF_AT) {
        Some(&b) if tcp.len() >= TCP_HDR_MIN => usize::from(b >> 4),
        _ => return Err(XlateError::Short),
    };
    if doff < 5 {
        return Err(XlateError::BadDataOffset);
    }
    let len = doff * 4;
    if len > tcp.len() {
        return Err(XlateError::Short);
    }
    Ok(len)
}

/// The one's complement sum of `a` and `b` (end-around carry). Never 0
/// unless both are 0.
pub const fn oc_add(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The one's complement sum of `bytes` as if they stood at offset `at` of
/// the summed data: a byte at an even offset is a word's high byte.
pub fn sum_at(at: usize, bytes: &[u8]) -> u16 {
    let mut s = 0u16;
    for (i, &b) in bytes.iter().enumerate() {
        // The parity of at + i.
        let w = if (at ^ i) & 1 == 0 {
            u16::from(b) << 8
        } else {
            u16::from(b)
        };
        s = oc_add(s, w);
    }
    s
}

/// The one's complement sum of `bytes` from an even offset, two at a time.
fn sum_words(bytes: &[u8]) -> u16 {
    let mut s = 0u16;
    let mut chunks = bytes.chunks_exact(2);
    for c in chunks.by_ref() {
        if let [hi, lo] = *c {
            s = oc_add(s, u16::from_be_bytes([hi, lo]));
        }
    }
    if let [last] = *chunks.remainder() {
        s = oc_add(s, u16::from(last) << 8);
    }
    s
}

/// A checksum field `check` (the complement of a sum) after the covered
/// bytes `old` (at an even offset) became `new` (RFC 1624 equation 3).
/// `old` and `new` should have the same length.
pub fn csum_replace(check: u16, old: &[u8], new: &[u8]) -> u16 {
    !oc_add(oc_add(!check, !sum_words(old)), sum_words(new))
}

/// A checksum field `check` after the covered bytes `old`, at offset `at`
/// of the summed data (even or odd), became `new` (RFC 1624 equation 3; a
/// field at an odd offset is summed byte-swapped, RFC 1071).
pub fn csum_replace_at(check: u16, at: usize, old: &[u8], new: &[u8]) -> u16 {
    !oc_add(oc_add(!check, !sum_at(at, old)), sum_at(at, new))
}

/// The pseudo-header of a TCP segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pseudo {
    /// IPv4: source and destination.
    V4([u8; 4], [u8; 4]),
    /// IPv6: source and destination.
    V6([u8; 16], [u8; 16]),
}

impl Pseudo {
    /// The one's complement sum of the pseudo-header of a TCP segment of
    /// `len` bytes (RFC 793; RFC 8200 section 8.1): the same words for
    /// both families, the length as 32 bits.
    pub fn sum(&self, len: u32) -> u16 {
        let addrs = match self {
            Pseudo::V4(s, d) => oc_add(sum_words(s), sum_words(d)),
            Pseudo::V6(s, d) => oc_add(sum_words(s), sum_words(d)),
        };
        let l = oc_add((len >> 16) as u16, len as u16);
        oc_add(oc_add(addrs, l), u16::from(PROTO_TCP))
    }
}

/// The TCP checksum of `seg` (header and payload; its checksum field is
/// taken as 0) under `pseudo`, from scratch, as the kernel's
/// `csum_tcpudp_magic` over `csum_partial` computes it. Segments of 4 GiB
/// or more are summed with their length truncated.
pub fn tcp_checksum(pseudo: &Pseudo, seg: &[u8]) -> u16 {
    let len = u32::try_from(seg.len()).unwrap_or(u32::MAX);
    let head = seg.get(..CHECK_AT).unwrap_or(seg);
    let tail = seg.get(CHECK_AT + 2..).unwrap_or(&[]);
    !oc_add(oc_add(pseudo.sum(len), sum_words(head)), sum_words(tail))
}

/// The folded pseudo-header sum a `CHECKSUM_PARTIAL` segment carries in
/// its checksum field (the kernel's `~tcp_v4_check(len, saddr, daddr, 0)`).
pub fn pseudo_partial(pseudo: &Pseudo, len: u32) -> u16 {
    pseudo.sum(len)
}

/// Completes a `CHECKSUM_PARTIAL` packet's transport checksum in place, as
/// `skb_checksum_help` does: the field at `start + offset` holds the folded
/// pseudo-header sum; it becomes the complement of the sum of every byte
/// from `start` to the end (0 written as 0xffff). False, and nothing
/// changed, if the field is not within `pkt`.
pub fn complete_partial(pkt: &mut [u8], start: usize, offset: usize) -> bool {
    let Some(at) = start.checked_add(offset) else {
        return false;
    };
    match at.checked_add(2) {
        Some(end) if end <= pkt.len() && offset & 1 == 0 => {}
        _ => return false,
    }
    let Some(covered) = pkt.get(start..) else {
        return false;
    };
    let c = match !sum_words(covered) {
        0 => 0xffff,
        c => c,
    };
    if let Some(f) = pkt.get_mut(at..at + 2) {
        f.copy_from_slice(&c.to_be_bytes());
    }
    true
}

/// What the checksum field holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CsumMode {
    /// The full checksum (the kernel's `CHECKSUM_NONE`, `_UNNECESSARY`
    /// and `_COMPLETE`): every change updates it.
    Full,
    /// Only the folded pseudo-header sum, not complemented (the kernel's
    /// `CHECKSUM_PARTIAL`, whose rest is summed later from `csum_start`):
    /// header changes leave it as is, pseudo-header changes update it.
    PseudoOnly,
}

/// The translation of one connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Offsets {
    /// The back-end's ISN minus the front-end's (wrapping).
    pub seq: u32,
    /// The back-end's TSval minus the front-end's at the same instant
    /// (wrapping).
    pub ts: u32,
}

impl Offsets {
    /// The offsets of a connection whose server side the client knows by
    /// `fe_isn` and `fe_tsval`, and the back-end by `be_isn` and `be_tsval`
    /// (TSvals taken at the same instant).
    pub fn new(fe_isn: u32, be_isn: u32, fe_tsval: u32, be_tsval: u32) -> Self {
        Offsets {
            seq: be_isn.wrapping_sub(fe_isn),
            ts: be_tsval.wrapping_sub(fe_tsval),
        }
    }

    /// The offsets that undo these.
    pub fn inverse(self) -> Self {
        Offsets {
            seq: self.seq.wrapping_neg(),
            ts: self.ts.wrapping_neg(),
        }
    }

    /// Whether nothing needs translating.
    pub fn is_zero(&self) -> bool {
        self.seq == 0 && self.ts == 0
    }
}

/// Which way a packet goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dir {
    /// The client's packet, forwarded to the back-end (claim 7): its ack,
    /// SACK blocks and TSecr name the server's side.
    ToBackend,
    /// The back-end's reply, to the client (claim 9): its seq and TSval
    /// are the server's side.
    ToClient,
}

/// What [`translate`] rewrote.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Translated {
    /// 32-bit fields rewritten (seq or ack, SACK edges, TSval or TSecr).
    pub fields: u8,
    /// SACK blocks among them.
    pub sack_blocks: u8,
    /// Timestamps options among them.
    pub timestamps: u8,
}

/// The running change of a checksum (the one's complement sum of the new
/// words minus the old) and how many fields changed.
struct Delta {
    sum: u16,
    fields: u8,
}

impl Delta {
    /// Adds `f` to the 32-bit field at `at` of `tcp` (big-endian), records
    /// the change; `false` (nothing written) if out of bounds.
    fn add32(&mut self, tcp: &mut [u8], at: usize, f: u32) -> bool {
        let Some(field) = tcp.get_mut(at..at.saturating_add(4)) else {
            return false;
        };
        let mut old = [0u8; 4];
        old.copy_from_slice(field);
        let new = u32::from_be_bytes(old).wrapping_add(f).to_be_bytes();
        field.copy_from_slice(&new);
        self.sum = oc_add(self.sum, !sum_at(at, &old));
        self.sum = oc_add(self.sum, sum_at(at, &new));
        self.fields = self.fields.saturating_add(1);
        true
    }
}

/// Translates the TCP header at the start of `tcp` (the segment's payload
/// may follow; it is not read) for a packet going `dir`, and updates its
/// checksum field as `mode` says. A malformed header or option list is
/// refused before any byte changes.
pub fn translate(
    tcp: &mut [u8],
    dir: Dir,
    off: Offsets,
    mode: CsumMode,
) -> Result<Translated, XlateError> {
    Options::new(tcp)?.check()?;
    let mut done = Translated::default();
    if off.is_zero() {
        return Ok(done);
    }
    let ack_set = tcp.get(FLAGS_AT).is_some_and(|&f| f & FLAG_ACK != 0);
    let mut d = Delta { sum: 0, fields: 0 };
    // Where the options to rewrite are: at most 20 options in 40 bytes.
    let mut sites = [Opt {
        kind: 0,
        at: 0,
        len: 0,
    }; TCP_OPTS_MAX / 2];
    let mut n = 0;
    for o in Options::new(tcp)?.flatten() {
        if let Some(slot) = sites.get_mut(n) {
            *slot = o;
            n = n.saturating_add(1);
        }
    }
    let count = |c: &mut u8| *c = c.saturating_add(1);
    match dir {
        Dir::ToBackend => {
            if ack_set && off.seq != 0 {
                d.add32(tcp, ACK_AT, off.seq);
            }
            for o in sites.iter().take(n) {
                match o.kind {
                    OPT_SACK if off.seq != 0 => {
                        for b in 0..o.sack_blocks() {
                            let at = o.value_at().saturating_add(b * SACK_BLOCK_LEN);
                            let left = d.add32(tcp, at, off.seq);
                            let right = d.add32(tcp, at.saturating_add(4), off.seq);
                            if left && right {
                                count(&mut done.sack_blocks);
                            }
                        }
                    }
                    OPT_TS if ack_set && off.ts != 0 => {
                        let tsecr = o.value_at().saturating_add(4);
                        if d.add32(tcp, tsecr, off.ts) {
                            count(&mut done.timestamps);
                        }
                    }
                    _ => {}
                }
            }
        }
        Dir::ToClient => {
            let inv = off.inverse();
            if inv.seq != 0 {
                d.add32(tcp, SEQ_AT, inv.seq);
            }
            for o in sites.iter().take(n) {
                if o.kind == OPT_TS && inv.ts != 0 && d.add32(tcp, o.value_at(), inv.ts) {
                    count(&mut done.timestamps);
                }
            }
        }
    }
    done.fields = d.fields;
    if mode == CsumMode::Full {
        if let Some(check) = check_mut(tcp) {
            *check = (!oc_add(!u16::from_be_bytes(*check), d.sum)).to_be_bytes();
        }
    }
    Ok(done)
}

/// Translates the TCP segment in the whole IP packet `pkt` (IPv4, or IPv6
/// past its extension headers), as [`translate`] does its header: a packet
/// cut short, a fragment or another protocol is refused with
/// [`XlateError::NotTcp`], and then nothing changed.
pub fn translate_packet(
    pkt: &mut [u8],
    dir: Dir,
    off: Offsets,
    mode: CsumMode,
) -> Result<Translated, XlateError> {
    match super::encap::transport_of(pkt) {
        Some((PROTO_TCP, at)) => {
            translate(pkt.get_mut(at..).ok_or(XlateError::NotTcp)?, dir, off, mode)
        }
        _ => Err(XlateError::NotTcp),
    }
}

/// Translates the ICMP or ICMPv6 error `pkt` (a whole IP packet) about a
/// segment the back-end sent to the client, as the client's side quotes
/// it (its seq translated [`Dir::ToClient`]): the quoted seq is moved back
/// into the back-end's space (`+ seq`), so that the back-end's TCP finds it
/// within its window, and the ICMP checksum (in full: it covers the quote)
/// follows. The quoted packet's own checksum is left (nobody checks a
/// quote's). Anything else is refused with [`XlateError::NotTcp`], and
/// then nothing changed.
pub fn translate_icmp_error(pkt: &mut [u8], off: Offsets) -> Result<Translated, XlateError> {
    let (icmp_at, tcp_at) = super::encap::icmp_error_tcp(pkt).ok_or(XlateError::NotTcp)?;
    let mut done = Translated::default();
    if off.seq == 0 {
        return Ok(done);
    }
    let seq_at = tcp_at.checked_add(SEQ_AT).ok_or(XlateError::NotTcp)?;
    let (Some(rel), Some(field)) = (
        seq_at.checked_sub(icmp_at),
        pkt.get_mut(seq_at..seq_at.saturating_add(4)),
    ) else {
        return Err(XlateError::NotTcp);
    };
    let mut old = [0u8; 4];
    old.copy_from_slice(field);
    let new = u32::from_be_bytes(old).wrapping_add(off.seq).to_be_bytes();
    field.copy_from_slice(&new);
    let check_at = icmp_at.saturating_add(2);
    let c: Option<&mut [u8; 2]> = pkt
        .get_mut(check_at..check_at.saturating_add(2))
        .and_then(|c| c.try_into().ok());
    if let Some(c) = c {
        *c = csum_replace_at(u16::from_be_bytes(*c), rel, &old, &new).to_be_bytes();
    }
    done.fields = 1;
    Ok(done)
}

/// Updates the checksum field of the TCP header at the start of `tcp` for
/// an address of its pseudo-header that changed from `old` to `new` (4 or
/// 16 bytes each, the same length); the caller rewrites the IP header (and
/// an IPv4 header's checksum, with [`csum_replace`]).
pub fn pseudo_addr_changed(
    tcp: &mut [u8],
    old: &[u8],
    new: &[u8],
    mode: CsumMode,
) -> Result<(), XlateError> {
    if old.len() != new.len() || !(old.len() == 4 || old.len() == 16) {
        return Err(XlateError::BadAddress);
    }
    header_len(tcp)?;
    let c = check_mut(tcp).ok_or(XlateError::Short)?;
    let check = u16::from_be_bytes(*c);
    let new = match mode {
        CsumMode::Full => csum_replace(check, old, new),
        CsumMode::PseudoOnly => oc_add(oc_add(check, !sum_words(old)), sum_words(new)),
    };
    *c = new.to_be_bytes();
    Ok(())
}

/// The checksum field of the TCP header at the start of `tcp`.
fn check_mut(tcp: &mut [u8]) -> Option<&mut [u8; 2]> {
    tcp.get_mut(CHECK_AT..CHECK_AT + 2)?.try_into().ok()
}
