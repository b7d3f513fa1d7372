// SPDX-License-Identifier: GPL-2.0

//! Kernel TCP sockets of a network namespace whose callbacks run a work item.
//!
//! C headers: [`include/linux/net.h`](srctree/include/linux/net.h),
//! [`include/net/sock.h`](srctree/include/net/sock.h).
//!
//! Modeled on `net/rds/tcp.c`, `tcp_listen.c` and `tcp_recv.c`: a socket made
//! with `sock_create_kern` (which takes no reference on the namespace), its
//! `sk_data_ready`, `sk_state_change` and `sk_write_space` replaced under
//! `sk_callback_lock` by ones that queue the owner's work item, everything
//! else done by that work in process context with non-blocking calls; the
//! callbacks are restored before the socket is released with linger 0
//! (a reset, no `TIME_WAIT`).

use super::{
    bindings,
    net::Net,
    sock::Sock,
    work::{Run, Worked},
};
use core::{ffi::c_void, ptr::NonNull};
use kernel::{error::to_result, prelude::*, sync::Arc};

/// An IPv4 or IPv6 address with a port (host order).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SockAddr {
    /// IPv6 if set; else IPv4 in the first 4 bytes of `addr`.
    pub v6: bool,
    /// The address, network order.
    pub addr: [u8; 16],
    /// The port, host order.
    pub port: u16,
}

/// Room for either `sockaddr_in` or `sockaddr_in6`.
#[repr(C)]
union RawAddr {
    v4: bindings::sockaddr_in,
    v6: bindings::sockaddr_in6,
}

impl SockAddr {
    fn af(&self) -> i32 {
        if self.v6 {
            bindings::AF_INET6 as i32
        } else {
            bindings::AF_INET as i32
        }
    }

    fn to_raw(self) -> (RawAddr, i32) {
        if self.v6 {
            let sin6 = bindings::sockaddr_in6 {
                sin6_family: bindings::AF_INET6 as u16,
                sin6_port: self.port.to_be(),
                sin6_addr: bindings::in6_addr {
                    in6_u: bindings::in6_addr__bindgen_ty_1 {
                        u6_addr8: self.addr,
                    },
                },
                ..Default::default()
            };
            let len = core::mem::size_of::<bindings::sockaddr_in6>() as i32;
            (RawAddr { v6: sin6 }, len)
        } else {
            let mut a = [0u8; 4];
            a.copy_from_slice(&self.addr[..4]);
            let sin = bindings::sockaddr_in {
                sin_family: bindings::AF_INET as u16,
                sin_port: self.port.to_be(),
                sin_addr: bindings::in_addr {
                    s_addr: u32::from_ne_bytes(a),
                },
                ..Default::default()
            };
            let len = core::mem::size_of::<bindings::sockaddr_in>() as i32;
            (RawAddr { v4: sin }, len)
        }
    }

    fn from_raw(raw: &RawAddr) -> Option<Self> {
        // SAFETY: Both variants start with the family, a `u16`; every bit
        // pattern is valid for plain integers.
        let family = unsafe { raw.v4.sin_family };
        let mut addr = [0u8; 16];
        if u32::from(family) == bindings::AF_INET {
            // SAFETY: The family says the kernel wrote a `sockaddr_in`.
            let sin = unsafe { raw.v4 };
            addr[..4].copy_from_slice(&sin.sin_addr.s_addr.to_ne_bytes());
            Some(Self {
                v6: false,
                addr,
                port: u16::from_be(sin.sin_port),
            })
        } else if u32::from(family) == bindings::AF_INET6 {
            // SAFETY: The family says the kernel wrote a `sockaddr_in6`;
            // the address union is plain bytes.
            let sin6 = unsafe { raw.v6 };
            // SAFETY: Every variant of `in6_u` is plain integers over the
            // same 16 bytes.
            addr = unsafe { sin6.sin6_addr.in6_u.u6_addr8 };
            Some(Self {
                v6: true,
                addr,
                port: u16::from_be(sin6.sin6_port),
            })
        } else {
            None
        }
    }
}

