// SPDX-License-Identifier: GPL-2.0

//! TCP below the socket layer, as the back-end's replay needs it: packets
//! injected into a namespace's stack as if received ([`Route::inject`]),
//! the socket tables' lookups ([`listener`], [`established`]), the state of
//! a request socket and the front-end's state written into it
//! ([`ReqSock`]), and TCP's clock.
//!
//! C headers: [`include/linux/skbuff.h`](srctree/include/linux/skbuff.h),
//! [`include/net/route.h`](srctree/include/net/route.h),
//! [`include/net/ip6_route.h`](srctree/include/net/ip6_route.h),
//! [`include/net/inet_hashtables.h`](srctree/include/net/inet_hashtables.h),
//! [`include/linux/tcp.h`](srctree/include/linux/tcp.h),
//! [`include/net/tcp.h`](srctree/include/net/tcp.h) (`tcp_clock_ms`).

use super::{bindings, net::Net, netfilter::ReqInfo, rcu, skb::Family, sock::Sock};
use crate::logic::segment::ProbeFields;
use core::ptr::NonNull;
use kernel::{prelude::*, types::Opaque};

/// `TCP_ESTABLISHED`.
pub const TCP_ESTABLISHED: u8 = bindings::TCP_ESTABLISHED as u8;
/// `TCP_LAST_ACK`: closed by the peer, then by us.
pub const TCP_LAST_ACK: u8 = bindings::TCP_LAST_ACK as u8;
/// `TCP_CLOSING`: both closed at once.
pub const TCP_CLOSING: u8 = bindings::TCP_CLOSING as u8;

/// An address of either family as the tables take it: network order, IPv4
/// in the first 4 bytes.
pub type Addr = [u8; 16];

/// A connection as this host's TCP sees it: `local` is its address and
/// port (the service's), `remote` the client's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Conn {
    /// The family of both addresses.
    pub family: Family,
    /// The local (service) address.
    pub local: Addr,
    /// The local port, host order.
    pub local_port: u16,
    /// The remote (client) address.
    pub remote: Addr,
    /// The remote port, host order.
    pub remote_port: u16,
}

fn v4(a: &Addr) -> u32 {
    u32::from_ne_bytes([a[0], a[1], a[2], a[3]])
}

fn v6(a: &Addr) -> bindings::in6_addr {
    bindings::in6_addr {
        in6_u: bindings::in6_addr__bindgen_ty_1 { u6_addr8: *a },
    }
}

/// Milliseconds and microseconds of TCP's clock (`tcp_clock_ms()`,
/// `tcp_clock_us()`: `ktime_get()` truncated).
pub fn tcp_clock() -> (u32, u64) {
    // SAFETY: No precondition; callable in any context.
    let ns = unsafe { bindings::ktime_get() } as u64;
    ((ns / 1_000_000) as u32, ns / 1_000)
}

/// A packet we own, not yet in the stack.
///
/// # Invariants
///
/// `skb` is a packet of ours alone (from `__alloc_skb`), linear, its
/// network (and MAC) header at its data.
pub struct OwnedSkb {
    skb: NonNull<bindings::sk_buff>,
}

// SAFETY: The packet is ours alone and holds no reference on anything tied
// to a CPU or task (no device, socket or route yet).
unsafe impl Send for OwnedSkb {}

impl OwnedSkb {
    /// A packet holding the IP packet `bytes` of `family` (its checksums
    /// right: the packet is marked `CHECKSUM_UNNECESSARY`), as a device
    /// would hand it to the stack (process context: it may sleep).
    pub fn new_ip(family: Family, bytes: &[u8]) -> Result<Self> {
        Self::new(family, bytes, 0, bindings::CHECKSUM_UNNECESSARY)
    }

    /// A packet holding the IP packet `bytes` of `family` (its checksums
    /// computed: `CHECKSUM_NONE`), with room in front for the link layer's
    /// header, to send from this host ([`send_ip`]; process context: it
    /// may sleep).
    pub fn new_out(family: Family, bytes: &[u8]) -> Result<Self> {
        Self::new(family, bytes, bindings::MAX_HEADER, bindings::CHECKSUM_NONE)
    }

