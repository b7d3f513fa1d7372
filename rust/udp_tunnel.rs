// SPDX-License-Identifier: GPL-2.0

//! A kernel UDP tunnel socket: datagrams to its port are handed, in softirq,
//! to a receiver ([`TunnelRx`]) instead of a socket queue; packets are sent
//! from it with an outer IPv4 and UDP header in front of bytes we build.
//!
//! C headers: [`include/net/udp_tunnel.h`](srctree/include/net/udp_tunnel.h),
//! [`include/net/ip_tunnels.h`](srctree/include/net/ip_tunnels.h).
//!
//! Modeled on `net/ipv4/fou_core.c` (`fou_create`, `fou_udp_recv`): the
//! socket is made with `udp_sock_create4` and `setup_udp_tunnel_sock`, whose
//! `encap_rcv` gets every checksum-verified datagram; sending goes through
//! `udp_tunnel_xmit_skb` with a route from `ip_route_output_flow`.
//!
//! Lifetime: the socket's `sk_user_data` points at the receiver, which the
//! [`Tunnel`] keeps alive by an `Arc`; `Drop` releases the socket
//! (`udp_tunnel_sock_release` clears the pointer first), waits for an RCU
//! grace period (the receive path reads the pointer under RCU), and only
//! then lets the receiver go.

use super::{
    bindings,
    errno::{ehostunreach, emsgsize},
    net::Net,
    skb::Family,
};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{error::to_result, prelude::*, sync::Arc};

/// Room in front of what we build: the link layer's, an outer IPv4 header
/// and the UDP header.
const HEADROOM: u32 = 256;
/// The largest payload of a datagram: an IPv4 packet's 65535 bytes less
/// the outer IPv4 (20) and UDP (8) headers.
pub const MAX_PAYLOAD: usize = 65535 - 20 - 8;
/// `ETH_P_IP` and `ETH_P_IPV6`.
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

/// What receives the tunnel's datagrams.
pub trait TunnelRx: Send + Sync + 'static {
    /// A datagram to the tunnel's port (softirq, under RCU): it is consumed
    /// here, delivered ([`Datagram::deliver`]) or dropped.
    fn rx(&self, dgram: Datagram<'_>);
}

/// A received datagram, owned by the receive call `'a`.
///
/// # Invariants
///
/// `skb` is a live datagram that a UDP tunnel socket's `encap_rcv` got, with
/// its data at the UDP header (checksum verified); we own it for `'a`.
pub struct Datagram<'a> {
    skb: NonNull<bindings::sk_buff>,
    net: &'a Net,
    _p: PhantomData<&'a ()>,
}

impl<'a> Datagram<'a> {
    /// The namespace of the tunnel socket that received it.
    pub fn net(&self) -> &'a Net {
        self.net
    }

    /// The outer source address (IPv4: the first 4 bytes, the rest 0).
    pub fn source(&self) -> (Family, [u8; 16]) {
        let mut a = [0u8; 16];
        // SAFETY: By the type invariant the datagram is live; the helper
        // reads its network header, which the IP layer checked.
        let v6 = unsafe { bindings::sg_skb_ip_saddr(self.skb.as_ptr(), a.as_mut_ptr()) };
        (if v6 { Family::Inet6 } else { Family::Inet }, a)
    }

    /// The payload after the UDP header, made linear; `None` if it could
    /// not be (no memory) or is shorter than a UDP header.
    pub fn payload(&mut self) -> Option<&[u8]> {
        let skb = self.skb.as_ptr();
        // SAFETY: By the type invariant we own the live datagram.
        if unsafe { bindings::sg_skb_linearize(skb) } != 0 {
            return None;
        }
        // SAFETY: Linear now: `data` holds `len` bytes, from the UDP header
        // (the type invariant), and stays so while we hold `&mut self`.
        let all = unsafe { core::slice::from_raw_parts((*skb).data, (*skb).len as usize) };
        all.get(8..)
    }

    /// The payload after the UDP header, made linear and writable (a
    /// clone's data copied first); `None` if it could not be (no memory)
    /// or is shorter than a UDP header.
    pub fn payload_mut(&mut self) -> Option<&mut [u8]> {
        let skb = self.skb.as_ptr();
        // SAFETY: By the type invariant we own the live datagram: the
        // helpers may reallocate its head (nobody else holds a pointer
        // into it: we hold `&mut self`).
        let ok = unsafe {
            bindings::sg_skb_linearize(skb) == 0
                && bindings::skb_ensure_writable(skb, (*skb).len) == 0
        };
        if !ok {
            return None;
        }
        // SAFETY: Linear and writable now: `data` holds `len` bytes, from
        // the UDP header (the type invariant), which are ours alone (not
        // shared with a clone) while we hold `&mut self`.
        let all = unsafe { core::slice::from_raw_parts_mut((*skb).data, (*skb).len as usize) };
        all.get_mut(8..)
    }

    /// Delivers the IP packet that follows `skip` bytes of payload (after
    /// the UDP header) to the stack, as received on the datagram's device:
    /// the outer headers go, the packet loses the tunnel's route and
    /// conntrack state, and its checksums are checked again. `mark`: its
    /// `skb->mark` (0: none), which a hook may read and clear.
    pub fn deliver(self, skip: usize, family: Family, mark: u32) {
        let this = core::mem::ManuallyDrop::new(self);
        let skb = this.skb.as_ptr();
        let proto = match family {
            Family::Inet => ETH_P_IP,
            Family::Inet6 => ETH_P_IPV6,
        };
        // SAFETY: By the type invariant we own the live datagram; its data
        // is at the UDP header: 8 bytes and `skip` bytes are pulled (the
        // function checks the length), then the packet is given up to the
        // stack (`netif_rx` consumes it) or freed; `this` is not dropped.
        // Its mark is ours to set until then.
        unsafe {
            if bindings::__iptunnel_pull_header(skb, 8 + skip as i32, proto.to_be(), false, false)
                != 0
            {
                bindings::sg_kfree_skb(skb);
                return;
            }
            // Headers at the inner packet, for us; the outer checksum's
            // verification says nothing of the inner ones: TCP and UDP
            // check them.
            bindings::sg_skb_decap_reset(skb);
            bindings::sg_skb_set_mark(skb, mark);
            bindings::netif_rx(skb);
        }
    }
}