/// A network namespace that per-namespace state keeps for its kernel sockets.
///
/// It holds no reference: kernel sockets must not pin their namespace
/// (`sk_alloc` gives them none either), so their owner must be gone when the
/// namespace goes.
///
/// # Invariants
///
/// `net` is alive while this value is: it is made only by per-namespace
/// state for its own namespace, and dropped with that state, which the
/// namespace's pernet `exit` (or the module's unregistration, before it)
/// drops.
pub struct Namespace {
    net: NonNull<bindings::net>,
}

// SAFETY: A `struct net` is used from any CPU; we only pass it to functions
// that may be called from any process context.
unsafe impl Send for Namespace {}
// SAFETY: As above; no interior mutability.
unsafe impl Sync for Namespace {}

impl Namespace {
    /// The namespace `net`, for state that lives inside it (see the type's
    /// invariant: only per-namespace state may hold it).
    pub fn new(net: &Net) -> Self {
        // INVARIANT: Per-namespace state calls it for its own namespace.
        Self {
            net: NonNull::from(net).cast(),
        }
    }

    /// The namespace.
    pub fn get(&self) -> &Net {
        // SAFETY: By the type invariant the namespace is alive while `self` is.
        unsafe { Net::from_raw(self.net.as_ptr()) }
    }
}

/// A socket callback (`sk_data_ready`, `sk_state_change`, `sk_write_space`).
type Callback = unsafe extern "C" fn(*mut bindings::sock);

/// The callbacks a socket had before we replaced them.
#[derive(Clone, Copy)]
struct Orig {
    data_ready: Option<Callback>,
    state_change: Option<Callback>,
    write_space: Option<Callback>,
}

/// What `sk_user_data` points to while our callbacks are in place.
struct Hooks<D: Run> {
    orig: Orig,
    work: Arc<Worked<D>>,
}

/// The flag of `sk_user_data` that keeps an accepted child from inheriting
/// the pointer (`SK_USER_DATA_NOCOPY`; `sk_clone_lock` clears it).
const NOCOPY: usize = 1;

/// Our callbacks, generic over the work they queue.
struct Callbacks<D: Run>(core::marker::PhantomData<D>);

/// Which callback fired.
#[derive(Clone, Copy)]
enum Which {
    DataReady,
    StateChange,
    WriteSpace,
}

impl<D: Run> Callbacks<D> {
    /// Queues the work of the socket's owner, then calls the original callback.
    ///
    /// # Safety
    ///
    /// `sk` is a live socket on which the kernel calls a callback.
    unsafe fn fire(sk: *mut bindings::sock, which: Which) {
        // SAFETY: `sk` is live (the caller); the lock orders us with `hook`
        // and `unhook`, which write under it.
        unsafe { bindings::sg_sk_callback_read_lock(sk) };
        // SAFETY: We hold the callback lock, under which `sk_user_data` is written.
        let user = unsafe { (*sk).sk_user_data as usize };
        let next = if user & NOCOPY != 0 {
            // SAFETY: With the flag set, `sk_user_data` is a `Hooks<D>` that
            // `hook` installed (only our callbacks use the flag on our
            // sockets, and they are generic over `D` with `hook`), freed
            // only after `unhook` cleared it under the write lock, which we
            // exclude.
            let hooks = unsafe { &*((user & !NOCOPY) as *const Hooks<D>) };
            hooks.work.kick();
            match which {
                Which::DataReady => hooks.orig.data_ready,
                Which::StateChange => hooks.orig.state_change,
                Which::WriteSpace => hooks.orig.write_space,
            }
        } else {
            // No hooks: a child of our listener (cloned with our callbacks
            // but not our pointer) not accepted or not hooked yet, or one
            // of our sockets whose `unhook` ran since the kernel loaded
            // this callback. Neither has a file, a waiter or an async
            // notification, so the kernel's callbacks would wake nobody:
            // call none (calling the current one could be ourselves).
            // The work looks at an accepted child right after hooking it.
            None
        };
        // SAFETY: Paired with the read lock above.
        unsafe { bindings::sg_sk_callback_read_unlock(sk) };
        if let Some(f) = next {
            // SAFETY: The kernel's own callback of this live socket.
            unsafe { f(sk) };
        }
    }