    fn new(family: Family, bytes: &[u8], headroom: u32, summed: u32) -> Result<Self> {
        let len = u32::try_from(bytes.len()).map_err(|_| EINVAL)?;
        let size = len.checked_add(headroom).ok_or(EINVAL)?;
        // SAFETY: No precondition; `GFP_KERNEL` in process context (ours).
        let skb = unsafe {
            bindings::__alloc_skb(
                size,
                kernel::bindings::GFP_KERNEL,
                0,
                bindings::NUMA_NO_NODE,
            )
        };
        let skb = NonNull::new(skb).ok_or(ENOMEM)?;
        // INVARIANT: Ours; set up below before anything else sees it.
        let this = Self { skb };
        let raw = skb.as_ptr();
        // SAFETY: A new linear packet with `headroom + len` bytes of
        // tailroom (the allocation's size): `skb_reserve` moves its data
        // `headroom` bytes in (a `u32` below `MAX_HEADER` or 0, as `int`),
        // then `skb_put` returns `len` writable bytes at its data, which we
        // fill. The header fields are ours to set: the offsets of its data
        // from its head (the MAC header's empty, as a device's after
        // `eth_type_trans`), its protocol and the checksum state, through
        // the bindings' union fields and bitfield accessor.
        unsafe {
            bindings::sg_skb_reserve(raw, headroom as i32);
            let dst = bindings::skb_put(raw, len);
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.cast::<u8>(), bytes.len());
            let off = (*raw).data.offset_from((*raw).head) as u16;
            let h = (*raw).__bindgen_anon_4.__bindgen_anon_1.as_mut();
            h.network_header = off;
            h.mac_header = off;
            h.protocol = match family {
                Family::Inet => (bindings::ETH_P_IP as u16).to_be(),
                Family::Inet6 => (bindings::ETH_P_IPV6 as u16).to_be(),
            };
            h.set_ip_summed(summed as u8);
        }
        Ok(this)
    }
}

impl Drop for OwnedSkb {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the packet is ours alone.
        unsafe { bindings::sg_kfree_skb(self.skb.as_ptr()) };
    }
}

/// A route from this host, held (`dst_entry` reference).
///
/// # Invariants
///
/// `dst` is a route we hold a reference on, with a device, released in
/// `Drop`; the route holds its device.
pub struct Route {
    dst: NonNull<bindings::dst_entry>,
}

impl Route {
    /// The route from `net` towards `to` (process or softirq context).
    pub fn output(net: &Net, family: Family, to: &Addr) -> Result<Self> {
        let dst = match family {
            Family::Inet => {
                let mut fl = bindings::flowi4 {
                    daddr: v4(to),
                    ..Default::default()
                };
                fl.__fl_common.flowic_proto = bindings::IPPROTO_TCP as u8;
                // SAFETY: `net` is alive; `fl` is a valid flow for the call.
                let rt = unsafe { bindings::ip_route_output_flow(net.as_ptr(), &mut fl, ptr0()) };
                if rt.is_null() || (rt as usize) >= (-4095isize) as usize {
                    return Err(super::errno::enetunreach());
                }
                // SAFETY: A route, not an error: its `dst` is its first member.
                unsafe { core::ptr::addr_of_mut!((*rt).dst) }
            }
            Family::Inet6 => {
                let mut fl = bindings::flowi6 {
                    daddr: v6(to),
                    ..Default::default()
                };
                fl.__fl_common.flowic_proto = bindings::IPPROTO_TCP as u8;
                // SAFETY: As above; the call never returns null (an error
                // route instead, with `error` set), and a reference.
                let dst =
                    unsafe { bindings::ip6_route_output_flags(net.as_ptr(), ptr0(), &mut fl, 0) };
                // SAFETY: A route we hold.
                if unsafe { (*dst).error } != 0 {
                    // SAFETY: Ours to release.
                    unsafe { bindings::dst_release(dst) };
                    return Err(super::errno::enetunreach());
                }
                dst
            }
        };
        let dst = NonNull::new(dst).ok_or(EINVAL)?;
        // INVARIANT: A referenced route.
        let this = Self { dst };
        if this.dev().is_null() {
            return Err(super::errno::enetunreach());
        }
        Ok(this)
    }