impl Drop for Datagram<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own the datagram.
        unsafe { bindings::sg_kfree_skb(self.skb.as_ptr()) };
    }
}

/// A UDP tunnel socket of a namespace bound to an IPv4 address and port,
/// whose datagrams go to `T`.
///
/// # Invariants
///
/// `sock` is a kernel UDP socket set up as a tunnel whose `sk_user_data`
/// points at `*rx` until `Drop` releases it.
pub struct Tunnel<T: TunnelRx> {
    sock: NonNull<bindings::socket>,
    rx: Arc<T>,
}

// SAFETY: The socket is only used through functions that may be called
// from any thread; `T` is `Send + Sync`.
unsafe impl<T: TunnelRx> Send for Tunnel<T> {}
// SAFETY: `&Tunnel` sends packets, which any number of CPUs may do at once.
unsafe impl<T: TunnelRx> Sync for Tunnel<T> {}

impl<T: TunnelRx> Tunnel<T> {
    /// Opens the socket on `addr:port` (IPv4, network order) of `net`
    /// (process context).
    pub fn new(net: &Net, addr: [u8; 4], port: u16, rx: Arc<T>) -> Result<Self> {
        let mut cfg = bindings::udp_port_cfg {
            family: bindings::AF_INET as u8,
            local_udp_port: port.to_be(),
            ..Default::default()
        };
        cfg.__bindgen_anon_1.local_ip.s_addr = u32::from_ne_bytes(addr);
        cfg.set_use_udp_checksums(1);
        let mut sock: *mut bindings::socket = core::ptr::null_mut();
        // SAFETY: `net` is live (a reference); `cfg` and `sock` are valid
        // for the call; on success `sock` is a new kernel socket of `net`.
        to_result(unsafe { bindings::udp_sock_create4(net.as_ptr(), &mut cfg, &mut sock) })?;
        let sock = NonNull::new(sock).ok_or(ENOMEM)?;
        let mut tcfg = bindings::udp_tunnel_sock_cfg {
            sk_user_data: core::ptr::from_ref::<T>(&rx).cast_mut().cast(),
            encap_type: 1,
            encap_rcv: Some(Self::encap_rcv),
            ..Default::default()
        };
        // SAFETY: `sock` is the UDP socket just made; `tcfg` is valid for
        // the call (it is copied into the socket). INVARIANT: the user data
        // is `rx`'s, which we keep.
        unsafe { bindings::setup_udp_tunnel_sock(net.as_ptr(), sock.as_ptr(), &mut tcfg) };
        Ok(Self { sock, rx })
    }

    /// The receiver.
    pub fn rx(&self) -> &Arc<T> {
        &self.rx
    }