    /// # Safety
    ///
    /// Called by the kernel as `sk_data_ready` of a live socket.
    unsafe extern "C" fn data_ready(sk: *mut bindings::sock) {
        // SAFETY: The kernel passes a live socket.
        unsafe { Self::fire(sk, Which::DataReady) }
    }

    /// # Safety
    ///
    /// Called by the kernel as `sk_state_change` of a live socket.
    unsafe extern "C" fn state_change(sk: *mut bindings::sock) {
        // SAFETY: The kernel passes a live socket.
        unsafe { Self::fire(sk, Which::StateChange) }
    }

    /// # Safety
    ///
    /// Called by the kernel as `sk_write_space` of a live socket.
    unsafe extern "C" fn write_space(sk: *mut bindings::sock) {
        // SAFETY: The kernel passes a live socket.
        unsafe { Self::fire(sk, Which::WriteSpace) }
    }
}

/// What a non-blocking receive found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Recv {
    /// This many bytes were read (at least one).
    Data(usize),
    /// Nothing to read now.
    WouldBlock,
    /// The peer closed its side.
    Eof,
}

/// A kernel TCP socket whose callbacks queue the work of a [`Worked<D>`].
///
/// # Invariants
///
/// `sock` was created by `sock_create_kern` or `kernel_accept` and is owned
/// by this value, which releases it in `Drop`. If `hooks` is `Some`, its box
/// is what `sk_user_data` points to (with [`NOCOPY`]) and the socket's three
/// callbacks are those of [`Callbacks<D>`]; `Drop` restores `hooks.orig`
/// under the callback lock before freeing the box.
pub struct TcpSocket<D: Run> {
    sock: NonNull<bindings::socket>,
    hooks: Option<KBox<Hooks<D>>>,
}

// SAFETY: A kernel socket is used from any process context; the work item
// is `Send + Sync`.
unsafe impl<D: Run> Send for TcpSocket<D> {}
// SAFETY: Methods taking `&self` are socket calls that lock the socket
// themselves (`lock_sock`).
unsafe impl<D: Run> Sync for TcpSocket<D> {}

impl<D: Run> TcpSocket<D> {
    /// Creates a TCP socket in `ns` for addresses like `family_of`, with
    /// `SO_REUSEADDR`, whose callbacks queue `work`.
    pub fn new(ns: &Namespace, family_of: &SockAddr, work: &Arc<Worked<D>>) -> Result<Self> {
        let mut sock: *mut bindings::socket = core::ptr::null_mut();
        // SAFETY: The namespace is alive (`Namespace`'s invariant); `sock`
        // is a valid out-pointer. A kernel socket takes no reference on it.
        to_result(unsafe {
            bindings::sock_create_kern(
                ns.get().as_ptr(),
                family_of.af(),
                bindings::sock_type_SOCK_STREAM as i32,
                bindings::IPPROTO_TCP as i32,
                &mut sock,
            )
        })?;
        // INVARIANT: Created, owned; no hooks yet.
        let mut this = Self {
            sock: NonNull::new(sock).ok_or(ENOMEM)?,
            hooks: None,
        };
        // SAFETY: `sk` is the live socket's; the call locks it.
        unsafe { bindings::sock_set_reuseaddr(this.raw_sk()) };
        let sk = this.raw_sk();
        // SAFETY: A new socket has the kernel's callbacks; we read them
        // before any other code can see the socket.
        let orig = unsafe {
            Orig {
                data_ready: (*sk).sk_data_ready,
                state_change: (*sk).sk_state_change,
                write_space: (*sk).sk_write_space,
            }
        };
        this.hook(orig, work)?;
        Ok(this)
    }

    fn raw_sk(&self) -> *mut bindings::sock {
        // SAFETY: By the type invariant `sock` is valid; its `sk` lives as
        // long as the socket.
        unsafe { (*self.sock.as_ptr()).sk }
    }

    /// The socket's `struct sock`.
    pub fn sk(&self) -> &Sock {
        // SAFETY: `sk` lives as long as the socket, which `self` keeps.
        unsafe { Sock::from_raw(self.raw_sk()) }
    }

