// SPDX-License-Identifier: GPL-2.0

//! Hooks on kernel functions with ftrace, as livepatch uses it.
//!
//! A loadable module cannot add a case to `sk_setsockopt()`. Instead, an
//! ftrace callback at the entry of `do_sock_setsockopt()` and
//! `do_sock_getsockopt()` looks at the level and option name and, for our
//! option only, moves the instruction pointer to our own function with the
//! same signature (`FTRACE_OPS_FL_IPMODIFY`); every other call runs the
//! kernel's function untouched. A third, observing hook at the entry of
//! `inet_csk_listen_stop()` tells us when a listener stops listening.
//!
//! C header: [`include/linux/ftrace.h`](srctree/include/linux/ftrace.h).

use super::{bindings, sock::Sock};
use core::{
    marker::PhantomData,
    ptr,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{c_str, error::to_result, prelude::*, str::CStr, types::Opaque, ThisModule};

/// One registered `ftrace_ops` filtered on one function.
///
/// # Invariants
///
/// `ops` is registered with ftrace from `register` until `Drop`.
struct Ftrace {
    ops: Pin<KBox<Opaque<bindings::ftrace_ops>>>,
}

// SAFETY: Only created and dropped; ftrace serializes its own use of `ops`.
unsafe impl Send for Ftrace {}
// SAFETY: No method reads or writes through `&self`.
unsafe impl Sync for Ftrace {}

impl Ftrace {
    fn register(
        function: &CStr,
        func: bindings::ftrace_func_t,
        flags: u32,
        private: *mut core::ffi::c_void,
    ) -> Result<Self> {
        let ops = KBox::pin(
            Opaque::new(bindings::ftrace_ops {
                func,
                // DYNAMIC: `ops` is not in kernel text; ftrace waits for
                // tasks to leave it when unregistering (RCU tasks).
                // RECURSION: ftrace guards the callback against recursion.
                flags: (bindings::FTRACE_OPS_FL_DYNAMIC | bindings::FTRACE_OPS_FL_RECURSION | flags)
                    as usize,
                private,
                ..Default::default()
            }),
            GFP_KERNEL,
        )?;
        let mut name = KVec::new();
        // With its NUL: ftrace measures the pattern with strlen().
        name.extend_from_slice(function.as_bytes_with_nul(), GFP_KERNEL)?;
        let len = function.len() as i32;
        // SAFETY: `ops` is pinned and alive; `name` is a writable buffer of
        // `len` bytes and a NUL (ftrace_set_filter may modify it while parsing).
        to_result(unsafe { bindings::ftrace_set_filter(ops.get(), name.as_mut_ptr(), len, 1) })
            .inspect_err(|_| pr_err!("ftrace: no traceable function {:?}\n", function))?;
        // SAFETY: As above; on success ftrace keeps `ops` until unregistered in `Drop`.
        if let Err(e) = to_result(unsafe { bindings::register_ftrace_function(ops.get()) }) {
            pr_err!("ftrace: cannot hook {:?}: {:?}\n", function, e);
            // SAFETY: Not registered: only the filter hash is to be freed.
            unsafe { bindings::ftrace_free_filter(ops.get()) };
            return Err(e);
        }
        // INVARIANT: Registered.
        Ok(Self { ops })
    }
}

impl Drop for Ftrace {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `ops` is registered. Unregistering
        // waits until no task runs our callback (synchronize_rcu_tasks for
        // DYNAMIC ops); then its filter can be freed.
        unsafe {
            bindings::unregister_ftrace_function(self.ops.get());
            bindings::ftrace_free_filter(self.ops.get());
        }
    }
}

/// Called when a listener stops listening (close, shutdown, disconnect).
pub trait ListenStop: 'static {
    /// Runs at the entry of `inet_csk_listen_stop(sk)`, with the socket
    /// locked and preemption disabled: no sleeping.
    fn listen_stop(sk: &Sock);
}

/// The hook of a [`ListenStop`], unregistered on drop.
pub struct ListenStopHook<T: ListenStop> {
    _ftrace: Ftrace,
    _p: PhantomData<T>,
}