    fn dev(&self) -> *mut bindings::net_device {
        // SAFETY: By the type invariant the route is alive; its device
        // field is set at its creation.
        unsafe { (*self.dst.as_ptr()).__bindgen_anon_1.dev }
    }

    /// The index of the route's device.
    pub fn ifindex(&self) -> i32 {
        // SAFETY: The device is alive while the route is (type invariant).
        unsafe { (*self.dev()).ifindex }
    }

    /// Hands `pkts` to the stack, in order, as received on the route's
    /// device (`netif_rx`), on this CPU with softirqs disabled across them,
    /// so that the receive softirq takes them in this order after the last;
    /// each with `skb->mark` set to `mark` (0: none), which a hook may read
    /// and clear.
    pub fn inject(&self, pkts: KVec<OwnedSkb>, mark: u32) {
        let dev = self.dev();
        // SAFETY: Paired with the enable below.
        unsafe { bindings::sg_local_bh_disable() };
        for pkt in pkts {
            let raw = core::mem::ManuallyDrop::new(pkt).skb.as_ptr();
            // SAFETY: The packet is ours (`OwnedSkb`), given up here
            // (`ManuallyDrop`): `netif_rx` consumes it. Its device is held
            // by the route we hold; the receive path runs under RCU, in
            // which the device stays, as for any received packet. Its mark
            // is ours to set until then.
            unsafe {
                (*raw)
                    .__bindgen_anon_1
                    .__bindgen_anon_1
                    .__bindgen_anon_1
                    .dev = dev;
                bindings::sg_skb_set_mark(raw, mark);
                bindings::netif_rx(raw);
            }
        }
        // SAFETY: Paired with the disable above; may run the softirq here.
        unsafe { bindings::sg_local_bh_enable() };
    }
}

/// Sends the IP packet `bytes` of `family` from this host (`net`) to
/// `to`, as its own: through its LOCAL_OUT hooks (netfilter's, conntrack's,
/// ours), then routed out (`ip_local_out`, `ip6_local_out`). Process
/// context (it allocates with `GFP_KERNEL`).
pub fn send_ip(net: &Net, family: Family, to: &Addr, bytes: &[u8]) -> Result {
    let route = Route::output(net, family, to)?;
    let raw = core::mem::ManuallyDrop::new(OwnedSkb::new_out(family, bytes)?)
        .skb
        .as_ptr();
    // SAFETY: The packet is ours (`OwnedSkb`), given up here
    // (`ManuallyDrop`): it takes a reference on the route we hold, and
    // `ip_local_out` or `ip6_local_out` consumes it (sent, queued or freed)
    // whatever it returns; without a socket, as a reset netfilter sends.
    // `net` is alive (the caller's reference). Process context, as a
    // socket's own output from `sendmsg`.
    let rc = unsafe {
        bindings::sg_skb_dst_set_hold(raw, route.dst.as_ptr());
        match family {
            Family::Inet => bindings::ip_local_out(net.as_ptr(), core::ptr::null_mut(), raw),
            Family::Inet6 => bindings::ip6_local_out(net.as_ptr(), core::ptr::null_mut(), raw),
        }
    };
    // A positive code is a queue's (`NET_XMIT_*`): only a drop is a failure.
    match rc {
        0 => Ok(()),
        rc if rc < 0 => Err(Error::from_errno(rc)),
        rc if rc == bindings::NET_XMIT_CN as i32 => Ok(()),
        _ => Err(super::errno::enobufs()),
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold the reference.
        unsafe { bindings::dst_release(self.dst.as_ptr()) };
    }
}

fn ptr0() -> *const bindings::sock {
    core::ptr::null()
}

fn hashinfo(net: &Net) -> *mut bindings::inet_hashinfo {
    // SAFETY: `net` is alive; its TCP hash table pointer is set at its
    // creation and lives as long as it.
    unsafe { (*net.as_ptr()).ipv4.tcp_death_row.hashinfo }
}

