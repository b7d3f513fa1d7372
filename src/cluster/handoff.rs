// SPDX-License-Identifier: GPL-2.0

//! The handoff's pure parts (issue 12, part 3): the HANDOFF_REQ a front-end
//! builds from what its request socket learned, the checks a back-end makes
//! on one before acting on it, and the bound of the queue of frames waiting
//! for the control channel.
//!
//! No kernel object: the module's hold fills a [`Learned`] from its
//! request-socket snapshot, and the host tests check the mapping.

use super::frame::{
    Family, HandoffReq, Timestamps, Tuple, WScale, FRAME_MAX, HEADER_LEN, MAX_WSCALE, TAG_LEN,
    TLV_HEADER_LEN, TUPLE_LEN,
};
use super::request::MAX_HEADER;

/// What the front-end's request socket learned in the handshake (the
/// fields of the kernel's `tcp_request_sock`/`inet_request_sock` that a
/// back-end needs to replay the connection).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Learned {
    /// The client's ISN.
    pub rcv_isn: u32,
    /// The front-end's ISN (of its SYN-ACK).
    pub snt_isn: u32,
    /// What the front-end adds to its TCP clock in its TSvals.
    pub ts_off: u32,
    /// The client's latest TSval.
    pub ts_recent: u32,
    /// The MSS the front-end will use (`req->mss`).
    pub mss: u16,
    /// The client's window scale.
    pub snd_wscale: u8,
    /// The front-end's window scale.
    pub rcv_wscale: u8,
    /// Window scaling negotiated.
    pub wscale_ok: bool,
    /// SACK negotiated.
    pub sack_ok: bool,
    /// Timestamps negotiated.
    pub tstamp_ok: bool,
    /// ECN negotiated.
    pub ecn_ok: bool,
}

/// Builds the HANDOFF_REQ of a held connection: `tuple` as the client
/// sees it, `learned` from its request socket, `tcp_clock_ms` the
/// front-end's TCP clock now (milliseconds, before the offset),
/// `client_window` the window field of the client's last segment (not
/// scaled), `request` the reassembled request bytes.
pub fn build_req<'a>(
    tuple: Tuple,
    learned: &Learned,
    tcp_clock_ms: u32,
    client_window: u16,
    request: &'a [u8],
) -> HandoffReq<'a> {
    HandoffReq {
        tuple,
        client_isn: learned.rcv_isn,
        server_isn: learned.snt_isn,
        mss: learned.mss,
        wscale: learned.wscale_ok.then_some(WScale {
            client: learned.snd_wscale.min(MAX_WSCALE),
            server: learned.rcv_wscale.min(MAX_WSCALE),
        }),
        sack_ok: learned.sack_ok,
        timestamps: learned.tstamp_ok.then_some(Timestamps {
            client_tsval: learned.ts_recent,
            fe_tsval_now: tcp_clock_ms.wrapping_add(learned.ts_off),
            ts_offset: learned.ts_off,
        }),
        ecn: learned.ecn_ok,
        client_window: u32::from(client_window),
        // The request socket keeps no RTT sample we read (0: unknown).
        rtt_us: 0,
        request,
    }
}

/// The largest request a HANDOFF_REQ carries: the hold's buffer.
pub const MAX_REQUEST: usize = MAX_HEADER;

/// Bytes of a HANDOFF_REQ frame with `request_len` request bytes, at most
/// (every optional TLV present).
pub const fn req_frame_len(request_len: usize) -> usize {
    // tuple, 2 ISNs, MSS, wscale, SACK flag, timestamps, ECN flag, window,
    // RTT, request.
    HEADER_LEN
        + (TLV_HEADER_LEN + TUPLE_LEN)
        + 2 * (TLV_HEADER_LEN + 4)
        + (TLV_HEADER_LEN + 4)
        + (TLV_HEADER_LEN + 4)
        + TLV_HEADER_LEN
        + (TLV_HEADER_LEN + 12)
        + TLV_HEADER_LEN
        + 2 * (TLV_HEADER_LEN + 4)
        + TLV_HEADER_LEN
        + request_len.div_ceil(4) * 4
        + TAG_LEN
}

// The largest HANDOFF_REQ fits a frame.
const _: () = assert!(req_frame_len(MAX_REQUEST) <= FRAME_MAX);

/// Why a back-end refuses a HANDOFF_REQ before looking for a listener.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Invalid {
    /// No request bytes, or more than [`MAX_REQUEST`].
    RequestLength,
    /// An MSS below 64 (no TCP path carries less).
    Mss,
    /// A port 0.
    Port,
    /// The tuple's family is not the configured service's.
    Family,
}

/// The bounds a back-end checks on a HANDOFF_REQ (the codec checked its
/// layout; a window scale beyond 14 does not decode).
pub fn check_req(req: &HandoffReq<'_>, service_family: Family) -> Result<(), Invalid> {
    if req.request.is_empty() || req.request.len() > MAX_REQUEST {
        return Err(Invalid::RequestLength);
    }
    if req.mss < 64 {
        return Err(Invalid::Mss);
    }
    if req.tuple.client_port == 0 || req.tuple.server_port == 0 {
        return Err(Invalid::Port);
    }
    if req.tuple.family != service_family {
        return Err(Invalid::Family);
    }
    Ok(())
}

/// At most this many frames wait for the channels of a namespace.
pub const OUTBOX_FRAMES: usize = 256;
/// At most this many request bytes wait in those frames.
pub const OUTBOX_BYTES: usize = 1 << 20;

