// SPDX-License-Identifier: GPL-2.0

//! Packets (`struct sk_buff`) as a netfilter hook sees them.
//!
//! C headers: [`include/linux/skbuff.h`](srctree/include/linux/skbuff.h),
//! [`include/linux/netfilter.h`](srctree/include/linux/netfilter.h).

use super::{bindings, net::Net, rcu, sock::Sock};
use kernel::types::Opaque;

/// The network-layer family of a packet or a socket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
}

impl Family {
    /// From `NFPROTO_*`.
    pub(crate) fn from_nfproto(pf: u8) -> Option<Self> {
        match u32::from(pf) {
            bindings::NFPROTO_IPV4 => Some(Family::Inet),
            bindings::NFPROTO_IPV6 => Some(Family::Inet6),
            _ => None,
        }
    }

    pub(crate) fn nfproto(self) -> u8 {
        match self {
            Family::Inet => bindings::NFPROTO_IPV4 as u8,
            Family::Inet6 => bindings::NFPROTO_IPV6 as u8,
        }
    }

    /// From `AF_*`.
    pub fn from_af(af: u16) -> Option<Self> {
        match u32::from(af) {
            bindings::AF_INET => Some(Family::Inet),
            bindings::AF_INET6 => Some(Family::Inet6),
            _ => None,
        }
    }

    /// As `AF_*`.
    pub fn af(self) -> u16 {
        match self {
            Family::Inet => bindings::AF_INET as u16,
            Family::Inet6 => bindings::AF_INET6 as u16,
        }
    }
}

/// What a netfilter hook decides.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Let the packet go on.
    Accept,
}

impl Verdict {
    pub(crate) fn raw(self) -> u32 {
        match self {
            Verdict::Accept => bindings::NF_ACCEPT,
        }
    }
}

/// TCP header flag bits, as in `tcp_flag_byte()`.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// A TCP segment's header as the hook found it.
#[derive(Clone, Copy, Debug)]
pub struct TcpInfo {
    /// The flags byte (`tcp_flags::*`).
    pub flags: u8,
    /// Offset of the TCP header from `skb->data`.
    thoff: i32,
}

/// A packet in a netfilter hook.
///
/// # Invariants
///
/// Only reached through a reference valid during the hook call, in which the
/// hook owns the packet and may set its socket, or through an [`OwnedSkb`],
/// which owns it and whose IP header is linear at the network header, as
/// in the hooks.
#[repr(transparent)]
pub struct SkBuff(Opaque<bindings::sk_buff>);