/// What the listener that would take a connection has.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListenerLoad {
    /// Connections in its accept queue.
    pub accept_queue: u32,
    /// Its backlog.
    pub max_backlog: u32,
    /// Its handshakes under way (the SYN queue).
    pub handshakes: u32,
}

/// The listener a SYN of `c` arriving on device `dif` would find, as TCP
/// finds it (`__inet_lookup_listener`), and its queues.
pub fn listener(net: &Net, c: &Conn, dif: i32) -> Option<ListenerLoad> {
    let _guard = rcu::Guard::new();
    // SAFETY: Under the RCU read lock (the guard), as TCP's receive path
    // looks listeners up; no packet (a reuseport group picks by hash); a
    // listener found is RCU-freed (`SOCK_RCU_FREE`), alive until the guard
    // goes, and only read.
    let sk = unsafe {
        match c.family {
            Family::Inet => bindings::__inet_lookup_listener(
                net.as_ptr(),
                hashinfo(net),
                core::ptr::null_mut(),
                0,
                v4(&c.remote),
                c.remote_port.to_be(),
                v4(&c.local),
                c.local_port,
                dif,
                0,
            ),
            Family::Inet6 => bindings::inet6_lookup_listener(
                net.as_ptr(),
                hashinfo(net),
                core::ptr::null_mut(),
                0,
                &v6(&c.remote),
                c.remote_port.to_be(),
                &v6(&c.local),
                c.local_port,
                dif,
                0,
            ),
        }
    };
    if sk.is_null() {
        return None;
    }
    // SAFETY: Alive until the guard goes (above).
    let sk = unsafe { Sock::from_raw(sk) };
    Some(ListenerLoad {
        accept_queue: sk.ack_backlog(),
        max_backlog: sk.max_ack_backlog(),
        handshakes: sk.reqsk_queue_len(),
    })
}

/// A full TCP socket's state, read from it.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpState {
    /// `TCP_*`.
    pub state: u8,
    /// The next sequence number it sends.
    pub snd_nxt: u32,
    /// The next sequence number it expects.
    pub rcv_nxt: u32,
    /// What it adds to its clock in its TSvals.
    pub tsoffset: u32,
    /// Whether it uses microsecond timestamps.
    pub usec_ts: bool,
    /// The peer's window scale shift.
    pub snd_wscale: u8,
    /// Its own window scale shift.
    pub rcv_wscale: u8,
    /// Window scaling in use.
    pub wscale_ok: bool,
    /// SACK in use.
    pub sack_ok: bool,
    /// Timestamps in use.
    pub tstamp_ok: bool,
    /// ECN in use (`TCP_ECN_OK`).
    pub ecn_ok: bool,
    /// The segments it received (`segs_in`, wrapping).
    pub segs_in: u32,
}

/// What the established hash holds for a connection.
#[derive(Clone, Copy, Debug)]
pub enum Established {
    /// Nothing.
    None,
    /// A request socket: a handshake under way.
    Request(ReqInfo),
    /// A full socket.
    Full(TcpState),
    /// A `TIME_WAIT` socket.
    TimeWait,
}

/// What the established hash holds for `c`, referenced (a full, request
/// or `TIME_WAIT` socket: give the reference back with `sock_gen_put`), as
/// TCP's receive path finds it (`__inet_lookup_established`).
fn lookup_established(net: &Net, c: &Conn) -> Option<NonNull<bindings::sock>> {
    let _guard = rcu::Guard::new();
    // SAFETY: Under the RCU read lock, as TCP's receive path; the lookup
    // takes a reference on what it finds, of any kind, which the caller
    // gives back.
    let sk = unsafe {
        match c.family {
            Family::Inet => bindings::__inet_lookup_established(
                net.as_ptr(),
                hashinfo(net),
                v4(&c.remote),
                c.remote_port.to_be(),
                v4(&c.local),
                c.local_port,
                0,
                0,
            ),
            Family::Inet6 => bindings::__inet6_lookup_established(
                net.as_ptr(),
                hashinfo(net),
                &v6(&c.remote),
                c.remote_port.to_be(),
                &v6(&c.local),
                c.local_port,
                0,
                0,
            ),
        }
    };
    NonNull::new(sk)
}

