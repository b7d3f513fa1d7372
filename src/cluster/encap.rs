// SPDX-License-Identifier: GPL-2.0

//! The typed encapsulation header of forwarded packets (seed 004): a client's
//! packet of a connection that lives on another node travels there in one
//! UDP datagram, behind one header that holds the packet's type, the
//! connection's 4-tuple reference, a sequence number and a MAC.
//!
//! Layout, version 1 (all numbers big-endian; [`HEADER_LEN`] bytes, then the
//! inner IP packet):
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 1 | version, [`VERSION`] |
//! | 1 | 1 | type ([`EncapType`]): 0x01 packet of a connection being handed off, 0x02 packet of a moved connection, 0x03 the back-end's verification that the connection moved |
//! | 2 | 1 | inner protocol ([`Proto`]): 6 TCP, 17 UDP |
//! | 3 | 1 | flags, 0 |
//! | 4 | 4 | sender's node id |
//! | 8 | 4 | key id, [`KEY_ID`] (the pair's session key) |
//! | 12 | 2 | inner length: bytes of the inner packet after the header (0 for type 0x03) |
//! | 14 | 2 | reserved, 0 |
//! | 16 | 8 | sequence number, from 1, per sender and receiver |
//! | 24 | 40 | the connection's reference, as [`Tuple`] encodes it: family (4 or 6), 3 zero bytes, client address (16; IPv4 in the first 4, the rest 0), server address (16), client port (2), server port (2) |
//! | 64 | 16 | MAC: HMAC-SHA256 under the pair's session key of [`MAC_LABEL`], bytes 0 to 63 and the inner packet, truncated to [`MAC_LEN`] bytes |
//! | 80 | | the inner IP packet |
//!
//! The MAC covers the inner packet as well as the header: a header alone
//! would let anyone who sees one forwarded packet put other bytes (an RST,
//! data) behind a valid header before the original arrives. The label keeps
//! a data-plane MAC from ever passing for a control frame's tag under the
//! same session key.
//!
//! Receiving ([`open`]), in an order that keeps state and crypto away from
//! junk: the structure and the inner packet's 4-tuple against the reference
//! ([`parse`], stateless), the sender and key id, the replay window's check
//! (no change), the MAC, and only then the window's update. The peer's
//! outer source address is the caller's to check first, before any of this
//! (CVE-2020-10136's lesson). Pure: no allocation, no panic on any input, no
//! `unsafe`.

use super::frame::{ct_eq, Family, Mac, MacError, Tuple, TUPLE_LEN};

/// The only version this code speaks.
pub const VERSION: u8 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 80;
/// Bytes of the truncated MAC.
pub const MAC_LEN: usize = 16;
/// Where the MAC starts (the bytes before it are covered).
pub const MAC_AT: usize = 64;
/// Where the reference starts.
const TUPLE_AT: usize = 24;
/// The only key id in use: the pair's session key.
pub const KEY_ID: u32 = 0;
/// The first input of the MAC.
pub const MAC_LABEL: &[u8; 18] = b"sockgroup-encap-v1";
/// Bytes of UDP and the header in front of an inner packet, plus the outer
/// IPv4 header: what an MSS of a forwarded IPv4 connection gives up.
pub const OVERHEAD_V4: usize = 20 + 8 + HEADER_LEN;
/// The same with an outer IPv6 header.
pub const OVERHEAD_V6: usize = 40 + 8 + HEADER_LEN;
/// The most IPv6 extension headers walked before the transport header.
const MAX_EXT_HEADERS: usize = 8;

