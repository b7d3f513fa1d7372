// SPDX-License-Identifier: GPL-2.0

//! The back-end's replay of a handed-off connection, as packets: a builder
//! of IPv4 and IPv6 TCP segments (headers, options, checksums) and the
//! plan of segments that replays a [`HandoffReq`] into the local TCP.
//!
//! The plan (design memo, section 3 (i), steps 2 and 4): the client's SYN
//! as the front-end received it (sequence number `client_isn`, the options
//! the front-end negotiated, TSval `client_tsval`, ECE|CWR when ECN was
//! negotiated), then the client's ACK of the front-end's SYN-ACK carrying
//! the request (sequence `client_isn + 1`, acknowledgement
//! `server_isn + 1`), cut into segments of at most the client's MSS. The
//! ACKs echo the front-end's clock (`fe_tsval_now`) in TSecr: the TSval the
//! back-end's request socket will carry once the replay wrote the
//! front-end's state into it.
//!
//! Options are laid out as Linux lays them out (`tcp_options_write`): MSS,
//! then SACK-permitted and timestamps together (`4 2 8 10`), or either
//! alone after two NOPs, then window scale after one NOP.
//!
//! Pure: no allocation, no panic on any input, no `unsafe`.

use super::frame::{Family, HandoffReq, Tuple};
use super::xlate::{
    sum_at, tcp_checksum, Pseudo, OPT_MSS, OPT_NOP, OPT_TS, PROTO_TCP, TCP_HDR_MIN,
};

/// Bytes of an IPv4 header without options.
pub const IPV4_HDR_LEN: usize = 20;
/// Bytes of an IPv6 header.
pub const IPV6_HDR_LEN: usize = 40;
/// The most bytes of options a built segment carries (MSS, SACK-permitted,
/// timestamps, window scale).
pub const OPTS_MAX: usize = 20;
/// The most bytes of headers a built segment has.
pub const HDR_MAX: usize = IPV6_HDR_LEN + TCP_HDR_MIN + OPTS_MAX;
/// The smallest MSS the plan cuts the request by (`TCP_MIN_MSS`).
pub const MIN_MSS: u16 = 88;
/// The hop limit of the segments (a received packet's; TCP ignores it).
pub const TTL: u8 = 64;

/// TCP flags.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// ECN-Echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

/// Option kinds (MSS, NOP and timestamps: `xlate`'s).
const OPT_WS: u8 = 3;
const OPT_SACK_PERM: u8 = 4;

/// The options of a segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TcpOpts {
    /// Maximum segment size (SYN only).
    pub mss: Option<u16>,
    /// Window scale shift (SYN only).
    pub wscale: Option<u8>,
    /// SACK permitted (SYN only).
    pub sack_perm: bool,
    /// Timestamps: TSval and TSecr.
    pub ts: Option<(u32, u32)>,
}

impl TcpOpts {
    /// Bytes the options take, padded to a multiple of 4 (at most
    /// [`OPTS_MAX`]).
    pub fn len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        // SACK-permitted rides in the timestamps' padding, or takes a word.
        n += match (self.sack_perm, self.ts.is_some()) {
            (_, true) => 12,
            (true, false) => 4,
            (false, false) => 0,
        };
        if self.wscale.is_some() {
            n += 4;
        }
        n
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes them into `out` (at least [`Self::len`] bytes).
    fn write(&self, out: &mut [u8]) -> Option<()> {
        let mut w = Writer { out, at: 0 };
        if let Some(mss) = self.mss {
            w.put(&[OPT_MSS, 4])?;
            w.put(&mss.to_be_bytes())?;
        }
        match (self.sack_perm, self.ts) {
            (sack, Some((tsval, tsecr))) => {
                if sack {
                    w.put(&[OPT_SACK_PERM, 2, OPT_TS, 10])?;
                } else {
                    w.put(&[OPT_NOP, OPT_NOP, OPT_TS, 10])?;
                }
                w.put(&tsval.to_be_bytes())?;
                w.put(&tsecr.to_be_bytes())?;
            }
            (true, None) => w.put(&[OPT_NOP, OPT_NOP, OPT_SACK_PERM, 2])?,
            (false, None) => {}
        }
        if let Some(ws) = self.wscale {
            w.put(&[OPT_NOP, OPT_WS, 3, ws])?;
        }
        Some(())
    }
}

/// Writes bytes one after the other into a slice.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) -> Option<()> {
        let end = self.at.checked_add(b.len())?;
        self.out.get_mut(self.at..end)?.copy_from_slice(b);
        self.at = end;
        Some(())
    }
}

