// SPDX-License-Identifier: GPL-2.0

//! The cluster's per-namespace state: a TEMPORARY STAND-IN (helper "chan")
//! with the configuration types of the cluster design, until helper
//! "genl"'s `mod.rs` (which owns them) is merged and replaces this file.

#![allow(dead_code)]

pub(crate) mod channel;
pub(crate) mod netlink;

/// An address family.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AddrFamily {
    V4,
    V6,
}

/// An IPv4 or IPv6 address (network order; IPv4 in `bytes[..4]`, the rest 0).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Addr {
    pub(crate) family: AddrFamily,
    pub(crate) bytes: [u8; 16],
}

/// A pair's HMAC key, 16 to 64 bytes.
#[derive(Clone)]
pub(crate) struct Key {
    len: u8,
    bytes: [u8; 64],
}

impl Key {
    /// The key of `b`; `None` unless it has 16 to 64 bytes.
    pub(crate) fn new(b: &[u8]) -> Option<Self> {
        if !(16..=64).contains(&b.len()) {
            return None;
        }
        let mut bytes = [0; 64];
        bytes[..b.len()].copy_from_slice(b);
        Some(Self {
            len: b.len() as u8,
            bytes,
        })
    }

    /// The key's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// This node.
pub(crate) struct NodeConfig {
    pub(crate) id: u32,
    pub(crate) ctl_addr: Addr,
    pub(crate) ctl_port: u16,
    pub(crate) fwd_addr: Option<Addr>,
    pub(crate) fwd_port: u16,
    pub(crate) hb_interval_ms: u32,
}

/// A peer.
pub(crate) struct PeerConfig {
    pub(crate) id: u32,
    pub(crate) addr: Addr,
    pub(crate) ctl_port: u16,
    pub(crate) key: Key,
}