    /// The socket's `encap_rcv`.
    ///
    /// # Safety
    ///
    /// Called by the UDP receive path only: under RCU, with the tunnel's
    /// socket and a datagram it gives up (0 returned: consumed).
    unsafe extern "C" fn encap_rcv(sk: *mut bindings::sock, skb: *mut bindings::sk_buff) -> i32 {
        // SAFETY: The UDP receive path calls this under RCU with its socket
        // and a datagram it gives us (we return 0: consumed).
        let data = unsafe { bindings::sg_sk_user_data(sk) };
        let Some(skb) = NonNull::new(skb) else {
            return 0;
        };
        // SAFETY: `sk` is the tunnel socket, alive for this call; its
        // namespace outlives it.
        let net = unsafe { Net::from_raw(bindings::sg_sock_net(sk)) };
        // INVARIANT: the datagram is ours for this call, data at the UDP
        // header (`udp_queue_rcv_one_skb` verified the checksum first).
        let dgram = Datagram {
            skb,
            net,
            _p: PhantomData,
        };
        if data.is_null() {
            // The tunnel is going: dropped.
            drop(dgram);
            return 0;
        }
        // SAFETY: A non-null user data points at the tunnel's receiver (the type invariant), alive until an RCU grace period
        // after `Drop` cleared it, and we are under RCU.
        let rx = unsafe { &*data.cast::<T>() };
        rx.rx(dgram);
        0
    }

    /// Sends, from `(src, sport)` to `(dst, dport)` (IPv4 addresses in
    /// network order, ports in host order), a datagram of `len` bytes that
    /// `build` writes; nothing is sent if `build` returns false or no route
    /// or memory is found, and `EMSGSIZE` is returned, before anything is
    /// allocated, when `len` exceeds [`MAX_PAYLOAD`]. Any context (softirq
    /// included).
    pub fn send(
        &self,
        net: &Net,
        (src, sport): ([u8; 4], u16),
        (dst, dport): ([u8; 4], u16),
        len: usize,
        build: impl FnOnce(&mut [u8]) -> bool,
    ) -> Result {
        if len > MAX_PAYLOAD {
            return Err(emsgsize());
        }
        let len32 = u32::try_from(len).map_err(|_| emsgsize())?;
        // SAFETY: No precondition (`GFP_ATOMIC`: any context).
        let skb = unsafe {
            bindings::__alloc_skb(
                HEADROOM + len32,
                kernel::bindings::GFP_ATOMIC,
                0,
                bindings::NUMA_NO_NODE,
            )
        };
        let skb = NonNull::new(skb).ok_or(ENOMEM)?.as_ptr();
        // SAFETY: `skb` is ours, new, linear, with room for HEADROOM + len.
        let buf = unsafe {
            bindings::sg_skb_reserve(skb, HEADROOM as i32);
            let p = bindings::skb_put(skb, len32);
            core::slice::from_raw_parts_mut(p.cast::<u8>(), len)
        };
        if !build(buf) {
            // SAFETY: Ours, not handed to anyone.
            unsafe { bindings::sg_kfree_skb(skb) };
            return Err(EINVAL);
        }
        let saddr = u32::from_ne_bytes(src);
        let daddr = u32::from_ne_bytes(dst);
        let mut fl4 = bindings::flowi4 {
            __fl_common: bindings::flowi_common {
                flowic_proto: bindings::IPPROTO_UDP as u8,
                ..Default::default()
            },
            daddr,
            saddr,
            ..Default::default()
        };
        // SAFETY: `net` is live; `fl4` is valid for the call; the socket of
        // the type invariant is live. The result is a route with a
        // reference or an error pointer.
        let rt = unsafe {
            bindings::ip_route_output_flow(net.as_ptr(), &mut fl4, (*self.sock.as_ptr()).sk)
        };
        if rt.is_null() || (rt as usize) > (usize::MAX - 4095) {
            // SAFETY: Ours, not handed to anyone.
            unsafe { bindings::sg_kfree_skb(skb) };
            return Err(ehostunreach());
        }
        // SAFETY: `rt` is a referenced route, `skb` ours: both are consumed
        // (the route's reference goes to the packet); the socket is live.
        unsafe {
            bindings::udp_tunnel_xmit_skb(
                rt,
                (*self.sock.as_ptr()).sk,
                skb,
                fl4.saddr,
                daddr,
                0,
                64,
                0,
                sport.to_be(),
                dport.to_be(),
                false,
                false,
            );
        }
        Ok(())
    }
}

impl<T: TunnelRx> Drop for Tunnel<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `sock` is our tunnel socket: the
        // release clears its user data (under RCU) and frees it.
        unsafe { bindings::udp_tunnel_sock_release(self.sock.as_ptr()) };
        // Receive paths that read the user data before it was cleared are
        // done after a grace period; `rx` may go then.
        super::rcu::synchronize();
    }
}
