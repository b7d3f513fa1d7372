// SPDX-License-Identifier: GPL-2.0

//! Netfilter hook packets for the front-end hold: a TCP segment in the hold hook
//! ([`HookPacket`]), which the hook may steal ([`HeldSkb`]: the packet with
//! its hook state, kept as `nf_queue` keeps one) and later re-inject into the
//! stack after our hook, or drop.
//!
//! C headers: [`include/linux/netfilter.h`](srctree/include/linux/netfilter.h),
//! [`include/net/request_sock.h`](srctree/include/net/request_sock.h),
//! [`net/netfilter/nfnetlink_queue.c`](srctree/net/netfilter/nfnetlink_queue.c) (`nf_reinject`).

use super::{
    bindings,
    net::Net,
    skb::{Family, SkBuff},
    tcp::ReqSock,
};
use crate::logic::xlate::CsumMode;
use core::{marker::PhantomData, ptr::NonNull};

/// A TCP segment's header fields, host order; addresses network order
/// (IPv4 in the first 4 bytes, the rest 0).
#[derive(Clone, Copy, Debug)]
pub struct TcpSeg {
    /// The packet's family.
    pub family: Family,
    /// Source (client) address.
    pub saddr: [u8; 16],
    /// Destination (service) address.
    pub daddr: [u8; 16],
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack_seq: u32,
    /// Flags (`super::skb::tcp_flags`).
    pub flags: u8,
    /// The window field (not scaled).
    pub window: u16,
    /// Bytes of payload.
    pub payload_len: u32,
    payload_off: u32,
    thoff: u32,
}

impl TcpSeg {
    fn from_raw(family: Family, s: &bindings::sg_tcp_seg) -> Self {
        TcpSeg {
            family,
            saddr: s.saddr,
            daddr: s.daddr,
            sport: s.sport,
            dport: s.dport,
            seq: s.seq,
            ack_seq: s.ack_seq,
            flags: s.flags,
            window: s.window,
            payload_len: s.payload_len,
            payload_off: s.payload_off,
            thoff: s.thoff,
        }
    }
}

/// What a request socket (`TCP_NEW_SYN_RECV`) learned in the handshake:
/// the handoff's pure type, filled here from the kernel's request socket.
pub use crate::logic::handoff::Learned as ReqInfo;

/// The socket TCP will give a segment.
#[derive(Clone, Copy, Debug)]
pub enum SegSock {
    /// None in the established hash: a listener's segment (or none's).
    None,
    /// A request socket: a handshake whose SYN-ACK was sent.
    Request(ReqInfo),
    /// A full or `TIME_WAIT` socket.
    Other,
}

/// A packet in the hold hook, owned by the hook call `'a`: it is either
/// handed back to netfilter ([`HookVerdict::Accept`]) or consumed
/// ([`HookPacket::steal`], [`HookPacket::discard`]), which gives the
/// [`Stolen`] token that the hook must return.
///
/// # Invariants
///
/// `skb` and `state` are the live packet and hook state of a call of a hook
/// registered with the static `ops`, for `'a`; the hook owns the packet.
pub struct HookPacket<'a> {
    skb: *mut bindings::sk_buff,
    state: *const bindings::nf_hook_state,
    ops: *const bindings::nf_hook_ops,
    family: Family,
    _p: PhantomData<&'a ()>,
}

/// Proof that the hook consumed its packet: the hook returns `NF_STOLEN`.
pub struct Stolen<'a>(PhantomData<&'a ()>);