/// Whether the established hash holds a socket of `c` (full, request or
/// `TIME_WAIT`): whether TCP's receive path would find one for a segment
/// of it (any context).
pub fn holds(net: &Net, c: &Conn) -> bool {
    let Some(sk) = lookup_established(net, c) else {
        return false;
    };
    // SAFETY: The lookup's reference, given back.
    unsafe { bindings::sock_gen_put(sk.as_ptr()) };
    true
}

/// What the established hash holds for `c` (any context), as TCP's
/// receive path finds it (`__inet_lookup_established`). With `drop_request`,
/// a request socket found is taken out of its listener's queue
/// (`inet_csk_reqsk_queue_drop`: no SYN-ACK is sent again, and a later
/// segment finds the listener).
pub fn established(net: &Net, c: &Conn, drop_request: bool) -> Established {
    let Some(sk) = lookup_established(net, c) else {
        return Established::None;
    };
    let sk = sk.as_ptr();
    // SAFETY: We hold a reference on `sk` (the lookup's), of one of the
    // three kinds the established hash holds; its state says which.
    let state = unsafe { bindings::sg_sk_state(sk) } as u32;
    let found = if state == bindings::TCP_NEW_SYN_RECV {
        // SAFETY: A request socket we hold.
        let req = unsafe { ReqSock::from_raw(sk) };
        if drop_request {
            req.unlink();
        }
        Established::Request(req.info())
    } else if state == bindings::TCP_TIME_WAIT {
        Established::TimeWait
    } else {
        // SAFETY: A full TCP socket (the TCP established hash holds only
        // TCP sockets), referenced: its `tcp_sock` is alive; the fields
        // are read without its lock, a snapshot.
        Established::Full(unsafe { tcp_state(sk) })
    };
    // SAFETY: The lookup's reference.
    unsafe { bindings::sock_gen_put(sk) };
    found
}

/// What a `TIME_WAIT` socket keeps of its connection
/// (`struct tcp_timewait_sock`), and TCP's clock in seconds now.
#[derive(Clone, Copy, Debug)]
pub struct TimeWaitInfo {
    /// Still `FIN_WAIT2` (`tw_substate`).
    pub fin_wait2: bool,
    /// The peer's next sequence number.
    pub rcv_nxt: u32,
    /// The peer's last TSval.
    pub ts_recent: u32,
    /// When it was seen (`ktime_get_seconds()`, truncated; 0: no
    /// timestamps).
    pub ts_recent_stamp: u32,
    /// `ktime_get_seconds()` now, truncated.
    pub now_s: u32,
}

/// If the established hash holds a `TIME_WAIT` socket for `c`: what it
/// keeps goes to `reopen`, and when that says so the socket is taken out
/// of the hash and freed (`inet_twsk_deschedule_put`), as TCP does when a
/// SYN reopens its connection. `None`: no `TIME_WAIT` socket; `Some(true)`:
/// freed. Process context.
pub fn timewait_reopen(
    net: &Net,
    c: &Conn,
    reopen: impl FnOnce(&TimeWaitInfo) -> bool,
) -> Option<bool> {
    let sk = lookup_established(net, c)?.as_ptr();
    let mut raw = bindings::sg_tw_info::default();
    // SAFETY: We hold a reference on `sk` (the lookup's), a socket of the
    // established hash; the helper reads it only if it is a `TIME_WAIT`
    // one (a state such a socket never leaves).
    if !unsafe { bindings::sg_tw_info(sk, &mut raw) } {
        // SAFETY: The lookup's reference.
        unsafe { bindings::sock_gen_put(sk) };
        return None;
    }
    let info = TimeWaitInfo {
        fin_wait2: raw.fin_wait2 != 0,
        rcv_nxt: raw.rcv_nxt,
        ts_recent: raw.ts_recent,
        ts_recent_stamp: raw.ts_recent_stamp as u32,
        now_s: raw.now_s,
    };
    if reopen(&info) {
        // SAFETY: A `TIME_WAIT` socket (above) we hold a reference on, in
        // process context (the caller's), outside any RCU read section: the
        // helper disables softirqs around `inet_twsk_deschedule_put`, as
        // `inet_twsk_purge` does, which stops its timer (or finds it run),
        // unhashes it once, and consumes our reference.
        unsafe { bindings::sg_tw_kill(sk) };
        Some(true)
    } else {
        // SAFETY: The lookup's reference.
        unsafe { bindings::sock_gen_put(sk) };
        Some(false)
    }
}