/// Why a packet is refused. None of them changed any state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EncapError {
    /// Fewer bytes than the header.
    Short,
    /// The version is not [`VERSION`].
    BadVersion,
    /// The type is none of [`EncapType`].
    BadType,
    /// The inner protocol is none of [`Proto`].
    BadProto,
    /// The flags or a reserved field are not 0.
    BadReserved,
    /// The reference is not a valid [`Tuple`].
    BadTuple,
    /// The inner length is not the bytes after the header, or a
    /// verification (0x03) carries an inner packet.
    BadLength,
    /// The inner packet is not a whole, unfragmented IP packet of the
    /// reference's family and protocol with its transport header.
    BadInner,
    /// The inner packet's 4-tuple is not the reference's.
    InnerMismatch,
    /// The sender is not the peer the datagram came from.
    WrongPeer,
    /// The key id is not [`KEY_ID`].
    BadKeyId,
    /// Sequence number 0 (never sent), or the sender's are used up.
    BadSeq,
    /// The sequence number was accepted before.
    Replay,
    /// The sequence number is older than the replay window.
    TooOld,
    /// The MAC does not match.
    BadMac,
    /// The MAC could not be computed.
    Mac,
    /// An inner packet of more than 65535 bytes (encoding).
    TooLong,
}

impl From<MacError> for EncapError {
    fn from(_: MacError) -> Self {
        EncapError::Mac
    }
}

/// The type of an encapsulated packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum EncapType {
    /// A packet of a connection being handed off (queued behind the
    /// replay on the back-end).
    HandingOff = 0x01,
    /// A packet of a moved connection.
    Moved = 0x02,
    /// The back-end's verification that the connection moved: the
    /// front-end moves the entry from its temporary table to its forward
    /// table. No inner packet.
    Verified = 0x03,
}

impl TryFrom<u8> for EncapType {
    type Error = EncapError;

    fn try_from(v: u8) -> Result<Self, EncapError> {
        match v {
            0x01 => Ok(EncapType::HandingOff),
            0x02 => Ok(EncapType::Moved),
            0x03 => Ok(EncapType::Verified),
            _ => Err(EncapError::BadType),
        }
    }
}

/// The inner packet's transport protocol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Proto {
    /// TCP.
    Tcp = 6,
    /// UDP.
    Udp = 17,
}

impl TryFrom<u8> for Proto {
    type Error = EncapError;

    fn try_from(v: u8) -> Result<Self, EncapError> {
        match v {
            6 => Ok(Proto::Tcp),
            17 => Ok(Proto::Udp),
            _ => Err(EncapError::BadProto),
        }
    }
}

impl Proto {
    /// The least bytes of its header.
    fn header_min(self) -> usize {
        match self {
            Proto::Tcp => 20,
            Proto::Udp => 8,
        }
    }
}

/// A header's fields (without version, flags, lengths and MAC).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EncapHeader {
    /// The packet's type.
    pub ty: EncapType,
    /// The inner packet's protocol.
    pub proto: Proto,
    /// The sender's node id.
    pub sender: u32,
    /// The key id ([`KEY_ID`]).
    pub key_id: u32,
    /// The sequence number (from 1).
    pub seq: u64,
    /// The connection, as the client sees it.
    pub tuple: Tuple,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The truncated MAC of `covered` (the header's first [`MAC_AT`] bytes)
/// and `inner`.
fn mac_of<M: Mac + ?Sized>(
    mac: &M,
    covered: &[u8],
    inner: &[u8],
) -> Result<[u8; MAC_LEN], EncapError> {
    let full = mac.tag(&[MAC_LABEL, covered, inner])?;
    let mut t = [0u8; MAC_LEN];
    if let Some(head) = full.get(..MAC_LEN) {
        t.copy_from_slice(head);
    }
    Ok(t)
}

impl EncapHeader {
    /// The header's bytes for `inner` (empty for [`EncapType::Verified`]),
    /// with its MAC under `mac`. Refuses what [`parse`] would refuse: a
    /// sequence number 0, an inner packet too long, a verification with
    /// an inner packet, or an inner packet that does not match the
    /// reference.
    pub fn seal<M: Mac + ?Sized>(
        &self,
        inner: &[u8],
        mac: &M,
    ) -> Result<[u8; HEADER_LEN], EncapError> {
        if self.seq == 0 {
            return Err(EncapError::BadSeq);
        }
        let inner_len = u16::try_from(inner.len()).map_err(|_| EncapError::TooLong)?;
        check_inner(self, inner)?;
        let mut b = [0u8; HEADER_LEN];
        let (covered, tag) = b.split_at_mut(MAC_AT);
        let fields: [(usize, &[u8]); 7] = [
            (0, &[VERSION, self.ty as u8, self.proto as u8, 0]),
            (4, &self.sender.to_be_bytes()),
            (8, &self.key_id.to_be_bytes()),
            (12, &inner_len.to_be_bytes()),
            (14, &[0, 0]),
            (16, &self.seq.to_be_bytes()),
            (TUPLE_AT, &self.tuple.encode()),
        ];
        for (at, v) in fields {
            if let Some(dst) = covered.get_mut(at..at + v.len()) {
                dst.copy_from_slice(v);
            }
        }
        let t = mac_of(mac, covered, inner)?;
        if let Some(dst) = tag.get_mut(..MAC_LEN) {
            dst.copy_from_slice(&t);
        }
        Ok(b)
    }
}

/// How the inner packet relates to the reference.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Inner {
    /// No inner packet (a verification).
    None,
    /// A packet of the connection from the client: its source is the
    /// reference's client, its destination the server.
    Flow,
    /// An ICMP or ICMPv6 error (destination unreachable, packet too big,
    /// time exceeded, parameter problem) about a packet the server sent
    /// to the client: the quoted packet's source is the reference's
    /// server, its destination the client.
    IcmpError,
}