/// One TCP segment to build.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Segment<'a> {
    /// Source and destination addresses (their family is the packet's).
    pub addrs: Pseudo,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (0 without ACK).
    pub ack: u32,
    /// Flags ([`flags`]).
    pub flags: u8,
    /// The window field, unscaled.
    pub window: u16,
    /// Options.
    pub opts: TcpOpts,
    /// Payload.
    pub payload: &'a [u8],
}

/// Why a segment cannot be built.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BuildError {
    /// The buffer is shorter than [`Segment::len`].
    Short,
    /// The packet would be longer than its length field holds.
    TooLong,
}

impl Segment<'_> {
    /// Bytes of the IP header.
    pub fn ip_hdr_len(&self) -> usize {
        match self.addrs {
            Pseudo::V4(..) => IPV4_HDR_LEN,
            Pseudo::V6(..) => IPV6_HDR_LEN,
        }
    }

    /// Bytes of the TCP header with its options.
    pub fn tcp_hdr_len(&self) -> usize {
        TCP_HDR_MIN + self.opts.len()
    }

    /// Bytes of the whole packet.
    pub fn len(&self) -> usize {
        self.ip_hdr_len() + self.tcp_hdr_len() + self.payload.len()
    }

    /// Whether the packet is empty (never: it has headers).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the packet (IP header, TCP header, options, payload, both
    /// checksums) at the start of `out`; returns its length.
    pub fn build(&self, out: &mut [u8]) -> Result<usize, BuildError> {
        let len = self.len();
        let ip_len = self.ip_hdr_len();
        let tcp_len = len - ip_len;
        let out = out.get_mut(..len).ok_or(BuildError::Short)?;
        match self.addrs {
            Pseudo::V4(s, d) => {
                let total = u16::try_from(len).map_err(|_| BuildError::TooLong)?;
                let h = &mut out[..IPV4_HDR_LEN];
                h.fill(0);
                h[0] = 0x45;
                h[2..4].copy_from_slice(&total.to_be_bytes());
                // Don't fragment.
                h[6] = 0x40;
                h[8] = TTL;
                h[9] = PROTO_TCP;
                h[12..16].copy_from_slice(&s);
                h[16..20].copy_from_slice(&d);
                let check = !sum_at(0, h);
                h[10..12].copy_from_slice(&check.to_be_bytes());
            }
            Pseudo::V6(s, d) => {
                let plen = u16::try_from(tcp_len).map_err(|_| BuildError::TooLong)?;
                let h = &mut out[..IPV6_HDR_LEN];
                h.fill(0);
                h[0] = 0x60;
                h[4..6].copy_from_slice(&plen.to_be_bytes());
                h[6] = PROTO_TCP;
                h[7] = TTL;
                h[8..24].copy_from_slice(&s);
                h[24..40].copy_from_slice(&d);
            }
        }
        let tcp = &mut out[ip_len..];
        let hlen = self.tcp_hdr_len();
        let (hdr, payload) = tcp.split_at_mut(hlen);
        hdr[0..2].copy_from_slice(&self.sport.to_be_bytes());
        hdr[2..4].copy_from_slice(&self.dport.to_be_bytes());
        hdr[4..8].copy_from_slice(&self.seq.to_be_bytes());
        hdr[8..12].copy_from_slice(&self.ack.to_be_bytes());
        // hlen is at most 40, so the data offset fits its 4 bits.
        hdr[12] = ((hlen / 4) as u8) << 4;
        hdr[13] = self.flags;
        hdr[14..16].copy_from_slice(&self.window.to_be_bytes());
        hdr[16..20].fill(0);
        self.opts
            .write(&mut hdr[TCP_HDR_MIN..])
            .ok_or(BuildError::Short)?;
        payload.copy_from_slice(self.payload);
        let check = tcp_checksum(&self.addrs, tcp);
        tcp[16..18].copy_from_slice(&check.to_be_bytes());
        Ok(len)
    }
}

/// What a zero window probe of the server's side of a connection takes
/// from its socket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ProbeFields {
    /// The oldest sequence number the client has not acknowledged.
    pub snd_una: u32,
    /// The next sequence number expected from the client.
    pub rcv_nxt: u32,
    /// The window field the socket advertises (scaled down, at most 65535).
    pub window: u16,
    /// With timestamps: TSval (the socket's clock now) and TSecr.
    pub ts: Option<(u32, u32)>,
}

/// The byte a probe carries. It stands for the last byte the client
/// acknowledged, which the client drops unread as a duplicate.
const PROBE_BYTE: [u8; 1] = [0];

