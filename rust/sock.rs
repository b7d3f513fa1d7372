// SPDX-License-Identifier: GPL-2.0

//! Sockets: a reference-counted handle on `struct sock`, and kernel sockets.
//!
//! C headers: [`include/net/sock.h`](srctree/include/net/sock.h),
//! [`include/linux/net.h`](srctree/include/linux/net.h).

use super::{bindings, net::Net, skb::Family};
use core::ptr::NonNull;
use kernel::{
    error::{to_result, Result},
    types::{AlwaysRefCounted, Opaque},
};

/// TCP state of a socket, as in `include/net/tcp_states.h`.
pub const TCP_LISTEN: u8 = bindings::TCP_LISTEN as u8;
/// TCP state of a closed socket (also after a refused or reset connection).
pub const TCP_CLOSE: u8 = bindings::TCP_CLOSE as u8;

/// A socket (`struct sock`).
///
/// # Invariants
///
/// The wrapped `struct sock` is alive: a [`Sock`] is only reached through a
/// reference whose lifetime the caller of [`Sock::from_raw`] vouched for, or
/// through an [`kernel::types::ARef`] that owns a reference count on it.
#[repr(transparent)]
pub struct Sock(Opaque<bindings::sock>);

// SAFETY: `struct sock` is used from any CPU, and its reference count
// (`AlwaysRefCounted` below) is atomic, so a reference may move to another
// thread.
unsafe impl Send for Sock {}
// SAFETY: Shared access only reads, through the C helpers, and each field
// read is either read with READ_ONCE where the kernel changes it
// concurrently (state, backlogs, handshakes, port), or set before the
// socket can listen and not changed while it does (family, type, protocol,
// `IPV6_V6ONLY`, the bound address: `tcp_disconnect` resets only an
// address that no bind locked, i.e. the wildcard, which a listener then
// already has), or is atomic (the cookie, `sock_gen_cookie`).
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

    /// The socket's identity: its address, stable while it lives.
    pub fn key(&self) -> usize {
        self.as_ptr() as usize
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

    /// The address family (`sk_family`), if IPv4 or IPv6.
    pub fn family(&self) -> Option<Family> {
        // SAFETY: By the type invariant the socket is alive.
        Family::from_af(unsafe { bindings::sg_sk_family(self.as_ptr()) })
    }

    /// Whether this is a TCP socket (`SOCK_STREAM`, `IPPROTO_TCP`).
    pub fn is_tcp(&self) -> bool {
        // SAFETY: By the type invariant the socket is alive.
        let (ty, proto) = unsafe {
            (
                bindings::sg_sk_type(self.as_ptr()),
                bindings::sg_sk_protocol(self.as_ptr()),
            )
        };
        u32::from(ty) == bindings::sock_type_SOCK_STREAM
            && u32::from(proto) == bindings::IPPROTO_TCP
    }

    /// Whether an IPv6 socket refuses IPv4 (`IPV6_V6ONLY`).
    pub fn ipv6only(&self) -> bool {
        // SAFETY: By the type invariant the socket is alive.
        unsafe { bindings::sg_sk_ipv6only(self.as_ptr()) }
    }

    /// The local port, host order (`inet_num`).
    pub fn local_port(&self) -> u16 {
        // SAFETY: By the type invariant the socket is alive.
        unsafe { bindings::sg_sk_local_port(self.as_ptr()) }
    }

    /// The bound local address: IPv4 in the first 4 bytes, network order.
    pub fn local_addr(&self) -> [u8; 16] {
        let mut addr = [0u8; 16];
        // SAFETY: By the type invariant the socket is alive; `addr` has 16 bytes.
        unsafe { bindings::sg_sk_local_addr(self.as_ptr(), addr.as_mut_ptr()) };
        addr
    }

    /// The socket's network namespace.
    pub fn net(&self) -> &Net {
        // SAFETY: The socket is alive for `&self` (type invariant), and so is
        // its namespace: a user socket holds a reference on it, released
        // when the socket is freed (`__sk_destruct`); a kernel socket is
        // released by its owner before the namespace's teardown ends (ours,
        // `KernelSocket`, is in `init_net`, which never goes).
        unsafe { Net::from_raw(bindings::sg_sock_net(self.as_ptr())) }
    }

    /// Whether the calling task has `CAP_NET_ADMIN` in the user namespace
    /// that owns the socket's network namespace (the kernel's own socket
    /// options check `sockopt_ns_capable()` likewise).
    pub fn net_admin_capable(&self) -> bool {
        // SAFETY: The namespace outlives `&self` (see `net()`); its
        // `user_ns` is set when it is created and held until it is freed.
        // `ns_capable()` reads the current task's credentials.
        unsafe {
            bindings::ns_capable(
                (*self.net().as_ptr()).user_ns,
                bindings::CAP_NET_ADMIN as i32,
            )
        }
    }

    /// The socket cookie (`SO_COOKIE`), assigned on first use.
    pub fn cookie(&self) -> u64 {
        // SAFETY: By the type invariant the socket is alive.
        unsafe { bindings::sg_sock_cookie(self.as_ptr()) }
    }
}