/// A datagram whose structure and inner packet were checked; its MAC and
/// sequence number not yet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Parsed<'a> {
    /// The header's fields.
    pub header: EncapHeader,
    /// The inner packet (empty for a verification).
    pub inner: &'a [u8],
    /// What the inner packet is.
    pub kind: Inner,
    covered: &'a [u8],
    tag: &'a [u8],
}

impl Parsed<'_> {
    /// Checks the MAC under `mac`'s key, in constant time.
    pub fn verify<M: Mac + ?Sized>(&self, mac: &M) -> Result<(), EncapError> {
        let want = mac_of(mac, self.covered, self.inner)?;
        if ct_eq(&want, self.tag) {
            Ok(())
        } else {
            Err(EncapError::BadMac)
        }
    }
}

/// Parses a datagram's payload (header and inner packet) and checks
/// everything that needs neither key nor state: the header's fields, the
/// inner length, and the inner packet's 4-tuple against the reference.
pub fn parse(pkt: &[u8]) -> Result<Parsed<'_>, EncapError> {
    let (hdr, inner) = match (pkt.get(..HEADER_LEN), pkt.get(HEADER_LEN..)) {
        (Some(h), Some(i)) => (h, i),
        _ => return Err(EncapError::Short),
    };
    let byte = |at: usize| hdr.get(at).copied().ok_or(EncapError::Short);
    if byte(0)? != VERSION {
        return Err(EncapError::BadVersion);
    }
    let ty = EncapType::try_from(byte(1)?)?;
    let proto = Proto::try_from(byte(2)?)?;
    if byte(3)? != 0 || be16(hdr, 14) != Some(0) {
        return Err(EncapError::BadReserved);
    }
    let tuple = hdr
        .get(TUPLE_AT..TUPLE_AT + TUPLE_LEN)
        .and_then(|t| Tuple::decode(t).ok())
        .ok_or(EncapError::BadTuple)?;
    let short = EncapError::Short;
    let header = EncapHeader {
        ty,
        proto,
        sender: be32(hdr, 4).ok_or(short)?,
        key_id: be32(hdr, 8).ok_or(short)?,
        seq: be64(hdr, 16).ok_or(short)?,
        tuple,
    };
    if be16(hdr, 12).map(usize::from) != Some(inner.len()) {
        return Err(EncapError::BadLength);
    }
    if header.seq == 0 {
        return Err(EncapError::BadSeq);
    }
    let kind = check_inner(&header, inner)?;
    let (covered, tag) = match (hdr.get(..MAC_AT), hdr.get(MAC_AT..)) {
        (Some(c), Some(t)) => (c, t),
        _ => return Err(EncapError::Short),
    };
    Ok(Parsed {
        header,
        inner,
        kind,
        covered,
        tag,
    })
}

