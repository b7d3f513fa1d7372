// SPDX-License-Identifier: GPL-2.0

//! A listener's accept queue: reading its oldest connection, and moving
//! connections from one listener's queue to another's, as the kernel moves
//! them between `SO_REUSEPORT` listeners when one closes
//! (`inet_csk_listen_stop`, `inet_reqsk_clone`, `inet_csk_reqsk_queue_add`).
//!
//! C headers: [`include/net/request_sock.h`](srctree/include/net/request_sock.h),
//! [`include/net/inet_connection_sock.h`](srctree/include/net/inet_connection_sock.h).
//!
//! The accept queue is a singly linked list of request sockets, each holding
//! its child (`req->sk`, an established socket not yet accepted) and a
//! reference on its listener (`req->rsk_listener`). Connections join at the
//! tail from softirq context under the queue's spinlock; they leave at the
//! head only in `accept()` and when the listener closes, both with the
//! listener's socket lock owned. A [`OwnedListener`] owns that lock, so the
//! head it reads stays the head until it moves it.

use super::{bindings, skb::Family, sock::Sock};
use core::{
    mem::offset_of,
    ptr::{self, NonNull},
    sync::atomic::{AtomicI32, Ordering::Release},
};
use kernel::prelude::*;

/// The accept queue of `sk`, a TCP socket (`inet_csk(sk)->icsk_accept_queue`).
fn queue(sk: &Sock) -> *mut bindings::request_sock_queue {
    let icsk = sk.as_ptr().cast::<bindings::inet_connection_sock>();
    // SAFETY: A TCP socket is an `inet_connection_sock` whose first member
    // is the `sock` (`inet_csk()` is this cast); the socket is alive (type
    // invariant of `Sock`). Only the address is computed.
    unsafe { ptr::addr_of_mut!((*icsk).icsk_accept_queue) }
}

impl Sock {
    /// The identity of the oldest connection in this listener's accept
    /// queue (0: empty), read without a lock: only compared, never followed.
    pub fn accept_head_id(&self) -> usize {
        let q = queue(self);
        // SAFETY: `q` is the live socket's queue; the kernel writes the head
        // with WRITE_ONCE and reads it locklessly in `reqsk_queue_empty`.
        unsafe { ptr::read_volatile(ptr::addr_of!((*q).rskq_accept_head)) as usize }
    }

    /// The oldest connection in this listener's accept queue, if any.
    pub fn accept_head(&self) -> Option<Queued> {
        let q = queue(self);
        // SAFETY: The queue's lock is initialized with the socket; we take
        // it with softirqs off, as `reqsk_queue_remove` does. Under it the
        // head, if any, is a live request in the queue, whose `sk` is its
        // child, kept alive by the queue's reference.
        unsafe {
            let lock = ptr::addr_of_mut!((*q).rskq_lock);
            bindings::sg_spin_lock_bh(lock);
            let req = (*q).rskq_accept_head;
            let head = NonNull::new(req).and_then(|req| Queued::read(req));
            bindings::sg_spin_unlock_bh(lock);
            head
        }
    }

    /// Locks this listener's socket as its owner (`lock_sock`; may sleep).
    pub fn lock_owned(&self) -> OwnedListener<'_> {
        self.lock_owned_at(0)
    }

    /// Locks a second listener while holding one already
    /// (`lock_sock_nested(sk, SINGLE_DEPTH_NESTING)`): the caller orders the
    /// pairs it locks so that no two tasks take the same two in opposite
    /// orders.
    pub fn lock_owned_nested(&self) -> OwnedListener<'_> {
        self.lock_owned_at(bindings::SINGLE_DEPTH_NESTING as i32)
    }

    fn lock_owned_at(&self, subclass: i32) -> OwnedListener<'_> {
        // SAFETY: The socket is alive (type invariant); this is process
        // context (the caller's contract: a sleeping lock).
        unsafe { bindings::lock_sock_nested(self.as_ptr(), subclass) };
        OwnedListener { sk: self }
    }
}

/// What a connection waiting in an accept queue is, as far as moving it goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Queued {
    /// The request's identity (its address), as [`Sock::accept_head_id`].
    pub id: usize,
    /// The child's cookie: unique, never reused.
    pub cookie: u64,
    /// The child's family.
    pub family: Family,
    /// An IPv6 child that carries IPv4 (an IPv4-mapped peer address).
    pub mapped: bool,
    /// A TCP Fast Open connection whose request still counts on its
    /// listener's Fast Open queue: it stays where it is.
    pub fastopen: bool,
}