/// What the hold hook decides.
pub enum HookVerdict<'a> {
    /// Let the packet go on (`NF_ACCEPT`).
    Accept(HookPacket<'a>),
    /// The packet was consumed (`NF_STOLEN`).
    Stolen(Stolen<'a>),
}

impl<'a> HookPacket<'a> {
    /// # Safety
    ///
    /// `skb` and `state` are the live arguments of a call of a netfilter hook
    /// of `family` registered with `ops` (static), whose caller owns the
    /// packet for `'a`; the hook returns `NF_STOLEN` if and only if the value
    /// was consumed (a [`Stolen`] came back), `NF_ACCEPT` otherwise.
    pub(crate) unsafe fn new(
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
        ops: *const bindings::nf_hook_ops,
        family: Family,
    ) -> Self {
        // INVARIANT: As the caller guarantees.
        Self {
            skb,
            state,
            ops,
            family,
            _p: PhantomData,
        }
    }

    /// The packet.
    pub fn skb(&self) -> &SkBuff {
        // SAFETY: By the type invariant the packet is alive and the hook's.
        unsafe { SkBuff::from_raw(self.skb) }
    }

    /// Whether its `skb->mark` is `mark` (not 0); if so, clears it (a
    /// mark that our own delivery set, read once by our hook).
    pub fn take_mark(&mut self, mark: u32) -> bool {
        // SAFETY: By the type invariant the packet is alive and the hook's.
        let is = mark != 0 && unsafe { bindings::sg_skb_mark(self.skb) } == mark;
        if is {
            // SAFETY: As above.
            unsafe { bindings::sg_skb_set_mark(self.skb, 0) };
        }
        is
    }

    /// The TCP segment, if this is one (not a fragment, header complete).
    pub fn tcp_seg(&self) -> Option<TcpSeg> {
        let mut s = bindings::sg_tcp_seg::default();
        // SAFETY: By the type invariant the packet is alive, at LOCAL_IN of
        // `family`, its IP header linear (`ip_rcv_core`/`ipv6_rcv_core`);
        // the helper reads the rest with `skb_header_pointer`.
        if !unsafe { bindings::sg_skb_tcp_seg(self.skb, self.family.nfproto(), &mut s) } {
            return None;
        }
        Some(TcpSeg::from_raw(self.family, &s))
    }

    /// The socket TCP will give the segment `seg` (read from this packet):
    /// the one early demux attached, else the established hash's, which is
    /// then attached as early demux would have (TCP uses it).
    pub fn sock(&self, net: &Net, seg: &TcpSeg) -> SegSock {
        let raw = bindings::sg_tcp_seg {
            sport: seg.sport,
            dport: seg.dport,
            ..Default::default()
        };
        // SAFETY: By the type invariant the hook owns the live packet and
        // may attach a socket to it; `net` is the hook's namespace; the
        // lookup runs under the RCU read lock the hook holds.
        let sk =
            unsafe { bindings::sg_skb_demux(net.as_ptr(), self.skb, self.family.nfproto(), &raw) };
        if sk.is_null() {
            return SegSock::None;
        }
        let mut info = bindings::sg_req_info::default();
        // SAFETY: `sk` is the packet's socket, referenced by it (early
        // demux's or our lookup's reference, dropped with the packet).
        if unsafe { bindings::sg_reqsk_info(sk, &mut info) } {
            SegSock::Request(ReqInfo {
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
            })
        } else {
            SegSock::Other
        }
    }

    /// Whether the ACK `seg` carries a valid SYN cookie.
    pub fn syncookie_valid(&self, seg: &TcpSeg) -> bool {
        // SAFETY: By the type invariant the packet is alive; `seg` was read
        // from it, so `thoff` is within it.
        unsafe { bindings::sg_skb_syncookie_valid(self.skb, self.family.nfproto(), seg.thoff) }
    }

    /// Whether the TCP checksum is right (verifies it, as conntrack would).
    pub fn csum_ok(&self, seg: &TcpSeg) -> bool {
        // SAFETY: As in `syncookie_valid`; the hook may update the packet's
        // checksum state (`nf_checksum`).
        unsafe { bindings::sg_skb_csum_ok(self.skb, self.family.nfproto(), seg.thoff) }
    }

    /// Whether the listener of the SYN `seg` accepts TCP Fast Open.
    pub fn listener_fastopen(&self, net: &Net, seg: &TcpSeg) -> bool {
        // SAFETY: As in `SkBuff::listener`: the packet is alive, its IP
        // header linear, `thoff` within it, under the hook's RCU read lock;
        // a listener found is RCU-freed, so alive until the lock ends.
        unsafe {
            let sk = bindings::sg_skb_lookup_listener(
                net.as_ptr(),
                self.skb,
                self.family.nfproto(),
                seg.thoff as i32,
            );
            !sk.is_null() && bindings::sg_sk_fastopen(sk)
        }
    }

    /// The IP header's protocol (IPv4) or next header (IPv6) field, extension
    /// headers not followed; `None` if the header is not all there.
    pub fn ip_proto(&self) -> Option<u8> {
        let mut h = [0u8; 10];
        let at = match self.family {
            Family::Inet => 9,
            Family::Inet6 => 6,
        };
        let head = h.get_mut(..=at)?;
        self.copy_ip(head)?;
        head.get(at).copied()
    }

    /// Keeps the packet, with references on its route, devices and socket
    /// (as `nf_queue` does); `Err(self)` when one cannot be taken (a device
    /// or socket going).
    pub fn steal(self) -> Result<(HeldSkb, Stolen<'a>), Self> {
        let mut saved = bindings::nf_hook_state::default();
        // SAFETY: By the type invariant the hook owns the live packet and
        // `state` is its live hook state; on success the helper took the
        // references that `HeldSkb` drops.
        if !unsafe { bindings::sg_hold_state_get(self.skb, self.state, &mut saved) } {
            return Err(self);
        }
        // INVARIANT: the hook gives the packet up (it returns `NF_STOLEN`
        // with the `Stolen` token); `saved` holds the references taken.
        let held = HeldSkb {
            // SAFETY: netfilter passes a non-null packet.
            skb: unsafe { NonNull::new_unchecked(self.skb) },
            state: saved,
            ops: self.ops,
        };
        Ok((held, Stolen(PhantomData)))
    }

    /// Frees the packet (a duplicate the hold drops).
    pub fn discard(self) -> Stolen<'a> {
        // SAFETY: By the type invariant the hook owns the packet; it returns
        // `NF_STOLEN` (the token), so netfilter does not touch it again.
        unsafe { bindings::sg_kfree_skb(self.skb) };
        Stolen(PhantomData)
    }
}