/// Receives a datagram's payload from the peer whose node id is `peer`
/// (its outer source address already checked against the configured
/// peers): [`parse`], the sender and key id, `window`'s check, the MAC
/// under `mac` (the pair's session key), and then `window`'s update. On
/// any error `window` is unchanged.
pub fn open<'a, M: Mac + ?Sized, const W: usize>(
    pkt: &'a [u8],
    peer: u32,
    mac: &M,
    window: &mut ReplayWindow<W>,
) -> Result<Parsed<'a>, EncapError> {
    let p = parse(pkt)?;
    if p.header.sender != peer {
        return Err(EncapError::WrongPeer);
    }
    if p.header.key_id != KEY_ID {
        return Err(EncapError::BadKeyId);
    }
    window.check(p.header.seq)?;
    p.verify(mac)?;
    window.update(p.header.seq)?;
    Ok(p)
}

/// An IP packet's family, protocol, addresses and transport bytes.
struct Ip<'a> {
    family: Family,
    proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
    l4: &'a [u8],
}

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;
const IPV6_HOPOPTS: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_DSTOPTS: u8 = 60;

/// Whether a packet whose IP header's protocol (IPv4) or next header
/// (IPv6) field is `first` may be a packet of `proto` for [`flow_of`]: that
/// protocol, or an IPv6 extension header [`flow_of`] looks past. A test
/// on one byte before the packet's head is copied.
pub fn may_carry(first: u8, proto: Proto) -> bool {
    first == proto as u8 || matches!(first, IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS)
}

/// Parses an IP header. `whole`: the packet must be all there (lengths
/// exact) and not a fragment; otherwise (a packet quoted in an ICMP
/// error) it may be cut short after its headers, and only a non-first
/// fragment is refused.
fn parse_ip(pkt: &[u8], whole: bool) -> Result<Ip<'_>, EncapError> {
    let bad = EncapError::BadInner;
    let first = *pkt.first().ok_or(bad)?;
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    match first >> 4 {
        4 => {
            let ihl = usize::from(first & 0x0f) * 4;
            if ihl < 20 || ihl > pkt.len() {
                return Err(bad);
            }
            let total = usize::from(be16(pkt, 2).ok_or(bad)?);
            let frag = be16(pkt, 6).ok_or(bad)?;
            let cut = if whole {
                total != pkt.len() || frag & 0x3fff != 0
            } else {
                total < ihl || frag & 0x1fff != 0
            };
            if cut {
                return Err(bad);
            }
            src[..4].copy_from_slice(pkt.get(12..16).ok_or(bad)?);
            dst[..4].copy_from_slice(pkt.get(16..20).ok_or(bad)?);
            Ok(Ip {
                family: Family::V4,
                proto: *pkt.get(9).ok_or(bad)?,
                src,
                dst,
                l4: pkt.get(ihl..).ok_or(bad)?,
            })
        }
        6 => {
            let payload = usize::from(be16(pkt, 4).ok_or(bad)?);
            if pkt.len() < 40 || (whole && payload + 40 != pkt.len()) {
                return Err(bad);
            }
            src.copy_from_slice(pkt.get(8..24).ok_or(bad)?);
            dst.copy_from_slice(pkt.get(24..40).ok_or(bad)?);
            let mut next = *pkt.get(6).ok_or(bad)?;
            let mut at = 40;
            for _ in 0..MAX_EXT_HEADERS {
                if !matches!(next, IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS) {
                    break;
                }
                next = *pkt.get(at).ok_or(bad)?;
                let len = usize::from(*pkt.get(at.saturating_add(1)).ok_or(bad)?);
                at = at.saturating_add((len + 1) * 8);
            }
            if matches!(next, IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS) {
                return Err(bad);
            }
            Ok(Ip {
                family: Family::V6,
                proto: next,
                src,
                dst,
                l4: pkt.get(at..).ok_or(bad)?,
            })
        }
        _ => Err(bad),
    }
}

/// The transport protocol of the whole IP packet `pkt` (IPv4, or IPv6
/// past its extension headers) and where its transport header starts;
/// `None` for a packet cut short, a fragment, or lengths that disagree.
pub fn transport_of(pkt: &[u8]) -> Option<(u8, usize)> {
    let ip = parse_ip(pkt, true).ok()?;
    Some((ip.proto, pkt.len().checked_sub(ip.l4.len())?))
}

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;
const TCP_URG: u8 = 0x20;