/// A zero window probe that carries one byte: the byte before `snd_una`,
/// which the client already has, from the server (`addrs`, as
/// [`server_addrs`] gives them) to the client. A duplicate segment makes
/// the client's TCP acknowledge at once (RFC 9293, 3.10.7.4), with its
/// window as it stands. Linux's own probe carries no data (sequence
/// `snd_una - 1`): the client answers it as an old segment, at most once
/// per 500 ms (`tcp_invalid_ratelimit`), a limit that does not apply to a
/// segment with data.
pub fn dup_probe(addrs: Pseudo, sport: u16, dport: u16, f: &ProbeFields) -> Segment<'static> {
    Segment {
        addrs,
        sport,
        dport,
        seq: f.snd_una.wrapping_sub(1),
        ack: f.rcv_nxt,
        flags: flags::ACK,
        window: f.window,
        opts: TcpOpts {
            ts: f.ts,
            ..TcpOpts::default()
        },
        payload: &PROBE_BYTE,
    }
}

/// The addresses of the server's packets of `t`'s connection: server to
/// client.
pub fn server_addrs(t: &Tuple) -> Pseudo {
    pseudo(t.family, &t.server, &t.client)
}

/// Source `s` and destination `d` of `family` (IPv4 in the first 4 bytes).
fn pseudo(family: Family, s: &[u8; 16], d: &[u8; 16]) -> Pseudo {
    match family {
        Family::V4 => Pseudo::V4([s[0], s[1], s[2], s[3]], [d[0], d[1], d[2], d[3]]),
        Family::V6 => Pseudo::V6(*s, *d),
    }
}

/// Why a handoff cannot be replayed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PlanError {
    /// The tuple's family and addresses disagree (an IPv4 tuple with bytes
    /// past its addresses is refused by the codec already).
    BadTuple,
    /// A window scale shift over 14.
    BadWScale,
    /// The request does not fit the segments' length fields.
    TooLong,
}

/// The segments that replay one handed-off connection: [`Plan::syn`],
/// then [`Plan::acks`] of them ([`Plan::ack`]). Everything is derived from
/// the request; nothing is copied.
#[derive(Clone, Copy, Debug)]
pub struct Plan<'a> {
    req: HandoffReq<'a>,
    /// Payload bytes per ACK segment (at least 1).
    chunk: usize,
}

impl<'a> Plan<'a> {
    /// The plan for `req`, checked.
    pub fn new(req: &HandoffReq<'a>) -> Result<Self, PlanError> {
        if let Some(ws) = req.wscale {
            if ws.client > super::frame::MAX_WSCALE || ws.server > super::frame::MAX_WSCALE {
                return Err(PlanError::BadWScale);
            }
        }
        let ts_len = if req.timestamps.is_some() { 12 } else { 0 };
        // The client's MSS counts no options; a segment's payload leaves room
        // for the timestamps (as the client's own sender does).
        let chunk = usize::from(req.mss.max(MIN_MSS)) - ts_len;
        let hdr = match req.tuple.family {
            Family::V4 => IPV4_HDR_LEN,
            Family::V6 => 0,
        } + TCP_HDR_MIN
            + ts_len;
        if req.request.len().min(chunk) + hdr > usize::from(u16::MAX) {
            return Err(PlanError::TooLong);
        }
        if u32::try_from(req.request.len()).is_err() {
            return Err(PlanError::TooLong);
        }
        Ok(Plan { req: *req, chunk })
    }