/// A stolen packet with its hook state: dropped when dropped, or
/// re-injected after our hook ([`HeldSkb::reinject`]).
///
/// # Invariants
///
/// We own `skb`; `state` is a copy of its hook state holding references on
/// `in`, `out` and `sk` (`sg_hold_state_get`), and the packet's route is
/// referenced; `ops` is the static hook ops of the hook that stole it.
pub struct HeldSkb {
    skb: NonNull<bindings::sk_buff>,
    state: bindings::nf_hook_state,
    ops: *const bindings::nf_hook_ops,
}

// SAFETY: The packet is ours alone, and every object `state` points to is
// held by a reference count (devices, socket; the namespace outlives the
// packet: the hold frees every packet in the namespace's `pre_exit`), so it
// may be used and freed from any CPU and task.
unsafe impl Send for HeldSkb {}
// SAFETY: `&HeldSkb` only reads the packet (`skb_copy_bits`).
unsafe impl Sync for HeldSkb {}

impl HeldSkb {
    /// Copies `buf.len()` bytes of the payload of segment `seg` (read from
    /// this packet), from byte `from` of the payload on.
    pub fn copy_payload(&self, seg: &TcpSeg, from: u32, buf: &mut [u8]) -> bool {
        let Some(end) = from.checked_add(buf.len() as u32) else {
            return false;
        };
        if end > seg.payload_len {
            return false;
        }
        // SAFETY: By the type invariant the packet is ours and alive; the
        // range lies within its payload (checked above: `seg` was read from
        // it, and `payload_off + payload_len` is its length); `buf` is valid
        // for `buf.len()` bytes.
        unsafe {
            bindings::sg_skb_copy_bits(
                self.skb.as_ptr(),
                (seg.payload_off + from) as i32,
                buf.as_mut_ptr().cast(),
                buf.len() as i32,
            ) == 0
        }
    }