/// What a TCP segment asks of a receiver that holds no socket of its
/// connection ([`tcp_kind`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TcpKind {
    /// A bare acknowledgement: ACK set, SYN, FIN, RST and URG not (PSH, ECE
    /// and CWR may be), no payload. It asks for nothing (a duplicate of a
    /// last ACK, a `TIME_WAIT`'s answer to a FIN sent again, a keepalive
    /// or window probe), yet such a receiver answers it with a reset.
    BareAck,
    /// A bare FIN: FIN and ACK set, SYN, RST and URG not, no payload (a
    /// FIN sent again, as after a lost or late ACK). A receiver whose
    /// socket went at the peer's last ACK (it closed second) answers it
    /// with a reset too.
    BareFin,
    /// A connection request: SYN set, ACK and RST not (data may follow,
    /// as with Fast Open).
    Syn,
    /// Any other segment, or no whole TCP segment at all.
    Other,
}

/// The [`TcpKind`] of the whole IP packet `pkt` (IPv4, or IPv6 past its
/// extension headers), in one parse: [`TcpKind::Other`] for another
/// protocol, a header cut short or a data offset below 20, a packet cut
/// short or a fragment.
pub fn tcp_kind(pkt: &[u8]) -> TcpKind {
    let Ok(ip) = parse_ip(pkt, true) else {
        return TcpKind::Other;
    };
    let (Some(&off), Some(&flags)) = (ip.l4.get(12), ip.l4.get(13)) else {
        return TcpKind::Other;
    };
    let doff = usize::from(off >> 4) * 4;
    if ip.proto != 6 || doff < 20 || doff > ip.l4.len() {
        return TcpKind::Other;
    }
    if flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN {
        TcpKind::Syn
    } else if doff == ip.l4.len()
        && flags & TCP_ACK != 0
        && flags & (TCP_FIN | TCP_SYN | TCP_RST | TCP_URG) == 0
    {
        TcpKind::BareAck
    } else if doff == ip.l4.len()
        && flags & (TCP_FIN | TCP_ACK) == TCP_FIN | TCP_ACK
        && flags & (TCP_SYN | TCP_RST | TCP_URG) == 0
    {
        TcpKind::BareFin
    } else {
        TcpKind::Other
    }
}

/// Whether `pkt` is a bare TCP acknowledgement ([`TcpKind::BareAck`]).
pub fn is_bare_ack(pkt: &[u8]) -> bool {
    tcp_kind(pkt) == TcpKind::BareAck
}

/// Whether `pkt` is a TCP connection request ([`TcpKind::Syn`]).
pub fn is_syn(pkt: &[u8]) -> bool {
    tcp_kind(pkt) == TcpKind::Syn
}

/// A packet's flow: what a forwarding decision keys on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Flow {
    /// The transport protocol.
    pub proto: Proto,
    /// The connection as the client sees it (source: the client).
    pub tuple: Tuple,
}

/// The flow of the IP packet that `head` begins (its first bytes, at least
/// the IP and transport headers' ports): `None` for a protocol other than
/// TCP and UDP, a fragment after the first, or a header cut short.
pub fn flow_of(head: &[u8]) -> Option<Flow> {
    let ip = parse_ip(head, false).ok()?;
    let proto = Proto::try_from(ip.proto).ok()?;
    let (client_port, server_port) = ports(ip.l4).ok()?;
    Some(Flow {
        proto,
        tuple: Tuple {
            family: ip.family,
            client: ip.src,
            server: ip.dst,
            client_port,
            server_port,
        },
    })
}

/// The flow of the connection that the ICMP or ICMPv6 error `head` (its
/// first bytes: the IP header, the ICMP header, the quoted packet's headers
/// and ports) is about: the quoted packet went from the server to the
/// client. `None` for anything else (not an error, not about TCP or UDP,
/// cut short).
pub fn icmp_error_flow(head: &[u8]) -> Option<Flow> {
    let (_, quoted) = icmp_error(head)?;
    let proto = Proto::try_from(quoted.proto).ok()?;
    let (server_port, client_port) = ports(quoted.l4).ok()?;
    Some(Flow {
        proto,
        tuple: Tuple {
            family: quoted.family,
            client: quoted.dst,
            server: quoted.src,
            client_port,
            server_port,
        },
    })
}