    /// Replaces the callbacks by ours, remembering `orig` to restore.
    fn hook(&mut self, orig: Orig, work: &Arc<Worked<D>>) -> Result {
        let hooks = KBox::new(
            Hooks {
                orig,
                work: work.clone(),
            },
            GFP_KERNEL,
        )?;
        let sk = self.raw_sk();
        let user = (&*hooks as *const Hooks<D> as usize) | NOCOPY;
        // SAFETY: `sk` is live; the write lock excludes the callbacks
        // (`Callbacks::fire` reads under the read lock). `hooks` is boxed:
        // its address stays put until `Drop` frees it after `unhook`.
        unsafe {
            bindings::sg_sk_callback_write_lock(sk);
            (*sk).sk_user_data = user as *mut c_void;
            (*sk).sk_data_ready = Some(Callbacks::<D>::data_ready);
            (*sk).sk_state_change = Some(Callbacks::<D>::state_change);
            (*sk).sk_write_space = Some(Callbacks::<D>::write_space);
            bindings::sg_sk_callback_write_unlock(sk);
        }
        // INVARIANT: `sk_user_data` points to this box, with our callbacks.
        self.hooks = Some(hooks);
        Ok(())
    }

    /// Restores the original callbacks; afterwards no callback of ours
    /// uses the hooks (they read them under the lock we take here).
    fn unhook(&mut self) {
        let Some(hooks) = self.hooks.as_ref() else {
            return;
        };
        let sk = self.raw_sk();
        // SAFETY: `sk` is live; as in `hook`.
        unsafe {
            bindings::sg_sk_callback_write_lock(sk);
            (*sk).sk_data_ready = hooks.orig.data_ready;
            (*sk).sk_state_change = hooks.orig.state_change;
            (*sk).sk_write_space = hooks.orig.write_space;
            (*sk).sk_user_data = core::ptr::null_mut();
            bindings::sg_sk_callback_write_unlock(sk);
        }
        // INVARIANT: Restored, so the box may go.
        self.hooks = None;
    }

    /// Turns Nagle's algorithm off (`TCP_NODELAY`): small writes leave at
    /// once instead of waiting for the acknowledgement of what is in
    /// flight.
    pub fn set_nodelay(&self) {
        // SAFETY: `sk` is the live socket's (type invariant), a TCP socket
        // (`new` creates one, `accept` returns one); the call takes its lock.
        unsafe { bindings::tcp_sock_set_nodelay(self.raw_sk()) };
    }

    /// Binds to `addr`.
    pub fn bind(&self, addr: &SockAddr) -> Result {
        let (mut raw, len) = addr.to_raw();
        // SAFETY: The socket is valid; `raw` holds a `sockaddr` of `len` bytes.
        to_result(unsafe {
            bindings::kernel_bind(self.sock.as_ptr(), core::ptr::addr_of_mut!(raw).cast(), len)
        })
    }

    /// Starts listening with `backlog`.
    pub fn listen(&self, backlog: i32) -> Result {
        // SAFETY: The socket is valid.
        to_result(unsafe { bindings::kernel_listen(self.sock.as_ptr(), backlog) })
    }

    /// Starts connecting to `addr` without waiting: `Ok` when the
    /// handshake is under way or done (`EINPROGRESS` is not an error); its
    /// end shows in [`TcpSocket::state`] after a state-change callback.
    pub fn connect(&self, addr: &SockAddr) -> Result {
        let (mut raw, len) = addr.to_raw();
        // SAFETY: The socket is valid; `raw` holds a `sockaddr` of `len` bytes.
        let err = unsafe {
            bindings::kernel_connect(
                self.sock.as_ptr(),
                core::ptr::addr_of_mut!(raw).cast(),
                len,
                bindings::O_NONBLOCK as i32,
            )
        };
        if err == -(bindings::EINPROGRESS as i32) {
            return Ok(());
        }
        to_result(err)
    }