    /// Whether its device is still registered.
    pub fn dev_alive(&self) -> bool {
        // SAFETY: By the type invariant `state.in` is null or referenced.
        unsafe { bindings::sg_hold_dev_alive(&self.state) }
    }

    /// Acknowledges the client's bytes up to sequence number `ack` in the
    /// name of the packet's request socket (the ACK TCP's request socket
    /// sends: our ISN + 1, its window, timestamps), so that a client whose
    /// request does not fit in its first flight sends the rest while the
    /// connection is held. Nothing when the packet has no request socket
    /// (call it before [`HeldSkb::detach_sock`]) or its listener closed.
    pub fn ack_request(&self, ack: u32) {
        // SAFETY: By the type invariant we own the live packet; its socket,
        // if any, is referenced by it (early demux's or our lookup's
        // reference), and a request socket references its listener. The
        // caller is in softirq (the hook) or has softirqs disabled (the
        // helper sends through the stack as TCP's request socket does from
        // `tcp_check_req`).
        unsafe { bindings::sg_reqsk_send_ack(self.skb.as_ptr(), ack) };
    }

    /// Detaches the packet's socket (`skb_orphan`: the reference that early
    /// demux or our lookup attached goes), so that TCP looks it up again when
    /// the packet is re-injected, and a held packet pins no socket (a
    /// request socket pins its listener, and a listener its namespace).
    pub fn detach_sock(&mut self) {
        // SAFETY: By the type invariant we own the packet; `skb_orphan`
        // runs its destructor (`sock_edemux`: drops the reference).
        unsafe { bindings::sg_skb_orphan(self.skb.as_ptr()) };
    }

    /// Hands the packet to the stack after our hook: the later hooks, then
    /// TCP, as `nf_reinject` does for `NF_ACCEPT` (any context; the caller
    /// holds none of its own spinlocks that the hook takes: TCP runs here).
    pub fn reinject(self) {
        let mut this = core::mem::ManuallyDrop::new(self);
        // SAFETY: By the type invariant we own the packet and `state` holds
        // the references its hook state needs; the helper takes the RCU
        // read lock and disables softirqs around the hooks and `okfn`, and
        // consumes the packet. Then the references go; `this` is not used
        // again (not dropped: `ManuallyDrop`).
        unsafe {
            bindings::sg_hold_reinject(this.skb.as_ptr(), &mut this.state, this.ops);
            bindings::sg_hold_state_put(&mut this.state);
        }
    }
}

/// A packet whose IP datagram can be read out whole: the forwarding's
/// input (a packet in a hook, or one held).
pub trait IpPacket {
    /// The length of the IP packet (from its network header), or `None`
    /// for a GSO packet (several on the wire: to be segmented first).
    fn ip_len(&self) -> Option<usize>;

    /// Copies the IP packet into `buf` ([`Self::ip_len`] bytes); `None` if
    /// it could not. `Some(Some((start, offset)))`: its transport checksum
    /// was left to the device (`CHECKSUM_PARTIAL`, as a local sender's
    /// packet through a veth), the field at `start + offset` of the copy
    /// holds the pseudo-header sum over `start..` and must be completed.
    fn copy_ip(&self, buf: &mut [u8]) -> Option<Option<(usize, usize)>>;

    /// A GSO packet (several segments on the wire: a GRO'd or a local TSO
    /// packet) cut into its segments, as `nf_queue` does for user space
    /// (`skb_gso_segment`, checksums completed in software); the packet
    /// itself is left as it was. `None` for a packet that is not GSO or
    /// that could not be cut (no memory).
    fn segments(&self) -> Option<Segments>;

    /// The packet's length and its first bytes, copied into `buf` (all of
    /// it when it is shorter); `None` for a GSO packet or a failed copy.
    fn head<'b>(&self, buf: &'b mut [u8]) -> Option<(usize, &'b [u8])> {
        let len = self.ip_len()?;
        let head = buf.get_mut(..len.min(buf.len()))?;
        self.copy_ip(head)?;
        Some((len, head))
    }
}