/// The ICMP or ICMPv6 error `head` and the packet it quotes, of the same
/// family, sent by the error's destination.
fn icmp_error(head: &[u8]) -> Option<(Ip<'_>, Ip<'_>)> {
    let ip = parse_ip(head, false).ok()?;
    let icmp_type = *ip.l4.first()?;
    let error = match ip.family {
        Family::V4 => ip.proto == IPPROTO_ICMP && matches!(icmp_type, 3 | 11 | 12),
        Family::V6 => ip.proto == IPPROTO_ICMPV6 && matches!(icmp_type, 1..=4),
    };
    if !error {
        return None;
    }
    let quoted = parse_ip(ip.l4.get(8..)?, false).ok()?;
    if quoted.family != ip.family || ip.dst != quoted.src {
        return None;
    }
    Some((ip, quoted))
}

/// Where, in the ICMP or ICMPv6 error `pkt` about a TCP segment, its ICMP
/// header starts and the quoted TCP header (at least its first 8 bytes:
/// ports and sequence number) starts; `None` for anything else.
pub fn icmp_error_tcp(pkt: &[u8]) -> Option<(usize, usize)> {
    let (ip, quoted) = icmp_error(pkt)?;
    if quoted.proto != Proto::Tcp as u8 || quoted.l4.len() < 8 {
        return None;
    }
    Some((pkt.len() - ip.l4.len(), pkt.len() - quoted.l4.len()))
}

/// The source and destination ports of a transport header.
fn ports(l4: &[u8]) -> Result<(u16, u16), EncapError> {
    match (be16(l4, 0), be16(l4, 2)) {
        (Some(s), Some(d)) => Ok((s, d)),
        _ => Err(EncapError::BadInner),
    }
}

/// Checks that `inner` is what a packet of `hdr`'s type may carry: nothing
/// for a verification; otherwise a whole IP packet of the reference's
/// family and protocol, with its transport header, from the client to the
/// server of the reference, or an ICMP error about a packet from that
/// server to that client.
pub fn check_inner(hdr: &EncapHeader, inner: &[u8]) -> Result<Inner, EncapError> {
    if hdr.ty == EncapType::Verified {
        return if inner.is_empty() {
            Ok(Inner::None)
        } else {
            Err(EncapError::BadLength)
        };
    }
    let t = &hdr.tuple;
    let ip = parse_ip(inner, true)?;
    if ip.family != t.family {
        return Err(EncapError::BadInner);
    }
    let icmp = match t.family {
        Family::V4 => IPPROTO_ICMP,
        Family::V6 => IPPROTO_ICMPV6,
    };
    if ip.proto == icmp {
        return check_icmp(hdr, &ip);
    }
    if ip.proto != hdr.proto as u8 || ip.l4.len() < hdr.proto.header_min() {
        return Err(EncapError::BadInner);
    }
    let (sport, dport) = ports(ip.l4)?;
    let same = ip.src == t.client
        && ip.dst == t.server
        && sport == t.client_port
        && dport == t.server_port;
    if same {
        Ok(Inner::Flow)
    } else {
        Err(EncapError::InnerMismatch)
    }
}

/// The ICMP error case of [`check_inner`]: `ip` is an ICMP (IPv4) or
/// ICMPv6 packet.
fn check_icmp(hdr: &EncapHeader, ip: &Ip<'_>) -> Result<Inner, EncapError> {
    let t = &hdr.tuple;
    let icmp_type = *ip.l4.first().ok_or(EncapError::BadInner)?;
    let error = match t.family {
        // Destination unreachable, time exceeded, parameter problem.
        Family::V4 => matches!(icmp_type, 3 | 11 | 12),
        // Destination unreachable, packet too big, time exceeded,
        // parameter problem.
        Family::V6 => matches!(icmp_type, 1..=4),
    };
    if !error {
        return Err(EncapError::BadInner);
    }
    // The client's address sent it or a router on the way did: only the
    // quoted packet names the connection.
    let quoted = parse_ip(ip.l4.get(8..).ok_or(EncapError::BadInner)?, false)?;
    if quoted.family != t.family || quoted.proto != hdr.proto as u8 {
        return Err(EncapError::BadInner);
    }
    let (sport, dport) = ports(quoted.l4)?;
    let same = quoted.src == t.server
        && quoted.dst == t.client
        && sport == t.server_port
        && dport == t.client_port
        && ip.dst == t.server;
    if same {
        Ok(Inner::IcmpError)
    } else {
        Err(EncapError::InnerMismatch)
    }
}