/// Kills the connection `c` of `net` without a word to its peer, as
/// `SOCK_DESTROY` does (`tcp_abort` with `ECONNABORTED`: its owner's next
/// call fails, the socket is closed and unhashed), or drops its request
/// socket; a `TIME_WAIT` socket is left. `true` when there was one. The
/// reset that `tcp_abort` sends an established connection leaves through
/// LOCAL_OUT: the caller drops it there. Process context (it takes the
/// socket's lock).
pub fn abort(net: &Net, c: &Conn) -> bool {
    let Some(sk) = lookup_established(net, c) else {
        return false;
    };
    let sk = sk.as_ptr();
    // SAFETY: We hold a reference on `sk` (the lookup's).
    let state = unsafe { bindings::sg_sk_state(sk) } as u32;
    // SAFETY: A full, request or `TIME_WAIT` socket (the established
    // hash's kinds, left alone) we hold a reference on, in process context
    // (the caller's): `tcp_abort` takes a full socket's lock and handles
    // one closed meanwhile (`-ENOENT`, nothing done); it drops a request
    // socket from its listener's queue with softirqs disabled.
    let found = state != bindings::TCP_TIME_WAIT
        && unsafe { bindings::tcp_abort(sk, bindings::ECONNABORTED as i32) } == 0;
    // SAFETY: The lookup's reference.
    unsafe { bindings::sock_gen_put(sk) };
    found
}

/// The path of `c`'s connection works again (a dispatcher took it over, its
/// client's segments reach this node anew): if TCP waits out a backed-off
/// retransmission timeout for it (data in flight that timed out once or
/// more, or zero window probes unanswered, while the segments that would
/// have acknowledged them were lost with the dispatcher), the backoff is
/// reverted and the timer fires now, as RFC 6069 reverts it when the path
/// is known to be repaired. The retransmission (or probe) draws the
/// client's ACK through the new owner. A socket that was probing a zero
/// window also gives what a probe of the caller's takes (its own carries
/// no data, which the client answers at most twice a second).
/// Process context (it takes the socket's lock).
pub fn retransmit_now(net: &Net, c: &Conn) -> Reverted {
    let mut r = Reverted {
        rearmed: false,
        probe: None,
    };
    let Some(sk) = lookup_established(net, c) else {
        return r;
    };
    let sk = sk.as_ptr();
    // SAFETY: We hold a reference on `sk` (the lookup's).
    let state = unsafe { bindings::sg_sk_state(sk) } as u32;
    if state != bindings::TCP_TIME_WAIT && state != bindings::TCP_NEW_SYN_RECV {
        // SAFETY: A full TCP socket (the established hash holds only TCP
        // sockets; not a request or `TIME_WAIT` one) we hold a reference
        // on, in process context (the caller's): we own its lock between
        // `lock_sock_nested` and `release_sock`, so its timers and the
        // fields read here change only under it or in its timer, whose
        // handler defers to `release_sock` while we own it
        // (`tcp_write_timer`). A socket closed meanwhile has no timer
        // pending (`tcp_done` clears them).
        unsafe {
            bindings::lock_sock_nested(sk, 0);
            let icsk = sk.cast::<bindings::inet_connection_sock>();
            let tp = sk.cast::<bindings::tcp_sock>();
            let what = u32::from((*icsk).icsk_pending);
            // Backed off: data in flight timed out, or the zero window
            // probes went unanswered (their ACKs were lost too).
            let backed_off = match what {
                bindings::ICSK_TIME_RETRANS => {
                    (*icsk).icsk_retransmits > 0 && (*tp).packets_out > 0
                }
                bindings::ICSK_TIME_PROBE0 => (*icsk).icsk_probes_out > 0,
                _ => false,
            };
            if backed_off {
                // The backoff starts again from the connection's own
                // timeout: if this one is lost too, the next goes one
                // doubled timeout later, not seconds.
                (*icsk).icsk_backoff = 0;
                (*icsk).icsk_rto = bindings::sg_tcp_rto_base(sk);
                bindings::sg_xmit_timer_now(sk, what as i32);
                r.rearmed = true;
                if what == bindings::ICSK_TIME_PROBE0 {
                    r.probe = Some(probe_state(sk));
                }
            }
            bindings::release_sock(sk);
        }
    }
    // SAFETY: The lookup's reference.
    unsafe { bindings::sock_gen_put(sk) };
    r
}