    /// Takes a connection from the accept queue without waiting (`None`
    /// when there is none), with its callbacks queueing the same work.
    pub fn accept(&self) -> Result<Option<Self>> {
        let mut new: *mut bindings::socket = core::ptr::null_mut();
        // SAFETY: The socket is valid; `new` is a valid out-pointer.
        let err = unsafe {
            bindings::kernel_accept(self.sock.as_ptr(), &mut new, bindings::O_NONBLOCK as i32)
        };
        if err == -(bindings::EAGAIN as i32) {
            return Ok(None);
        }
        to_result(err)?;
        // INVARIANT: Accepted, owned; hooked below.
        let mut child = Self {
            sock: NonNull::new(new).ok_or(ENOMEM)?,
            hooks: None,
        };
        let Some(hooks) = self.hooks.as_ref() else {
            return Ok(Some(child));
        };
        // The child was cloned from our listener, callbacks included; the
        // kernel's own are the listener's originals (same protocol).
        let (orig, work) = (hooks.orig, hooks.work.clone());
        child.hook(orig, &work)?;
        Ok(Some(child))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Result<SockAddr> {
        let mut raw = RawAddr {
            v6: Default::default(),
        };
        // SAFETY: The socket is valid; `raw` has room for the largest
        // address of an IPv4 or IPv6 socket.
        let len = unsafe {
            bindings::kernel_getpeername(self.sock.as_ptr(), core::ptr::addr_of_mut!(raw).cast())
        };
        to_result(len.min(0))?;
        SockAddr::from_raw(&raw).ok_or_else(super::errno::eafnosupport)
    }

    /// The TCP state (`TCP_ESTABLISHED`, `TCP_CLOSE`, ...).
    pub fn state(&self) -> u8 {
        self.sk().state()
    }

    /// Whether the connection is established.
    pub fn is_established(&self) -> bool {
        self.state() == bindings::TCP_ESTABLISHED as u8
    }

    /// Sends what fits now (`MSG_DONTWAIT`): the number of bytes taken,
    /// 0 when the send buffer is full.
    pub fn send(&self, buf: &[u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut msg = bindings::msghdr {
            msg_flags: bindings::MSG_DONTWAIT | bindings::MSG_NOSIGNAL,
            ..Default::default()
        };
        let mut vec = bindings::kvec {
            iov_base: buf.as_ptr() as *mut c_void,
            iov_len: buf.len(),
        };
        // SAFETY: The socket is valid; `vec` describes `buf`, which the
        // call only reads.
        let n = unsafe {
            bindings::kernel_sendmsg(self.sock.as_ptr(), &mut msg, &mut vec, 1, buf.len())
        };
        if n == -(bindings::EAGAIN as i32) {
            return Ok(0);
        }
        to_result(n.min(0))?;
        Ok(n as usize)
    }

    /// Reads what is there now (`MSG_DONTWAIT`) into `buf`.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Recv> {
        if buf.is_empty() {
            return Ok(Recv::WouldBlock);
        }
        let mut msg = bindings::msghdr::default();
        let mut vec = bindings::kvec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: The socket is valid; `vec` describes `buf`, writable for
        // its length.
        let n = unsafe {
            bindings::kernel_recvmsg(
                self.sock.as_ptr(),
                &mut msg,
                &mut vec,
                1,
                buf.len(),
                bindings::MSG_DONTWAIT as i32,
            )
        };
        if n == -(bindings::EAGAIN as i32) {
            return Ok(Recv::WouldBlock);
        }
        to_result(n.min(0))?;
        Ok(if n == 0 {
            Recv::Eof
        } else {
            Recv::Data(n as usize)
        })
    }
}

impl<D: Run> Drop for TcpSocket<D> {
    fn drop(&mut self) {
        self.unhook();
        let sk = self.raw_sk();
        // SAFETY: The socket is valid and ours (type invariant). Linger 0
        // (as `rds_tcp_conn_path_shutdown` arranges): the release resets a
        // connection instead of leaving it in `FIN_WAIT`/`TIME_WAIT`, so
        // nothing of it outlives us; then the socket is released and not
        // used again.
        unsafe {
            bindings::sock_no_linger(sk);
            bindings::sock_release(self.sock.as_ptr());
        }
    }
}