impl<T: ListenStop> ListenStopHook<T> {
    /// Registers the hook.
    pub fn register() -> Result<Self> {
        Ok(Self {
            _ftrace: Ftrace::register(
                c_str!("inet_csk_listen_stop"),
                Some(Self::callback),
                0,
                ptr::null_mut(),
            )?,
            _p: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Only ftrace calls it, at the entry of `inet_csk_listen_stop()`, with
    /// that function's registers in `fregs`.
    unsafe extern "C" fn callback(
        _ip: usize,
        _parent: usize,
        _op: *mut bindings::ftrace_ops,
        fregs: *mut bindings::ftrace_regs,
    ) {
        // SAFETY: ftrace passes the registers at the entry of
        // `inet_csk_listen_stop(struct sock *sk)`; argument 0 is `sk`.
        let sk = unsafe { bindings::sg_ftrace_regs_get_argument(fregs, 0) } as *mut bindings::sock;
        // SAFETY: The caller of `inet_csk_listen_stop` holds the socket
        // (locked, referenced) for the whole call.
        T::listen_stop(unsafe { Sock::from_raw(sk) });
    }
}

/// The user's option buffer of a `setsockopt` call.
pub struct OptIn {
    val: bindings::sockptr_t,
    len: i32,
}

impl OptIn {
    /// The length the caller passed (`EINVAL` if negative).
    pub fn len(&self) -> Result<usize> {
        usize::try_from(self.len).map_err(|_| EINVAL)
    }

    /// Copies the first `buf.len()` bytes (`EFAULT` if unreadable).
    pub fn read(&self, buf: &mut [u8]) -> Result {
        if buf.len() > self.len()? {
            return Err(EINVAL);
        }
        // SAFETY: `buf` is writable for its length; `val` is the caller's
        // pointer, checked by the copy.
        to_result(unsafe {
            bindings::sg_copy_from_sockptr(buf.as_mut_ptr().cast(), self.val, buf.len())
        })
    }
}

/// The user's buffer and length of a `getsockopt` call.
pub struct OptOut {
    val: bindings::sockptr_t,
    len: bindings::sockptr_t,
}

impl OptOut {
    /// The buffer's length as the caller gave it.
    pub fn len(&self) -> Result<i32> {
        let mut len = 0i32;
        // SAFETY: `len` is a writable `int`; the pointer is checked by the copy.
        to_result(unsafe {
            bindings::sg_copy_from_sockptr(ptr::addr_of_mut!(len).cast(), self.len, 4)
        })?;
        Ok(len)
    }

    /// Sets the caller's length.
    pub fn set_len(&self, len: i32) -> Result {
        // SAFETY: `len` is a readable `int`; the pointer is checked by the copy.
        to_result(unsafe { bindings::sg_copy_to_sockptr(self.len, ptr::addr_of!(len).cast(), 4) })
    }

    /// Copies `data` to the start of the caller's buffer.
    pub fn write(&self, data: &[u8]) -> Result {
        // SAFETY: `data` is readable for its length; the pointer is checked by the copy.
        to_result(unsafe {
            bindings::sg_copy_to_sockptr(self.val, data.as_ptr().cast(), data.len())
        })
    }
}

/// A `SOL_SOCKET` option that the module serves.
pub trait Sockopt: 'static {
    /// The option name (`optname`).
    const OPTNAME: i32;

    /// `setsockopt(fd, SOL_SOCKET, OPTNAME, ...)` on `sk` (process context).
    fn set(sk: &Sock, opt: &OptIn) -> Result;

    /// `getsockopt(fd, SOL_SOCKET, OPTNAME, ...)` on `sk` (process context).
    fn get(sk: &Sock, opt: &OptOut) -> Result;
}

/// The module whose code the redirected calls run, for its reference count.
static MODULE: AtomicPtr<bindings::module> = AtomicPtr::new(ptr::null_mut());

/// The hooks that route a [`Sockopt`]'s calls to it; unregistered on drop.
///
/// A call is redirected only after `try_module_get` succeeded in the ftrace
/// callback; the replacement drops that reference when it returns. So the
/// module cannot be unloaded while a redirected call runs, and once it is
/// going away, calls are no longer redirected (the kernel answers
/// `ENOPROTOOPT` as for any unknown option).
pub struct SockoptHooks<T: Sockopt> {
    _set: Ftrace,
    _get: Ftrace,
    _p: PhantomData<T>,
}

impl<T: Sockopt> SockoptHooks<T> {
    /// Registers the hooks of `module`.
    pub fn register(module: &'static ThisModule) -> Result<Self> {
        MODULE.store(module.as_ptr().cast(), Ordering::Release);
        let flags = bindings::FTRACE_OPS_FL_IPMODIFY;
        let set = Self::set as *const () as *mut core::ffi::c_void;
        let get = Self::get as *const () as *mut core::ffi::c_void;
        Ok(Self {
            _set: Ftrace::register(
                c_str!("do_sock_setsockopt"),
                Some(Self::redirect),
                flags,
                set,
            )?,
            _get: Ftrace::register(
                c_str!("do_sock_getsockopt"),
                Some(Self::redirect),
                flags,
                get,
            )?,
            _p: PhantomData,
        })
    }

    /// The ftrace callback of both hooks: `op->private` is the replacement.
    ///
    /// # Safety
    ///
    /// Only ftrace calls it, with our registered `op` and the registers at
    /// the entry of the hooked function in `fregs`.
    unsafe extern "C" fn redirect(
        _ip: usize,
        _parent: usize,
        op: *mut bindings::ftrace_ops,
        fregs: *mut bindings::ftrace_regs,
    ) {
        // SAFETY: ftrace passes the registers at the entry of
        // `do_sock_{set,get}sockopt(sock, compat, level, optname, ...)`.
        let (level, optname) = unsafe {
            (
                bindings::sg_ftrace_regs_get_argument(fregs, 2) as i32,
                bindings::sg_ftrace_regs_get_argument(fregs, 3) as i32,
            )
        };
        if level != bindings::SOL_SOCKET as i32 || optname != T::OPTNAME {
            return;
        }
        // SAFETY: `MODULE` was set before the hooks were registered.
        if !unsafe { bindings::sg_try_module_get(MODULE.load(Ordering::Acquire)) } {
            return;
        }
        // SAFETY: `op` is our registered ops, whose `private` is the
        // replacement with the hooked function's exact signature.
        unsafe { bindings::sg_ftrace_regs_set_ip(fregs, (*op).private as usize) };
    }

    fn finish(sock: *mut bindings::socket, f: impl FnOnce(&Sock) -> Result) -> i32 {
        // SAFETY: The syscall holds the socket's file for the whole call;
        // its `sk` is set for a socket of an inet family.
        let sk = unsafe { (*sock).sk };
        let ret = if sk.is_null() {
            super::errno::enoprotoopt().to_errno()
        } else {
            // SAFETY: As above, alive for the call.
            match f(unsafe { Sock::from_raw(sk) }) {
                Ok(()) => 0,
                Err(e) => e.to_errno(),
            }
        };
        // SAFETY: Drops the reference `redirect` took for this call.
        unsafe { bindings::sg_module_put(MODULE.load(Ordering::Acquire)) };
        ret
    }

    /// Replaces `int do_sock_setsockopt(struct socket *sock, bool compat,
    /// int level, int optname, sockptr_t optval, int optlen)`.
    ///
    /// # Safety
    ///
    /// Only reached through `redirect`, which took a module reference for it:
    /// the arguments are those of the syscall's call of `do_sock_setsockopt`.
    unsafe extern "C" fn set(
        sock: *mut bindings::socket,
        _compat: bool,
        _level: i32,
        _optname: i32,
        val: bindings::sockptr_t,
        len: i32,
    ) -> i32 {
        Self::finish(sock, |sk| T::set(sk, &OptIn { val, len }))
    }

    /// Replaces `int do_sock_getsockopt(struct socket *sock, bool compat,
    /// int level, int optname, sockptr_t optval, sockptr_t optlen)`.
    ///
    /// # Safety
    ///
    /// Only reached through `redirect`, which took a module reference for it:
    /// the arguments are those of the syscall's call of `do_sock_getsockopt`.
    unsafe extern "C" fn get(
        sock: *mut bindings::socket,
        _compat: bool,
        _level: i32,
        _optname: i32,
        val: bindings::sockptr_t,
        len: bindings::sockptr_t,
    ) -> i32 {
        Self::finish(sock, |sk| T::get(sk, &OptOut { val, len }))
    }
}