/// [`IpPacket::ip_len`] of `skb`.
///
/// # Safety
///
/// `skb` is a live packet that the caller owns (or borrows from its owner)
/// for the call, with its network header set.
unsafe fn skb_ip_len(skb: *mut bindings::sk_buff) -> Option<usize> {
    // SAFETY: By the function's safety requirement.
    let n = unsafe { bindings::sg_skb_ip_len(skb) };
    usize::try_from(n).ok()
}

/// [`IpPacket::copy_ip`] of `skb`.
///
/// # Safety
///
/// As for [`skb_ip_len`].
unsafe fn skb_copy_ip(
    skb: *mut bindings::sk_buff,
    buf: &mut [u8],
) -> Option<Option<(usize, usize)>> {
    let len = i32::try_from(buf.len()).ok()?;
    let (mut start, mut off) = (-1i32, 0i32);
    // SAFETY: `skb` is live (the function's safety requirement); `buf` is
    // valid for `len` bytes, `start` and `off` for writes; the helper
    // copies from the network header (it fails past the packet's end).
    let r = unsafe {
        bindings::sg_skb_copy_ip(skb, buf.as_mut_ptr().cast(), len, &mut start, &mut off)
    };
    if r != 0 {
        return None;
    }
    if start < 0 {
        return Some(None);
    }
    Some(Some((
        usize::try_from(start).ok()?,
        usize::try_from(off).ok()?,
    )))
}

impl IpPacket for HookPacket<'_> {
    fn ip_len(&self) -> Option<usize> {
        // SAFETY: By the type invariant the hook owns the live packet.
        unsafe { skb_ip_len(self.skb) }
    }

    fn copy_ip(&self, buf: &mut [u8]) -> Option<Option<(usize, usize)>> {
        // SAFETY: As in `ip_len`.
        unsafe { skb_copy_ip(self.skb, buf) }
    }

    fn segments(&self) -> Option<Segments> {
        if self.ip_len().is_some() {
            return None;
        }
        // SAFETY: By the type invariant the hook owns the live packet, its
        // data at the network header (a netfilter hook's view).
        unsafe { gso_segments(self.skb) }
    }
}

/// One segment of a GSO packet (see [`HookPacket::segments`]).
///
/// # Invariants
///
/// `skb` is a live packet that we own, not on a list, with its network
/// header set.
pub struct Segment {
    skb: NonNull<bindings::sk_buff>,
}

impl IpPacket for Segment {
    fn ip_len(&self) -> Option<usize> {
        // SAFETY: By the type invariant the packet is ours and alive.
        unsafe { skb_ip_len(self.skb.as_ptr()) }
    }

    fn copy_ip(&self, buf: &mut [u8]) -> Option<Option<(usize, usize)>> {
        // SAFETY: As in `ip_len`.
        unsafe { skb_copy_ip(self.skb.as_ptr(), buf) }
    }

    fn segments(&self) -> Option<Segments> {
        // A segment is cut already.
        None
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own the packet.
        unsafe { bindings::sg_kfree_skb(self.skb.as_ptr()) };
    }
}

/// The segments of a GSO packet, in order, each owned (the rest are freed
/// with the iterator).
///
/// # Invariants
///
/// `next` is null or the first of a list of live packets that we own,
/// linked by `next`.
pub struct Segments {
    next: *mut bindings::sk_buff,
}

impl Iterator for Segments {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        let skb = NonNull::new(self.next)?;
        // SAFETY: By the type invariant `skb` is the first packet of our
        // list: it is taken off it, and the list goes on with the next.
        unsafe {
            self.next = bindings::sg_skb_next(skb.as_ptr());
            bindings::sg_skb_mark_not_on_list(skb.as_ptr());
        }
        // INVARIANT: ours, off the list; segmentation set its headers.
        Some(Segment { skb })
    }
}

impl Drop for Segments {
    fn drop(&mut self) {
        for s in self.by_ref() {
            drop(s);
        }
    }
}