/// What [`retransmit_now`] did.
#[derive(Clone, Copy, Debug)]
pub struct Reverted {
    /// The backoff was reverted and the timer fires now.
    pub rearmed: bool,
    /// The socket was probing a zero window: its state for a probe.
    pub probe: Option<ProbeFields>,
}

/// Reads what a zero window probe of `sk`'s takes.
///
/// # Safety
///
/// `sk` is a live full TCP socket whose lock the caller owns.
unsafe fn probe_state(sk: *mut bindings::sock) -> ProbeFields {
    let tp = sk.cast::<bindings::tcp_sock>();
    // SAFETY: As the caller guarantees: the fields change only under the
    // lock we own; `struct sock` is the first member of `struct tcp_sock`.
    unsafe {
        let rx = &(*tp).rx_opt;
        let ts = if rx.tstamp_ok() != 0 {
            // As `tcp_skb_timestamp_ts` of a packet sent now: at or after
            // every TSval it sent (a paced one may carry a departure time
            // ahead of the clock, `tcp_wstamp_ns`).
            let ns = (bindings::ktime_get() as u64).max((*tp).tcp_wstamp_ns);
            let now = if (*tp).tcp_usec_ts() != 0 {
                (ns / 1_000) as u32
            } else {
                (ns / 1_000_000) as u32
            };
            Some((now.wrapping_add((*tp).tsoffset), rx.ts_recent))
        } else {
            None
        };
        ProbeFields {
            snd_una: (*tp).snd_una,
            rcv_nxt: (*tp).rcv_nxt,
            window: ((*tp).rcv_wnd >> rx.rcv_wscale()).min(0xffff) as u16,
            ts,
        }
    }
}

/// Reads a full TCP socket's state.
///
/// # Safety
///
/// `sk` is a live full TCP socket (`struct tcp_sock`).
unsafe fn tcp_state(sk: *mut bindings::sock) -> TcpState {
    let tp = sk.cast::<bindings::tcp_sock>();
    // SAFETY: As the caller guarantees; `struct sock` is the first member
    // of `struct tcp_sock` (through `inet_connection_sock`).
    unsafe {
        let rx = &(*tp).rx_opt;
        TcpState {
            state: bindings::sg_sk_state(sk) as u8,
            snd_nxt: core::ptr::read_volatile(&(*tp).snd_nxt),
            rcv_nxt: core::ptr::read_volatile(&(*tp).rcv_nxt),
            tsoffset: (*tp).tsoffset,
            usec_ts: (*tp).tcp_usec_ts() != 0,
            snd_wscale: rx.snd_wscale() as u8,
            rcv_wscale: rx.rcv_wscale() as u8,
            wscale_ok: rx.wscale_ok() != 0,
            sack_ok: rx.sack_ok() != 0,
            tstamp_ok: rx.tstamp_ok() != 0,
            ecn_ok: (*tp).ecn_flags & (bindings::TCP_ECN_OK as u8) != 0,
            // Written from the receive softirq (`tcp_segs_in`).
            segs_in: core::ptr::read_volatile(&(*tp).segs_in),
        }
    }
}

/// The front-end's state of a connection, to be written into the request
/// socket that replays it ([`ReqSock::adopt`]).
#[derive(Clone, Copy, Debug)]
pub struct Adopt {
    /// Our initial sequence number: the front-end's.
    pub snt_isn: u32,
    /// What to add to this host's millisecond clock in TSvals.
    pub ts_off: u32,
    /// When the SYN-ACK went, on TCP's microsecond clock (0: unknown).
    pub snt_synack_us: u64,
}