/// A socket reached through a file descriptor of the calling process.
///
/// # Invariants
///
/// `sock` came from a successful `sockfd_lookup`, whose file reference this
/// value owns and drops with `sockfd_put`.
pub struct SocketFd {
    sock: NonNull<bindings::socket>,
}

impl SocketFd {
    /// Looks up `fd`: `EBADF` when it is not open, `ENOTSOCK` when not a socket.
    pub fn lookup(fd: i32) -> Result<Self> {
        let mut err = 0;
        // SAFETY: `err` is a valid out-pointer; the call takes a reference
        // on the file.
        let sock = unsafe { bindings::sockfd_lookup(fd, &mut err) };
        match NonNull::new(sock) {
            // INVARIANT: The lookup succeeded.
            Some(sock) => Ok(Self { sock }),
            None => Err(kernel::error::Error::from_errno(err)),
        }
    }

    /// The socket's `struct sock`, if it has one.
    pub fn sk(&self) -> Option<&Sock> {
        // SAFETY: By the type invariant `sock` is alive while we hold the
        // file; `sock->sk` is set when the socket is created (or grafted at
        // accept, before the file has a descriptor) and cleared only by
        // `sock_release` when the file's last reference goes.
        let sk = unsafe { (*self.sock.as_ptr()).sk };
        // SAFETY: As above: the `struct sock` lives at least until the
        // release that our file reference holds off, so for `&self`.
        (!sk.is_null()).then(|| unsafe { Sock::from_raw(sk) })
    }
}

impl Drop for SocketFd {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own one file reference.
        unsafe { bindings::sg_sockfd_put(self.sock.as_ptr()) };
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
                i32::from(family.af()),
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

    /// The IPv4 loopback address with `port` (host order).
    fn loopback_v4(port: u16) -> bindings::sockaddr_in {
        bindings::sockaddr_in {
            sin_family: bindings::AF_INET as u16,
            sin_port: port.to_be(),
            sin_addr: bindings::in_addr {
                s_addr: u32::to_be(0x7f00_0001),
            },
            ..Default::default()
        }
    }

    /// Binds to the IPv4 loopback address, any port.
    pub fn bind_loopback_v4(&self) -> Result {
        let mut addr = Self::loopback_v4(0);
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

    /// Starts connecting to the IPv4 loopback address at `port` without
    /// waiting: `Ok` when the handshake is under way or done.
    pub fn connect_loopback_v4(&self, port: u16) -> Result {
        let mut addr = Self::loopback_v4(port);
        // SAFETY: By the type invariant `sock` is valid; `addr` is a valid
        // `sockaddr_in` whose size is passed.
        let err = unsafe {
            bindings::kernel_connect(
                self.sock.as_ptr(),
                core::ptr::addr_of_mut!(addr).cast(),
                core::mem::size_of::<bindings::sockaddr_in>() as i32,
                bindings::O_NONBLOCK as i32,
            )
        };
        if err == -(bindings::EINPROGRESS as i32) {
            return Ok(());
        }
        to_result(err)
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