/// `skb` cut into its segments (see [`IpPacket::segments`]).
///
/// # Safety
///
/// `skb` is a live GSO packet that the caller owns (or borrows from its
/// owner) for the call, its data at the network header.
unsafe fn gso_segments(skb: *mut bindings::sk_buff) -> Option<Segments> {
    // SAFETY: By the function's safety requirement; the segmentation does
    // not consume the packet and returns a new list.
    let segs = unsafe { bindings::sg_skb_gso_segment(skb) };
    let segs = kernel::error::from_err_ptr(segs).ok()?;
    if segs.is_null() {
        return None;
    }
    // INVARIANT: a list of new packets, ours.
    Some(Segments { next: segs })
}

impl IpPacket for HeldSkb {
    fn ip_len(&self) -> Option<usize> {
        // SAFETY: By the type invariant the packet is ours and alive.
        unsafe { skb_ip_len(self.skb.as_ptr()) }
    }

    fn copy_ip(&self, buf: &mut [u8]) -> Option<Option<(usize, usize)>> {
        // SAFETY: As in `ip_len`.
        unsafe { skb_copy_ip(self.skb.as_ptr(), buf) }
    }
    fn segments(&self) -> Option<Segments> {
        if self.ip_len().is_some() {
            return None;
        }
        // SAFETY: By the type invariant the packet is ours and alive, its
        // data at the network header, as its hook left it.
        unsafe { gso_segments(self.skb.as_ptr()) }
    }
}

impl Drop for HeldSkb {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own the packet and the references.
        unsafe {
            bindings::sg_kfree_skb(self.skb.as_ptr());
            bindings::sg_hold_state_put(&mut self.state);
        }
    }
}

/// Milliseconds on the monotonic jiffies clock.
pub fn now_ms() -> u64 {
    // SAFETY: No precondition; reads `jiffies_64`.
    unsafe { bindings::sg_jiffies64_ms() }
}

/// The TCP clock in milliseconds (`tcp_clock_ns()` is `ktime_get_ns()`),
/// before a connection's timestamp offset: what TCP puts in a TSval of a
/// millisecond connection, less `ts_off`.
pub fn tcp_clock_ms() -> u32 {
    (kernel::time::Ktime::ktime_get().to_ns() / 1_000_000) as u32
}

/// Drops the request socket (`TCP_NEW_SYN_RECV`) of the connection from
/// `saddr:sport` to `daddr:dport` (ports in host order) in `net` whose ISN
/// is `snt_isn`, without a packet to the client:
/// `inet_csk_reqsk_queue_drop_and_put` unhashes it and stops its SYN-ACK
/// timer. `false`: no such request socket (it went, or the tuple is
/// another connection's now). Process or softirq context (softirqs are
/// disabled around the drop: TCP takes the hash bucket's lock with a plain
/// `spin_lock`, from softirq).
pub fn drop_request(
    net: &Net,
    family: Family,
    saddr: &[u8; 16],
    sport: u16,
    daddr: &[u8; 16],
    dport: u16,
    snt_isn: u32,
) -> bool {
    let _guard = super::rcu::Guard::new();
    let net = net.as_ptr();
    // SAFETY: `net` is alive (the caller's reference); its TCP hash table
    // pointer is set for the namespace's life.
    let hinfo = unsafe { (*net).ipv4.tcp_death_row.hashinfo };
    let sk = match family {
        Family::Inet => {
            let (mut s, mut d) = ([0u8; 4], [0u8; 4]);
            s.copy_from_slice(&saddr[..4]);
            d.copy_from_slice(&daddr[..4]);
            // SAFETY: Under the RCU read lock (`_guard`), as the lookup
            // requires; it returns a referenced socket or null.
            unsafe {
                bindings::__inet_lookup_established(
                    net,
                    hinfo,
                    u32::from_ne_bytes(s),
                    sport.to_be(),
                    u32::from_ne_bytes(d),
                    dport,
                    0,
                    0,
                )
            }
        }
        Family::Inet6 => {
            let s: bindings::in6_addr = bytes_in6(saddr);
            let d: bindings::in6_addr = bytes_in6(daddr);
            // SAFETY: As above; the addresses live across the call.
            unsafe {
                bindings::__inet6_lookup_established(net, hinfo, &s, sport.to_be(), &d, dport, 0, 0)
            }
        }
    };
    if sk.is_null() {
        return false;
    }
    let mut info = bindings::sg_req_info::default();
    // SAFETY: `sk` is referenced by the lookup.
    let ours = unsafe { bindings::sg_reqsk_info(sk, &mut info) } && info.snt_isn == snt_isn;
    if ours {
        let req = sk.cast::<bindings::request_sock>();
        // SAFETY: `sk` is a request socket (`TCP_NEW_SYN_RECV`, checked by
        // `sg_reqsk_info`), whose `sock_common` is its first member
        // (`inet_reqsk`); its `skc_listener` (`rsk_listener`) is its
        // referenced listener. The call consumes the lookup's reference.
        // Softirqs are disabled around it (the bucket lock is taken with
        // `spin_lock`, as TCP's softirq path takes it), and enabled again.
        unsafe {
            let listener = (*req).__req_common.__bindgen_anon_5.skc_listener;
            bindings::sg_local_bh_disable();
            bindings::inet_csk_reqsk_queue_drop_and_put(listener, req);
            bindings::sg_local_bh_enable();
        };
    } else {
        // SAFETY: The lookup's reference, given back.
        unsafe { bindings::sock_gen_put(sk) };
    }
    ours
}