impl Queued {
    /// # Safety
    ///
    /// `req` is in a listener's accept queue and the caller holds that
    /// queue's lock (or owns the listener's socket lock, so that it stays).
    unsafe fn read(req: NonNull<bindings::request_sock>) -> Option<Self> {
        let req = req.as_ptr();
        // SAFETY: By the contract `req` is a live request in an accept
        // queue: a TCP request (`tcp_request_sock` starts with it) whose
        // child `sk` is alive and referenced by the queue.
        unsafe {
            let child = Sock::from_raw((*req).sk);
            let family = child.family()?;
            let common = ptr::addr_of!((*child.as_ptr()).__sk_common);
            let daddr = (*common).skc_v6_daddr.in6_u.u6_addr8;
            let mapped = family == Family::Inet6
                && daddr[..10].iter().all(|&b| b == 0)
                && daddr[10..12] == [0xff, 0xff];
            let treq = req.cast::<bindings::tcp_request_sock>();
            Some(Queued {
                id: req as usize,
                cookie: child.cookie(),
                family,
                mapped,
                fastopen: ptr::read_volatile(ptr::addr_of!((*treq).tfo_listener)),
            })
        }
    }
}

/// Why a connection did not move.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MoveError {
    /// The queue's head is not the connection asked for (or it is empty).
    Gone,
    /// The target is not listening.
    NotListening,
    /// A Fast Open connection whose handshake is not complete.
    FastOpen,
    /// No memory for the request's copy.
    NoMemory,
}

/// A listener whose socket lock this task owns (`lock_sock`), released on drop.
///
/// # Invariants
///
/// The task owns `sk`'s socket lock for the lifetime of this value.
pub struct OwnedListener<'a> {
    sk: &'a Sock,
}

impl Drop for OwnedListener<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this task owns the lock.
        unsafe { bindings::release_sock(self.sk.as_ptr()) };
    }
}

