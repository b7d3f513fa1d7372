// SPDX-License-Identifier: GPL-2.0

//! What several test files share: the MACs the codecs are tested with,
//! connections, HANDOFF_REQ fields and the one's complement sum from scratch.

// Each test file uses a part of this module.
#![allow(dead_code)]

pub mod tcp;

use hmac::{Hmac, Mac as _};
use proptest::prelude::*;
use sha2::Sha256;
use sockgroup_logic::frame::{
    Family, HandoffReq, Mac, MacError, Placement, Timestamps, Tuple, WScale, MAX_WSCALE, TAG_LEN,
};

/// HMAC-SHA256 from the `hmac` and `sha2` crates, as the kernel's
/// `hmac(sha256)` shash does it in the module.
pub struct HmacSha256(pub Vec<u8>);

impl Mac for HmacSha256 {
    fn tag(&self, parts: &[&[u8]]) -> Result<[u8; TAG_LEN], MacError> {
        let mut m = <Hmac<Sha256>>::new_from_slice(&self.0).map_err(|_| MacError)?;
        for p in parts {
            m.update(p);
        }
        Ok(m.finalize().into_bytes().into())
    }
}

/// A MAC that fails, as a kernel crypto call may.
pub struct Broken;

impl Mac for Broken {
    fn tag(&self, _: &[&[u8]]) -> Result<[u8; TAG_LEN], MacError> {
        Err(MacError)
    }
}

/// The IPv4 connection from 10.0.0.1 port `port` to 10.0.0.100:80.
pub fn conn_from(port: u16) -> Tuple {
    let mut client = [0u8; 16];
    client[..4].copy_from_slice(&[10, 0, 0, 1]);
    let mut server = [0u8; 16];
    server[..4].copy_from_slice(&[10, 0, 0, 100]);
    Tuple {
        family: Family::V4,
        client,
        server,
        client_port: port,
        server_port: 80,
    }
}

/// Any connection, IPv4 (zeros past the addresses) or IPv6.
pub fn tuple() -> impl Strategy<Value = Tuple> {
    (
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(v6, mut client, mut server, client_port, server_port)| {
            if !v6 {
                client[4..].fill(0);
                server[4..].fill(0);
            }
            Tuple {
                family: if v6 { Family::V6 } else { Family::V4 },
                client,
                server,
                client_port,
                server_port,
            }
        })
}

/// A HANDOFF_REQ's fields other than the request bytes.
#[derive(Clone, Debug)]
pub struct ReqFields {
    pub tuple: Tuple,
    pub isns: (u32, u32),
    pub mss: u16,
    pub wscale: Option<WScale>,
    pub sack_ok: bool,
    pub timestamps: Option<Timestamps>,
    pub ecn: bool,
    pub client_window: u32,
    pub rtt_us: u32,
}

/// Any HANDOFF_REQ fields (window scales within range).
pub fn req_fields() -> impl Strategy<Value = ReqFields> {
    (
        tuple(),
        any::<(u32, u32)>(),
        any::<u16>(),
        prop::option::of((0..=MAX_WSCALE, 0..=MAX_WSCALE)),
        any::<bool>(),
        prop::option::of(any::<(u32, u32, u32)>()),
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(tuple, isns, mss, ws, sack_ok, ts, ecn, client_window, rtt_us)| ReqFields {
                tuple,
                isns,
                mss,
                wscale: ws.map(|(client, server)| WScale { client, server }),
                sack_ok,
                timestamps: ts.map(|(client_tsval, fe_tsval_now, ts_offset)| Timestamps {
                    client_tsval,
                    fe_tsval_now,
                    ts_offset,
                }),
                ecn,
                client_window,
                rtt_us,
            },
        )
}

impl ReqFields {
    /// The request with these fields and `request`.
    pub fn with<'a>(&self, request: &'a [u8]) -> HandoffReq<'a> {
        HandoffReq {
            tuple: self.tuple,
            client_isn: self.isns.0,
            server_isn: self.isns.1,
            mss: self.mss,
            wscale: self.wscale,
            sack_ok: self.sack_ok,
            timestamps: self.timestamps,
            ecn: self.ecn,
            client_window: self.client_window,
            rtt_us: self.rtt_us,
            request,
        }
    }
}

/// The folded one's complement sum of `bytes` (a last odd byte padded).
pub fn fold(bytes: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for c in bytes.chunks(2) {
        sum += u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// CRC32C bit by bit from its definition (reflected, polynomial
/// 0x82F63B78), as the kernel's `__crc32c_le`: no inversion.
pub struct SoftCrc32c;

impl sockgroup_logic::owner::Crc32c for SoftCrc32c {
    fn crc32c_le(&self, mut crc: u32, data: &[u8]) -> u32 {
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }
}

/// A cookie name or value.
pub fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]{1,12}"
}

/// An HTTP/1.1 GET of `path` on `host` with these cookies (one Cookie
/// header, none if empty).
pub fn http_request(path: &str, host: &str, cookies: &[(String, String)]) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: t\r\n");
    if !cookies.is_empty() {
        let c: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
        r += &format!("Cookie: {}\r\n", c.join("; "));
    }
    r += "\r\n";
    r.into_bytes()
}

/// Any placement of a dispatcher's connection.
pub fn placement() -> impl Strategy<Value = Placement> {
    prop_oneof![
        Just(Placement::Forwarded),
        Just(Placement::Pending),
        Just(Placement::Local),
    ]
}