/// An IPv6 address from its 16 bytes.
fn bytes_in6(b: &[u8; 16]) -> bindings::in6_addr {
    let mut a = bindings::in6_addr::default();
    // The byte view of the union: the other views see the same bytes.
    a.in6_u.u6_addr8 = *b;
    a
}

/// A random number (`get_random_u32`).
pub fn random_u32() -> u32 {
    // SAFETY: No precondition; callable in any context.
    unsafe { bindings::sg_get_random_u32() }
}

/// A packet leaving through LOCAL_OUT, in the replay hook or the hold's:
/// read, or its TCP header rewritten in place ([`OutPacket::rewrite_tcp`]);
/// the hook's verdict ([`OutVerdict`]) lets it go on or drops it.
///
/// # Invariants
///
/// `skb` is the live packet of a call of a LOCAL_OUT hook of `family`,
/// its network header set, for `'a`; the hook may modify it (netfilter
/// hands the packet to one hook at a time).
pub struct OutPacket<'a> {
    skb: *mut bindings::sk_buff,
    family: Family,
    _p: PhantomData<&'a ()>,
}

/// What the replay hook decides for a packet at LOCAL_OUT.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OutVerdict {
    /// Let it go on (`NF_ACCEPT`).
    Accept,
    /// Drop it (`NF_DROP`: netfilter frees it).
    Drop,
}

impl OutVerdict {
    pub(crate) fn raw(self) -> u32 {
        match self {
            OutVerdict::Accept => bindings::NF_ACCEPT,
            OutVerdict::Drop => bindings::NF_DROP,
        }
    }
}

/// The socket a packet at LOCAL_OUT was sent by.
pub enum OutSock<'a> {
    /// None (a SYN-ACK with a SYN cookie, or a packet of no socket).
    None,
    /// A request socket: its SYN-ACK.
    Request(&'a ReqSock),
    /// A full socket in the state `TCP_*` (TCP's control socket of a
    /// namespace, which sends RSTs, is one in `TCP_CLOSE`).
    Full(u8),
}

impl<'a> OutPacket<'a> {
    /// # Safety
    ///
    /// `skb` is the live packet of a call of a LOCAL_OUT hook of `family`
    /// (its network header set), alive for `'a`.
    pub(crate) unsafe fn new(skb: *mut bindings::sk_buff, family: Family) -> Self {
        // INVARIANT: As the caller guarantees.
        Self {
            skb,
            family,
            _p: PhantomData,
        }
    }