impl SkBuff {
    /// Creates a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must be a live `sk_buff` that the caller's hook owns for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::sk_buff) -> &'a Self {
        // SAFETY: `repr(transparent)`; alive for `'a` as the caller guarantees.
        unsafe { &*ptr.cast() }
    }

    fn as_ptr(&self) -> *mut bindings::sk_buff {
        self.0.get()
    }

    /// The TCP header's flags, if this is a TCP segment (not a fragment).
    pub fn tcp(&self, family: Family) -> Option<TcpInfo> {
        let mut thoff = 0;
        // SAFETY: By the type invariant the packet is alive, in a netfilter
        // hook of `family` at PRE_ROUTING, LOCAL_IN or LOCAL_OUT (the only
        // hooks we register), where its network header is set and the IP
        // header is in the linear area (`ip_rcv_core`/`ipv6_rcv_core` pulled
        // it on input, the stack built it on output), or an `OwnedSkb` of
        // that family, built so (the caller's `family` is the packet's as
        // in a hook, which is given the hook's family); the helper reads the
        // TCP header and IPv6 extension headers with `skb_header_pointer`.
        let flags =
            unsafe { bindings::sg_skb_tcp_flags(self.as_ptr(), family.nfproto(), &mut thoff) };
        u8::try_from(flags)
            .ok()
            .map(|flags| TcpInfo { flags, thoff })
    }

    /// Whether a socket is already attached (early demux, TPROXY, ...).
    pub fn has_sock(&self) -> bool {
        // SAFETY: By the type invariant the packet is alive.
        unsafe { bindings::sg_skb_has_sk(self.as_ptr()) }
    }

    /// The listener that TCP would give this segment (`inet_lookup_listener`).
    pub fn listener<'a>(
        &self,
        net: &Net,
        family: Family,
        tcp: &TcpInfo,
        _guard: &'a rcu::Guard,
    ) -> Option<&'a Sock> {
        // SAFETY: By the type invariant the packet is alive, its IP header
        // linear (see `tcp`); `tcp` was read from it, so `thoff` is within
        // it; `net` is alive; the lookup runs under RCU (`_guard`), as
        // `inet_lookup_listener` requires, and takes no reference.
        let sk = unsafe {
            bindings::sg_skb_lookup_listener(
                net.as_ptr(),
                self.as_ptr(),
                family.nfproto(),
                tcp.thoff,
            )
        };
        // SAFETY: The lookup returns hashed listeners, which have
        // SOCK_RCU_FREE (`__inet_hash`): one found under RCU is freed only
        // after a grace period, so it outlives `_guard`'s critical section.
        (!sk.is_null()).then(|| unsafe { Sock::from_raw(sk) })
    }

    /// Whether TCP already has a socket for this segment's 4-tuple: an
    /// established one, a handshake under way (request socket) or a
    /// `TIME_WAIT` one. A SYN that finds one is TCP's to handle (a
    /// retransmission, a reuse of a `TIME_WAIT` 4-tuple).
    pub fn has_established(&self, net: &Net, family: Family, tcp: &TcpInfo) -> bool {
        // SAFETY: By the type invariant the packet is alive; `tcp` was read
        // from it; `net` is its namespace. The helper drops the reference
        // the lookup takes on what it finds before returning.
        unsafe {
            bindings::sg_skb_has_established(
                net.as_ptr(),
                self.as_ptr(),
                family.nfproto(),
                tcp.thoff,
            )
        }
    }

    /// Whether the destination address is one of this host's.
    pub fn daddr_is_local(&self, net: &Net, family: Family) -> bool {
        // SAFETY: By the type invariant the packet is alive, its IP header
        // linear (see `tcp`); `net` is alive; `inet_addr_type` and
        // `ipv6_chk_addr` take the RCU read lock they need themselves.
        unsafe { bindings::sg_skb_daddr_is_local(net.as_ptr(), self.as_ptr(), family.nfproto()) }
    }

    /// Hands the packet to `sk`, which TCP then uses instead of its lookup.
    ///
    /// Returns `false` (and changes nothing) when `sk` is being freed.
    pub fn assign_sock(&self, sk: &Sock) -> bool {
        // SAFETY: By the type invariant the hook owns the packet and may set
        // its socket; the helper drops any socket it had (`skb_orphan`, with
        // its destructor), takes a reference on `sk` unless it is being
        // freed (`refcount_inc_not_zero`: `sk` is alive for `&Sock`, at least
        // its memory), and `sock_edemux` drops it with the packet.
        unsafe { bindings::sg_skb_assign_sock(self.as_ptr(), sk.as_ptr()) }
    }
}

/// A packet that we allocated and own: for the KUnit suite, a packet built
/// from its bytes, as a hook would see it on input.
///
/// # Invariants
///
/// `skb` came from `alloc_skb`, is owned by this value and freed in `Drop`;
/// its linear area holds the whole packet, from its network header.
pub struct OwnedSkb {
    skb: core::ptr::NonNull<bindings::sk_buff>,
}

impl OwnedSkb {
    /// An IPv4 packet whose bytes, from its IP header on, are `packet`.
    ///
    /// `EINVAL` unless `packet` holds at least the IPv4 header its first
    /// byte describes (version 4).
    pub fn ipv4(packet: &[u8]) -> kernel::error::Result<Self> {
        use kernel::error::code::{EINVAL, ENOMEM};
        let ihl = usize::from(packet.first().copied().unwrap_or(0) & 0x0f) * 4;
        if packet.first().map(|b| b >> 4) != Some(4) || ihl < 20 || packet.len() < ihl {
            return Err(EINVAL);
        }
        let len = u32::try_from(packet.len()).map_err(|_| EINVAL)?;
        // SAFETY: Process context (`GFP_KERNEL`).
        let skb = core::ptr::NonNull::new(unsafe { bindings::sg_alloc_skb(len) }).ok_or(ENOMEM)?;
        // SAFETY: `skb` is a new packet with room for `len` bytes in its
        // linear area: `skb_put` returns them, for `packet` to fill; the
        // network header is set where they start.
        unsafe {
            let data = bindings::skb_put(skb.as_ptr(), len);
            core::ptr::copy_nonoverlapping(packet.as_ptr(), data.cast::<u8>(), packet.len());
            bindings::sg_skb_reset_network_header(skb.as_ptr());
        }
        // INVARIANT: Allocated, owned, the IPv4 header (checked above) linear
        // at the network header.
        Ok(Self { skb })
    }
}

impl core::ops::Deref for OwnedSkb {
    type Target = SkBuff;

    fn deref(&self) -> &SkBuff {
        // SAFETY: By the type invariant the packet is alive and ours while
        // `self` is (see `SkBuff`'s invariant).
        unsafe { SkBuff::from_raw(self.skb.as_ptr()) }
    }
}

impl Drop for OwnedSkb {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own the packet; it is not used again.
        unsafe { bindings::sg_kfree_skb(self.skb.as_ptr()) };
    }
}