/// A request socket (`struct tcp_request_sock`, `TCP_NEW_SYN_RECV`).
///
/// # Invariants
///
/// Only reached through references valid while the request socket is
/// alive (a reference is held on it, or it is the socket of a packet
/// whose hook call is under way).
#[repr(transparent)]
pub struct ReqSock(Opaque<bindings::tcp_request_sock>);

impl ReqSock {
    /// # Safety
    ///
    /// `sk` is a live TCP request socket (`TCP_NEW_SYN_RECV`), alive for `'a`.
    pub(crate) unsafe fn from_raw<'a>(sk: *mut bindings::sock) -> &'a Self {
        // SAFETY: A request socket's `struct sock` view is its
        // `request_sock`, the first member of `tcp_request_sock`;
        // `repr(transparent)`; alive for `'a` as the caller guarantees.
        unsafe { &*sk.cast() }
    }

    fn sk(&self) -> *mut bindings::sock {
        self.0.get().cast()
    }

    /// What it negotiated.
    pub fn info(&self) -> ReqInfo {
        let mut info = bindings::sg_req_info::default();
        // SAFETY: By the type invariant a live request socket; the helper
        // reads its fields and bitfields.
        unsafe { bindings::sg_reqsk_info(self.sk(), &mut info) };
        ReqInfo {
            rcv_isn: info.rcv_isn,
            snt_isn: info.snt_isn,
            ts_off: info.ts_off,
            ts_recent: info.ts_recent,
            mss: info.mss,
            snd_wscale: info.snd_wscale,
            rcv_wscale: info.rcv_wscale,
            wscale_ok: info.wscale_ok != 0,
            sack_ok: info.sack_ok != 0,
            tstamp_ok: info.tstamp_ok != 0,
            ecn_ok: info.ecn_ok != 0,
        }
    }

    /// Writes `a` into it: the full socket TCP makes of it
    /// (`tcp_create_openreq_child`) sends from `snt_isn + 1` and with TSvals
    /// of this host's millisecond clock plus `ts_off`, and takes its first
    /// RTT sample from `snt_synack_us`.
    ///
    /// Called from a LOCAL_OUT hook on the request socket's SYN-ACK, in
    /// `tcp_conn_request`, before any other segment of the connection is
    /// processed: no other writer or reader of these fields runs (the
    /// replay's segments are processed in order on this CPU after this
    /// one's softirq work), as the design memo's section 3 argues.
    pub fn adopt(&self, a: &Adopt) {
        let t = self.0.get();
        // SAFETY: By the type invariant the request socket is alive; the
        // fields are plain integers written by TCP only in
        // `tcp_conn_request` (which called us, after setting them) and in
        // `tcp_make_synack` (`snt_synack` on the first SYN-ACK, which was
        // this one); see above for why nothing reads them meanwhile.
        unsafe {
            (*t).snt_isn = a.snt_isn;
            (*t).ts_off = a.ts_off;
            (*t).req_usec_ts = false;
            (*t).snt_synack = a.snt_synack_us;
        }
    }

    /// Takes it out of its listener's queue and the established hash
    /// (`inet_csk_reqsk_queue_drop`): no more SYN-ACKs, and a later
    /// segment of the connection finds only the listener.
    pub fn unlink(&self) {
        // SAFETY: By the type invariant the request socket is alive, and
        // holds a reference on its listener (`rsk_listener`); the call may
        // run in softirq (TCP calls it from its receive path).
        unsafe {
            let req = self.0.get().cast::<bindings::request_sock>();
            let listener = (*req).__req_common.__bindgen_anon_5.skc_listener;
            bindings::inet_csk_reqsk_queue_drop(listener, req);
        }
    }
}

/// TCP's `OutRsts` counter of `net` (RSTs TCP sent), summed over CPUs.
pub fn out_rsts(net: &Net) -> u64 {
    // SAFETY: `net` is alive; its TCP MIB is allocated with it;
    // `snmp_fold_field` sums the per-CPU counters.
    unsafe {
        bindings::snmp_fold_field(
            (*net.as_ptr()).mib.tcp_statistics.cast(),
            bindings::TCP_MIB_OUTRSTS as i32,
        ) as u64
    }
}