    /// The packet's family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The TCP segment, if this is one (not a fragment, header complete).
    pub fn tcp_seg(&self) -> Option<TcpSeg> {
        let mut s = bindings::sg_tcp_seg::default();
        // SAFETY: By the type invariant the packet is alive, its network
        // header set; the helper reads the rest with `skb_header_pointer`.
        if !unsafe { bindings::sg_skb_tcp_seg(self.skb, self.family.nfproto(), &mut s) } {
            return None;
        }
        Some(TcpSeg::from_raw(self.family, &s))
    }

    /// The MTU of its route (`dst_mtu`), `None` without a route.
    pub fn dst_mtu(&self) -> Option<u32> {
        // SAFETY: By the type invariant the packet is alive; its route, if
        // any, is held by it.
        match unsafe { bindings::sg_skb_dst_mtu(self.skb) } {
            0 => None,
            mtu => Some(mtu),
        }
    }

    /// Lends `f` the TCP header of segment `seg` (read from this packet:
    /// from its first byte to the payload), made writable in place, with
    /// what its checksum field holds: [`CsumMode::PseudoOnly`] for a
    /// `CHECKSUM_PARTIAL` packet (as TCP builds its SYN-ACKs: the device
    /// or `skb_checksum_help` sums the header later), else the full
    /// checksum. `None` (nothing changed) when the header could not be made
    /// writable (`skb_ensure_writable`: no memory to copy a shared or
    /// cloned head), or `seg` does not fit the packet any more.
    ///
    /// `f` must not change the header's length: the packet's lengths and
    /// a partial checksum's pseudo-header sum stay as they are.
    pub fn rewrite_tcp<R>(
        &mut self,
        seg: &TcpSeg,
        f: impl FnOnce(&mut [u8], CsumMode) -> R,
    ) -> Option<R> {
        let end = seg.payload_off;
        let hlen = end.checked_sub(seg.thoff)? as usize;
        // SAFETY: By the type invariant the hook owns the live packet and
        // may modify it; the helper pulls the first `end` bytes from the
        // data (the network header at LOCAL_OUT) into the linear head and
        // unshares it (a clone's or shared head is copied), or fails.
        if unsafe { bindings::skb_ensure_writable(self.skb, end) } != 0 {
            return None;
        }
        // SAFETY: As above; the packet's header fields are read while we
        // own it.
        let partial = unsafe {
            (*self.skb)
                .__bindgen_anon_4
                .__bindgen_anon_1
                .as_ref()
                .ip_summed()
                == bindings::CHECKSUM_PARTIAL as u8
        };
        let mode = if partial {
            CsumMode::PseudoOnly
        } else {
            CsumMode::Full
        };
        // SAFETY: `skb_ensure_writable` succeeded: the first `end` bytes
        // from `data` are linear, writable and ours (the head is not
        // shared), so `[thoff, end)` is a valid exclusive slice for the
        // call, which outlives no borrow of the packet (`&mut self`).
        let hdr = unsafe {
            core::slice::from_raw_parts_mut((*self.skb).data.add(seg.thoff as usize), hlen)
        };
        Some(f(hdr, mode))
    }

    /// The socket that sent it (`skb->sk`).
    pub fn sock(&self) -> OutSock<'a> {
        // SAFETY: By the type invariant the packet is alive.
        let sk = unsafe { (*self.skb).sk };
        if sk.is_null() {
            return OutSock::None;
        }
        // SAFETY: A packet's socket is alive while the packet is (it holds
        // a reference or, for a request socket's SYN-ACK, its sender holds
        // one during the send, `tcp_conn_request`).
        let state = unsafe { bindings::sg_sk_state(sk) } as u32;
        if state == bindings::TCP_NEW_SYN_RECV {
            // SAFETY: A live request socket, for the hook call (above).
            OutSock::Request(unsafe { ReqSock::from_raw(sk) })
        } else {
            OutSock::Full(state as u8)
        }
    }
}
