// SPDX-License-Identifier: GPL-2.0

//! Sockets: a reference-counted handle on `struct sock`, and kernel sockets.
//!
//! C headers: [`include/net/sock.h`](srctree/include/net/sock.h),
//! [`include/linux/net.h`](srctree/include/linux/net.h).

use super::bindings;
use core::ptr::NonNull;
use kernel::{
    error::{to_result, Result},
    types::{AlwaysRefCounted, Opaque},
};

/// TCP state of a socket, as in `include/net/tcp_states.h`.
pub const TCP_LISTEN: u8 = bindings::TCP_LISTEN as u8;

/// A socket (`struct sock`).
///
/// # Invariants
///
/// The wrapped `struct sock` is alive: a [`Sock`] is only reached through a
/// reference whose lifetime the caller of [`Sock::from_raw`] vouched for, or
/// through an [`kernel::types::ARef`] that owns a reference count on it.
#[repr(transparent)]
pub struct Sock(Opaque<bindings::sock>);

// SAFETY: `struct sock` is used from any CPU; every field read here is read
// with READ_ONCE (in the C helpers) or is constant while the socket lives.
unsafe impl Send for Sock {}
// SAFETY: As above: shared access from several threads only reads.
unsafe impl Sync for Sock {}

// SAFETY: `sock_hold` and `sock_put` are the kernel's reference counting of
// `struct sock`; the last `sock_put` frees it, after which it is not used.
unsafe impl AlwaysRefCounted for Sock {
    fn inc_ref(&self) {
        // SAFETY: By the type invariant the socket is alive.
        unsafe { bindings::sg_sock_hold(self.as_ptr()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns one reference count, which it gives up here.
        unsafe { bindings::sg_sock_put(obj.cast().as_ptr()) };
    }
}

impl Sock {
    /// Creates a reference to a [`Sock`] from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a live `struct sock` that stays alive for `'a`
    /// (for instance under `rcu_read_lock()` for an RCU-freed listener, or
    /// while the caller holds a reference count).
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::sock) -> &'a Self {
        // SAFETY: `Sock` is `repr(transparent)` over `struct sock`, and the
        // caller guarantees the pointee is alive for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw pointer to the `struct sock`.
    pub fn as_ptr(&self) -> *mut bindings::sock {
        self.0.get()
    }

    /// The TCP state (`sk_state`).
    pub fn state(&self) -> u8 {
        // SAFETY: By the type invariant the socket is alive.
        unsafe { bindings::sg_sk_state(self.as_ptr()) as u8 }
    }

    /// Whether the socket is a listener.
    pub fn is_listening(&self) -> bool {
        self.state() == TCP_LISTEN
    }

    /// Connections in the accept queue (`sk_ack_backlog`).
    pub fn ack_backlog(&self) -> u32 {
        // SAFETY: By the type invariant the socket is alive.
        unsafe { bindings::sg_sk_ack_backlog(self.as_ptr()) }
    }

    /// The accept queue's limit (`sk_max_ack_backlog`, the listen() backlog).
    pub fn max_ack_backlog(&self) -> u32 {
        // SAFETY: By the type invariant the socket is alive.
        unsafe { bindings::sg_sk_max_ack_backlog(self.as_ptr()) }
    }

    /// Handshakes under way on a listener (`inet_csk_reqsk_queue_len`).
    pub fn reqsk_queue_len(&self) -> u32 {
        // SAFETY: By the type invariant the socket is alive.
        unsafe { bindings::sg_reqsk_queue_len(self.as_ptr()) }
    }
}

/// Address families.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
}

impl Family {
    fn raw(self) -> i32 {
        match self {
            Family::Inet => bindings::AF_INET as i32,
            Family::Inet6 => bindings::AF_INET6 as i32,
        }
    }
}

/// A kernel-owned TCP socket in the initial network namespace.
///
/// # Invariants
///
/// `sock` is a socket created by `sock_create_kern` and owned by this value;
/// it is released in `Drop`.
pub struct KernelSocket {
    sock: NonNull<bindings::socket>,
}

impl KernelSocket {
    /// Creates a TCP socket of `family` in the initial network namespace.
    pub fn new_tcp(family: Family) -> Result<Self> {
        let mut sock: *mut bindings::socket = core::ptr::null_mut();
        // SAFETY: `init_net` lives for the whole uptime; `sock` is a valid
        // out-pointer.
        to_result(unsafe {
            bindings::sock_create_kern(
                core::ptr::addr_of_mut!(bindings::init_net),
                family.raw(),
                bindings::sock_type_SOCK_STREAM as i32,
                bindings::IPPROTO_TCP as i32,
                &mut sock,
            )
        })?;
        // INVARIANT: `sock_create_kern` succeeded, so `sock` is a valid socket we own.
        Ok(Self {
            sock: NonNull::new(sock).ok_or(kernel::error::code::ENOMEM)?,
        })
    }

    /// Binds to the IPv4 loopback address, any port.
    pub fn bind_loopback_v4(&self) -> Result {
        let mut addr = bindings::sockaddr_in {
            sin_family: bindings::AF_INET as u16,
            sin_addr: bindings::in_addr {
                s_addr: u32::to_be(0x7f00_0001),
            },
            ..Default::default()
        };
        // SAFETY: By the type invariant `sock` is valid; `addr` is a valid
        // `sockaddr_in` whose size is passed.
        to_result(unsafe {
            bindings::kernel_bind(
                self.sock.as_ptr(),
                core::ptr::addr_of_mut!(addr).cast(),
                core::mem::size_of::<bindings::sockaddr_in>() as i32,
            )
        })
    }

    /// Starts listening with `backlog`.
    pub fn listen(&self, backlog: i32) -> Result {
        // SAFETY: By the type invariant `sock` is valid.
        to_result(unsafe { bindings::kernel_listen(self.sock.as_ptr(), backlog) })
    }

    /// The socket's `struct sock`.
    pub fn sk(&self) -> &Sock {
        // SAFETY: By the type invariant `sock` is valid, and its `sk` lives
        // as long as the socket, which `self` keeps.
        unsafe { Sock::from_raw((*self.sock.as_ptr()).sk) }
    }
}

impl Drop for KernelSocket {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own `sock`; it is not used again.
        unsafe { bindings::sock_release(self.sock.as_ptr()) };
    }
}