impl OwnedListener<'_> {
    /// The locked socket.
    pub fn sk(&self) -> &Sock {
        self.sk
    }

    /// Moves the oldest connection of this listener's accept queue, if it is
    /// `head` (as [`Sock::accept_head`] read it), to the tail of `to`'s accept
    /// queue, and wakes `to`'s accepting tasks. The connection keeps its
    /// child socket and everything queued on it; the request is copied for
    /// the new listener, as `inet_reqsk_clone` does, and the old one freed.
    ///
    /// Both listeners being owned, neither can accept nor close meanwhile:
    /// the connection is in exactly one accept queue before and after.
    pub fn move_head(&self, head: &Queued, to: &OwnedListener<'_>) -> Result<(), MoveError> {
        if head.fastopen {
            return Err(MoveError::FastOpen);
        }
        if !to.sk.is_listening() {
            return Err(MoveError::NotListening);
        }
        let from = self.sk.as_ptr();
        let q = queue(self.sk);
        // SAFETY: We own `from`'s socket lock (type invariant), so the head
        // can only change by our own removal below: if it is `head.id` now,
        // it is a live request of this queue, alive until we free it.
        let req = unsafe { (*q).rskq_accept_head };
        if req as usize != head.id || req.is_null() {
            return Err(MoveError::Gone);
        }
        // SAFETY: `req` is a live TCP request (above); its `rsk_ops` is the
        // protocol's static operations.
        let obj_size = unsafe { (*(*req).rsk_ops).obj_size };
        // The copy, allocated before any spinlock: this is process context
        // (a kworker), so it may sleep, unlike the kernel's own move.
        // SAFETY: `req` is a live request; the helper allocates an object
        // of its operations' slab (`obj_size` bytes at least) or fails.
        let nreq = unsafe { bindings::sg_reqsk_alloc(req) };
        if nreq.is_null() {
            return Err(MoveError::NoMemory);
        }
        let to_sk = to.sk.as_ptr();
        // SAFETY: Everything below runs with softirqs off, as the kernel's
        // move does (`inet_csk_listen_stop`):
        // - `req` stays the head of `from`'s queue until we unlink it under
        //   the queue's lock (we own `from`; arrivals only append);
        // - its child is locked (`bh_lock_sock`) while it changes listener;
        //   no task owns it, as it was never accepted;
        // - `nreq` is a fresh object of `req`'s slab: copying `req` into it
        //   around the `sock_common` range the kernel never copies, then
        //   setting what `inet_reqsk_clone` sets, gives an identical request
        //   whose listener is `to` (with its own reference, `sock_hold`);
        // - `inet_csk_reqsk_queue_add` cannot fail, as `to` is listening
        //   and owned by us (only its owner stops it listening);
        // - `reqsk_migrate_reset` then takes from the old request what the
        //   copy now owns, and `reqsk_put` frees it, dropping its reference
        //   on `from` (which our caller still holds, and owns);
        // - `sk_data_ready` wakes `to`'s accepting tasks, as after any add.
        unsafe {
            let child = (*req).sk;
            bindings::sg_local_bh_disable();
            bindings::sg_bh_lock_sock(child);
            let lock = ptr::addr_of_mut!((*q).rskq_lock);
            bindings::sg_spin_lock(lock);
            (*q).rskq_accept_head = (*req).dl_next;
            if (*q).rskq_accept_head.is_null() {
                (*q).rskq_accept_tail = ptr::null_mut();
            }
            bindings::sg_sk_acceptq_removed(from);
            bindings::sg_spin_unlock(lock);

            let (src, dst) = (req.cast::<u8>(), nreq.cast::<u8>());
            let begin = offset_of!(bindings::sock_common, skc_dontcopy_begin);
            let end = offset_of!(bindings::sock_common, skc_dontcopy_end);
            ptr::copy_nonoverlapping(src, dst, begin);
            ptr::copy_nonoverlapping(src.add(end), dst.add(end), obj_size as usize - end);
            let (oc, nc) = (
                ptr::addr_of_mut!((*req).__req_common),
                ptr::addr_of_mut!((*nreq).__req_common),
            );
            // `sk_node_init`, and the fields `inet_reqsk_clone` copies from
            // the range it skips (`sock_common`'s anonymous unions, by
            // bindgen's names: a layout change fails to build).
            (*nc).__bindgen_anon_6.skc_node.next = ptr::null_mut();
            (*nc).__bindgen_anon_6.skc_node.pprev = ptr::null_mut();
            (*nc).skc_tx_queue_mapping = (*oc).skc_tx_queue_mapping;
            (*nc).skc_rx_queue_mapping = (*oc).skc_rx_queue_mapping;
            (*nc).__bindgen_anon_7.skc_incoming_cpu = (*oc).__bindgen_anon_7.skc_incoming_cpu;
            bindings::sg_sock_hold(to_sk);
            // `rsk_listener` and `rsk_refcnt` are `sock_common`'s.
            (*nc).__bindgen_anon_5.skc_listener = to_sk;
            AtomicI32::from_ptr(ptr::addr_of_mut!((*nc).skc_refcnt.refs.counter)).store(1, Release);

            let added = bindings::inet_csk_reqsk_queue_add(to_sk, nreq, child);
            // Not reached (see above); the kernel's queue add has then
            // disposed of the child, and the copy is ours to free.
            if added.is_null() {
                migrate_reset(nreq);
                bindings::sg_reqsk_put(nreq);
            } else {
                migrate_reset(req);
                if let Some(ready) = (*to_sk).sk_data_ready {
                    ready(to_sk);
                }
            }
            bindings::sg_bh_unlock_sock(child);
            bindings::sg_local_bh_enable();
            bindings::sg_reqsk_put(req);
            if added.is_null() {
                return Err(MoveError::NotListening);
            }
        }
        Ok(())
    }
}

// `migrate_reset` clears the IPv6 pair of the options' union.
#[cfg(not(any(CONFIG_IPV6, CONFIG_IPV6_MODULE)))]
compile_error!("the accept queue's move needs a kernel with IPv6");

/// What `reqsk_migrate_reset` (static in `inet_connection_sock.c`) does: a
/// request whose copy took over its saved SYN and IP options forgets them,
/// so that freeing it does not free them.
///
/// # Safety
///
/// `req` is a live TCP request of an IPv4 or IPv6 listener that nobody else
/// uses now, and whose copy owns these pointers (or that is being freed
/// without them, for a copy that was not queued).
unsafe fn migrate_reset(req: *mut bindings::request_sock) {
    // SAFETY: By the contract `req` is a live, unshared TCP request, hence an
    // `inet_request_sock`; the kernel is built with IPv6 (see the tests'
    // configs), so the options' union holds the IPv6 pair, which covers the
    // IPv4 pointer.
    unsafe {
        (*req).saved_syn = ptr::null_mut();
        let ireq = req.cast::<bindings::inet_request_sock>();
        let opts = ptr::addr_of_mut!((*ireq).__bindgen_anon_1.__bindgen_anon_1);
        (*opts).ipv6_opt = ptr::null_mut();
        (*opts).pktopts = ptr::null_mut();
    }
}