/// A sliding anti-replay window of `64 * W` sequence numbers (RFC 4303,
/// appendix A): a number is accepted once, if it is above the highest
/// accepted or at most `64 * W - 1` below it. A ring bitmap indexed by the
/// number modulo the window's size.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReplayWindow<const W: usize> {
    /// The highest number accepted (0: none yet).
    top: u64,
    bits: [u64; W],
}

/// The data plane's window: 1024 numbers (the design memo's).
pub type ReplayWindow1024 = ReplayWindow<16>;

impl<const W: usize> Default for ReplayWindow<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> ReplayWindow<W> {
    /// How many numbers the window spans.
    pub const SIZE: u64 = 64 * W as u64;

    /// Nothing accepted yet.
    pub const fn new() -> Self {
        ReplayWindow {
            top: 0,
            bits: [0; W],
        }
    }

    /// The highest number accepted (0: none yet).
    pub fn top(&self) -> u64 {
        self.top
    }

    /// The word and bit of `seq` in the ring.
    fn slot(seq: u64) -> Option<(usize, u64)> {
        let i = seq.checked_rem(Self::SIZE)?;
        Some(((i / 64) as usize, 1 << (i % 64)))
    }

    fn is_set(&self, seq: u64) -> bool {
        Self::slot(seq).is_some_and(|(w, b)| self.bits.get(w).is_some_and(|x| x & b != 0))
    }

    fn set(&mut self, seq: u64, on: bool) {
        if let Some((w, b)) = Self::slot(seq) {
            if let Some(x) = self.bits.get_mut(w) {
                if on {
                    *x |= b;
                } else {
                    *x &= !b;
                }
            }
        }
    }

    /// Whether `seq` would be accepted; changes nothing.
    pub fn check(&self, seq: u64) -> Result<(), EncapError> {
        if seq == 0 {
            return Err(EncapError::BadSeq);
        }
        if seq > self.top {
            return Ok(());
        }
        if self.top - seq >= Self::SIZE {
            return Err(EncapError::TooOld);
        }
        if self.is_set(seq) {
            return Err(EncapError::Replay);
        }
        Ok(())
    }

    /// Accepts `seq` if [`Self::check`] does, and records it (sliding the
    /// window forward when it is the highest yet); on error nothing
    /// changes.
    pub fn update(&mut self, seq: u64) -> Result<(), EncapError> {
        self.check(seq)?;
        if seq > self.top {
            if seq - self.top >= Self::SIZE {
                self.bits = [0; W];
            } else {
                // Forget the numbers the window slides past: they share
                // their slots with the ones it now takes in.
                let mut s = self.top;
                while s < seq {
                    s += 1;
                    self.set(s, false);
                }
            }
            self.top = seq;
        }
        self.set(seq, true);
        Ok(())
    }
}

/// The send side's sequence numbers toward one peer: 1, 2, 3...
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TxSeq {
    next: u64,
}

impl Default for TxSeq {
    fn default() -> Self {
        Self::new()
    }
}

impl TxSeq {
    /// Before the first packet.
    pub const fn new() -> Self {
        TxSeq { next: 1 }
    }

    /// The next packet's number (used up); [`EncapError::BadSeq`] once
    /// 2^64 - 1 were sent (the session key must change first).
    pub fn take(&mut self) -> Result<u64, EncapError> {
        let s = self.next;
        self.next = s.checked_add(1).ok_or(EncapError::BadSeq)?;
        Ok(s)
    }
}