    /// The request the plan replays.
    pub fn req(&self) -> &HandoffReq<'a> {
        &self.req
    }

    /// The addresses of the client's packets: client to server.
    pub fn addrs(&self) -> Pseudo {
        let t = &self.req.tuple;
        pseudo(t.family, &t.client, &t.server)
    }

    /// The window field of the client's segments: its last window, unscaled
    /// (at most 65535; on the SYN the field is never scaled).
    pub fn window(&self) -> u16 {
        u16::try_from(self.req.client_window).unwrap_or(u16::MAX)
    }

    /// Payload bytes per ACK segment.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// The SYN.
    pub fn syn(&self) -> Segment<'a> {
        let r = &self.req;
        let mut fl = flags::SYN;
        if r.ecn {
            fl |= flags::ECE | flags::CWR;
        }
        Segment {
            addrs: self.addrs(),
            sport: r.tuple.client_port,
            dport: r.tuple.server_port,
            seq: r.client_isn,
            ack: 0,
            flags: fl,
            window: self.window(),
            opts: TcpOpts {
                mss: Some(r.mss),
                wscale: r.wscale.map(|w| w.client),
                sack_perm: r.sack_ok,
                ts: r.timestamps.map(|t| (t.client_tsval, 0)),
            },
            payload: &[],
        }
    }

    /// How many ACK segments follow the SYN (at least 1: the handshake's
    /// ACK, with the request's first bytes if there are any).
    pub fn acks(&self) -> usize {
        self.req.request.len().div_ceil(self.chunk).max(1)
    }

    /// The `i`th ACK segment (`i < acks()`; later ones are empty).
    pub fn ack(&self, i: usize) -> Segment<'a> {
        let r = &self.req;
        let req: &'a [u8] = r.request;
        let from = i.saturating_mul(self.chunk).min(req.len());
        let to = from.saturating_add(self.chunk).min(req.len());
        let payload = &req[from..to];
        let mut fl = flags::ACK;
        if to == req.len() && !payload.is_empty() {
            fl |= flags::PSH;
        }
        Segment {
            addrs: self.addrs(),
            sport: r.tuple.client_port,
            dport: r.tuple.server_port,
            // `from` fits u32: checked in `new`.
            seq: r.client_isn.wrapping_add(1).wrapping_add(from as u32),
            ack: r.server_isn.wrapping_add(1),
            flags: fl,
            window: self.window(),
            opts: TcpOpts {
                ts: r.timestamps.map(|t| (t.client_tsval, t.fe_tsval_now)),
                ..TcpOpts::default()
            },
            payload,
        }
    }

    /// The client's next sequence number once the plan was replayed (the
    /// back-end's `rcv_nxt`).
    pub fn rcv_nxt(&self) -> u32 {
        // Fits u32: checked in `new`.
        self.req
            .client_isn
            .wrapping_add(1)
            .wrapping_add(self.req.request.len() as u32)
    }
}

/// PAWS ignores a peer's timestamp last seen this many seconds ago or
/// more (`TCP_PAWS_WRAP`: `INT_MAX / USEC_PER_SEC` in 6.12).
pub const PAWS_WRAP_S: u32 = 2147;

/// What a `TIME_WAIT` socket of a tuple keeps of its connection
/// (`struct tcp_timewait_sock`), as TCP's `tcp_timewait_state_process`
/// reads it for a new SYN.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TimeWait {
    /// Still `FIN_WAIT2` (`tw_substate`): the client has not closed yet.
    pub fin_wait2: bool,
    /// The client's next sequence number in the old connection.
    pub rcv_nxt: u32,
    /// The client's last TSval in it.
    pub ts_recent: u32,
    /// When `ts_recent` was seen (seconds, `ktime_get_seconds()`); 0:
    /// no timestamps.
    pub ts_recent_stamp: u32,
}

/// `a` after `b` in sequence space (`after()`).
fn seq_after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

impl TimeWait {
    /// Whether TCP would take a SYN (no ACK, no RST) with sequence number
    /// `seq` and TSval `tsval` (`None`: no timestamps option) arriving at
    /// `now_s` seconds as a new connection, killing this `TIME_WAIT`
    /// socket (`TCP_TW_SYN`). Otherwise TCP answers it with an ACK (or,
    /// from `FIN_WAIT2`, a reset) and the old connection stays.
    ///
    /// RFC 1122 4.2.2.13 as Linux applies it: not from `FIN_WAIT2`; not
    /// rejected by PAWS (a TSval older than `ts_recent`, seen less than
    /// [`PAWS_WRAP_S`] ago); and the SYN's sequence number after the old
    /// connection's `rcv_nxt`, or its TSval newer than `ts_recent`.
    pub fn accepts_syn(&self, seq: u32, tsval: Option<u32>, now_s: u32) -> bool {
        if self.fin_wait2 {
            return false;
        }
        // TCP parses the timestamp only when the old connection had them.
        let tsval = tsval.filter(|_| self.ts_recent_stamp != 0);
        let paws_reject = tsval.is_some_and(|v| {
            // `tcp_paws_check(.., 0)` failing: older than ts_recent, seen
            // recently (`time_before32`), and ts_recent not 0.
            (self.ts_recent.wrapping_sub(v) as i32) > 0
                && (now_s.wrapping_sub(self.ts_recent_stamp.wrapping_add(PAWS_WRAP_S)) as i32) < 0
                && self.ts_recent != 0
        });
        !paws_reject
            && (seq_after(seq, self.rcv_nxt)
                || tsval.is_some_and(|v| (self.ts_recent.wrapping_sub(v) as i32) < 0))
    }
}