/// The bound of the frames waiting to be sent: a count and the bytes they
/// carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct OutboxBound {
    frames: usize,
    bytes: usize,
}

impl OutboxBound {
    /// An empty outbox.
    pub const fn new() -> Self {
        Self {
            frames: 0,
            bytes: 0,
        }
    }

    /// Admits a frame carrying `bytes`: `false` (nothing changes) when it
    /// would pass either bound.
    pub fn admit(&mut self, bytes: usize) -> bool {
        if self.frames >= OUTBOX_FRAMES || bytes > OUTBOX_BYTES - self.bytes {
            return false;
        }
        self.frames += 1;
        self.bytes += bytes;
        true
    }

    /// Everything was taken out.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Frames waiting.
    pub fn frames(&self) -> usize {
        self.frames
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{Decode, Encode, TlvWriter};
    use super::*;

    fn tuple() -> Tuple {
        let mut client = [0u8; 16];
        let mut server = [0u8; 16];
        client[..4].copy_from_slice(&[10, 78, 0, 1]);
        server[..4].copy_from_slice(&[10, 78, 0, 2]);
        Tuple {
            family: Family::V4,
            client,
            server,
            client_port: 40000,
            server_port: 80,
        }
    }

    fn learned() -> Learned {
        Learned {
            rcv_isn: 0xdead_beef,
            snt_isn: 0x1234_5678,
            ts_off: 0xffff_0000,
            ts_recent: 777,
            mss: 1460,
            snd_wscale: 7,
            rcv_wscale: 9,
            wscale_ok: true,
            sack_ok: true,
            tstamp_ok: true,
            ecn_ok: false,
        }
    }

    #[test]
    fn req_carries_the_learned_state() {
        let body = b"GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n";
        let r = build_req(tuple(), &learned(), 0x0002_0000, 501, body);
        assert_eq!(r.client_isn, 0xdead_beef);
        assert_eq!(r.server_isn, 0x1234_5678);
        assert_eq!(r.mss, 1460);
        assert_eq!(
            r.wscale,
            Some(WScale {
                client: 7,
                server: 9
            })
        );
        assert!(r.sack_ok && !r.ecn);
        let ts = r.timestamps.unwrap();
        assert_eq!(ts.client_tsval, 777);
        // The clock plus the offset, wrapping.
        assert_eq!(ts.fe_tsval_now, 0x0001_0000);
        assert_eq!(ts.ts_offset, 0xffff_0000);
        assert_eq!(r.client_window, 501);
        assert_eq!(r.request, body);
        // It survives the codec.
        let mut buf = [0u8; 512];
        let n = {
            let mut w = TlvWriter::new(&mut buf);
            r.encode(&mut w).unwrap();
            w.len()
        };
        assert_eq!(HandoffReq::decode(&buf[..n]).unwrap(), r);
        assert!(HEADER_LEN + n + TAG_LEN <= req_frame_len(body.len()));
    }

    #[test]
    fn options_off_are_absent() {
        let l = Learned {
            wscale_ok: false,
            tstamp_ok: false,
            sack_ok: false,
            ecn_ok: true,
            ..learned()
        };
        let r = build_req(tuple(), &l, 5, 0, b"x");
        assert_eq!(r.wscale, None);
        assert_eq!(r.timestamps, None);
        assert!(!r.sack_ok && r.ecn);
    }

    #[test]
    fn largest_req_fits_its_bound() {
        let body = [b'a'; MAX_REQUEST];
        let r = build_req(tuple(), &learned(), 1, 1, &body);
        let mut buf = vec![0u8; FRAME_MAX];
        let n = {
            let mut w = TlvWriter::new(&mut buf[HEADER_LEN..FRAME_MAX - TAG_LEN]);
            r.encode(&mut w).unwrap();
            w.len()
        };
        assert!(HEADER_LEN + n + TAG_LEN <= req_frame_len(MAX_REQUEST));
    }

    #[test]
    fn check_refuses_out_of_bounds() {
        let body = [b'a'; MAX_REQUEST + 1];
        let ok = build_req(tuple(), &learned(), 1, 1, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(check_req(&ok, Family::V4), Ok(()));
        assert_eq!(check_req(&ok, Family::V6), Err(Invalid::Family));
        let r = HandoffReq { request: &[], ..ok };
        assert_eq!(check_req(&r, Family::V4), Err(Invalid::RequestLength));
        let r = HandoffReq {
            request: &body,
            ..ok
        };
        assert_eq!(check_req(&r, Family::V4), Err(Invalid::RequestLength));
        let r = HandoffReq { mss: 0, ..ok };
        assert_eq!(check_req(&r, Family::V4), Err(Invalid::Mss));
        let mut t = tuple();
        t.client_port = 0;
        let r = HandoffReq { tuple: t, ..ok };
        assert_eq!(check_req(&r, Family::V4), Err(Invalid::Port));
    }

    #[test]
    fn outbox_bound() {
        let mut b = OutboxBound::new();
        for _ in 0..OUTBOX_FRAMES {
            assert!(b.admit(1));
        }
        assert!(!b.admit(0));
        assert_eq!(b.frames(), OUTBOX_FRAMES);
        b.clear();
        assert!(b.admit(OUTBOX_BYTES));
        assert!(!b.admit(1));
        b.clear();
        assert!(!b.admit(OUTBOX_BYTES + 1));
        assert_eq!(b.frames(), 0);
    }
}
