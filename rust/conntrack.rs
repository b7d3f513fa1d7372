// SPDX-License-Identifier: GPL-2.0

//! Connection tracking's entries of TCP connections: the handoff forgets
//! the entry of a connection that moved away (the front-end's, which would
//! otherwise stay established for days) or whose tracking began wrong (the
//! back-end's replayed SYN, whose SYN-ACK conntrack never sees).
//!
//! C headers: [`include/net/netfilter/nf_conntrack.h`](srctree/include/net/netfilter/nf_conntrack.h),
//! [`include/net/netfilter/nf_conntrack_tuple.h`](srctree/include/net/netfilter/nf_conntrack_tuple.h).

use super::{bindings, net::Net, skb::Family, tcp::Conn};

/// The tuple of `c` in the direction from its remote (the client) to its
/// local address (the service), as conntrack builds it from a packet
/// (`nf_ct_get_tuple`: zeroed, then filled; IPv4 in the first word).
fn tuple(c: &Conn) -> bindings::nf_conntrack_tuple {
    let words = |a: &[u8; 16]| {
        let mut w = [0u32; 4];
        for (i, x) in w.iter_mut().enumerate() {
            *x = u32::from_ne_bytes([a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]]);
        }
        w
    };
    let mut t = bindings::nf_conntrack_tuple::default();
    t.src.l3num = match c.family {
        Family::Inet => bindings::AF_INET as u16,
        Family::Inet6 => bindings::AF_INET6 as u16,
    };
    // Writing a union's field is safe: every view is plain bytes.
    t.src.u3.all = words(&c.remote);
    t.src.u.all = c.remote_port.to_be();
    t.dst.u3.all = words(&c.local);
    t.dst.u.all = c.local_port.to_be();
    t.dst.protonum = bindings::IPPROTO_TCP as u8;
    t.dst.dir = bindings::ip_conntrack_dir_IP_CT_DIR_ORIGINAL as u8;
    t
}

/// Deletes conntrack's entry of the TCP connection `c` in `net` (found by
/// its tuple in either direction, in the default zone), if conntrack
/// tracks it: `true` when this call deleted one. Nothing without
/// conntrack. Any context (softirq too, under RCU or not).
pub fn forget(net: &Net, c: &Conn) -> bool {
    let t = tuple(c);
    // SAFETY: `net` is alive (`&Net`); `t` is a complete tuple that lives
    // across the call. The lookup takes its own RCU read lock and returns
    // a referenced entry or null.
    let ct = unsafe { bindings::sg_nf_ct_find_get(net.as_ptr(), &t) };
    if ct.is_null() {
        return false;
    }
    // SAFETY: `ct` is an entry we hold a reference on (the lookup's),
    // given back after the delete; `nf_ct_delete` may be called in any
    // context and on an entry that another path deletes at once (one of
    // them wins, the other gets `false`).
    unsafe {
        let deleted = bindings::sg_nf_ct_delete(ct);
        bindings::sg_nf_ct_put(ct);
        deleted
    }
}
