// SPDX-License-Identifier: GPL-2.0

//! Hooks on kernel functions with ftrace, as livepatch uses it.
//!
//! A loadable module cannot add a case to `sk_setsockopt()`. Instead, an
//! ftrace callback at the entry of `sk_setsockopt()` and `sk_getsockopt()`
//! (below the LSM and cgroup BPF checks of every socket option) looks at the
//! level and option name and, for our option only, moves the instruction
//! pointer to our own function with the same signature
//! (`FTRACE_OPS_FL_IPMODIFY`, as livepatch does); every other call runs the
//! kernel's function untouched. A third, observing hook at the entry of
//! `inet_csk_listen_stop()` tells us when a listener stops listening.
//!
//! C header: [`include/linux/ftrace.h`](srctree/include/linux/ftrace.h).

use super::{bindings, sock::Sock};
use core::{marker::PhantomData, mem::ManuallyDrop, ptr};
use kernel::{c_str, error::to_result, prelude::*, str::CStr, types::Opaque};

/// One registered `ftrace_ops` filtered on one function.
///
/// # Invariants
///
/// `ops` is registered with ftrace from `register` until `Drop`.
struct Ftrace {
    ops: ManuallyDrop<Pin<KBox<Opaque<bindings::ftrace_ops>>>>,
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
        Ok(Self {
            ops: ManuallyDrop::new(ops),
        })
    }
}

impl Drop for Ftrace {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `ops` is registered.
        let ret = unsafe { bindings::unregister_ftrace_function(self.ops.get()) };
        if ret != 0 {
            // Only when ftrace has shut itself down after an internal error
            // (`ftrace_disabled`, with a warning of its own): its trampoline
            // may still use `ops`, so leave it allocated.
            pr_err!("ftrace: cannot unhook: {}; its ops stay allocated\n", ret);
            return;
        }
        // SAFETY: Unregistered: for DYNAMIC ops, `ftrace_shutdown()` waited
        // (`synchronize_rcu_tasks_rude()` and `synchronize_rcu_tasks()`)
        // until no task runs our callback or its trampoline, so the filter
        // and `ops` can be freed; `ops` is not used again.
        unsafe {
            bindings::ftrace_free_filter(self.ops.get());
            ManuallyDrop::drop(&mut self.ops);
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
        // `inet_csk_listen_stop(struct sock *sk)` (prototype checked below
        // this impl); argument 0 is `sk`.
        let sk = unsafe { bindings::sg_ftrace_regs_get_argument(fregs, 0) } as *mut bindings::sock;
        // SAFETY: The caller of `inet_csk_listen_stop` holds the socket
        // (locked, referenced) for the whole call.
        T::listen_stop(unsafe { Sock::from_raw(sk) });
    }
}

// The prototype `ListenStopHook::callback` reads its argument from: a kernel
// that changes it fails to build.
const _: unsafe extern "C" fn(*mut bindings::sock) = bindings::inet_csk_listen_stop;

/// The option buffer of a `setsockopt` call: the caller's, or a kernel copy
/// that a cgroup BPF setsockopt program made (`KERNEL_SOCKPTR`).
pub struct OptIn {
    val: bindings::sockptr_t,
    len: u32,
}

impl OptIn {
    /// The length of the buffer.
    pub fn len(&self) -> Result<usize> {
        usize::try_from(self.len).map_err(|_| EINVAL)
    }

    /// Copies the first `buf.len()` bytes (`EFAULT` if unreadable).
    pub fn read(&self, buf: &mut [u8]) -> Result {
        if buf.len() > self.len()? {
            return Err(EINVAL);
        }
        // SAFETY: `buf` is writable for its length. `val` is the caller's
        // buffer of `len` bytes: a user pointer, checked by the copy, or a
        // kernel buffer of that length (`copy_from_sockptr` tells them apart).
        to_result(unsafe {
            bindings::sg_copy_from_sockptr(buf.as_mut_ptr().cast(), self.val, buf.len())
        })
    }
}

/// The buffer and length of a `getsockopt` call (user pointers from the
/// syscall; kernel ones from io_uring for the length).
pub struct OptOut {
    val: bindings::sockptr_t,
    len: bindings::sockptr_t,
}

impl OptOut {
    /// The buffer's length as the caller gave it.
    pub fn len(&self) -> Result<i32> {
        let mut len = 0i32;
        // SAFETY: `len` is a writable `int`; the pointer is the caller's
        // `int`, a user one checked by the copy or a kernel one.
        to_result(unsafe {
            bindings::sg_copy_from_sockptr(ptr::addr_of_mut!(len).cast(), self.len, 4)
        })?;
        Ok(len)
    }

    /// Sets the caller's length.
    pub fn set_len(&self, len: i32) -> Result {
        // SAFETY: `len` is a readable `int`; the pointer as in `len()`.
        to_result(unsafe { bindings::sg_copy_to_sockptr(self.len, ptr::addr_of!(len).cast(), 4) })
    }

    /// Reads the first `buf.len()` bytes the caller put in its buffer
    /// (`EINVAL` if longer than the caller's length), for options whose
    /// buffer also carries input.
    pub fn read(&self, buf: &mut [u8]) -> Result {
        if buf.len() > usize::try_from(self.len()?).map_err(|_| EINVAL)? {
            return Err(EINVAL);
        }
        // SAFETY: `buf` is writable for its length; `val` is the caller's
        // buffer, at least as long (checked above): a user pointer, checked
        // by the copy, or a kernel buffer of that length.
        to_result(unsafe {
            bindings::sg_copy_from_sockptr(buf.as_mut_ptr().cast(), self.val, buf.len())
        })
    }

    /// Copies `data` to the start of the caller's buffer (`EINVAL` if
    /// longer than the caller's length).
    pub fn write(&self, data: &[u8]) -> Result {
        if data.len() > usize::try_from(self.len()?).map_err(|_| EINVAL)? {
            return Err(EINVAL);
        }
        // SAFETY: `data` is readable for its length; `val` is the caller's
        // buffer, at least as long (checked above): a user pointer, checked
        // by the copy, or a kernel buffer of that length.
        to_result(unsafe {
            bindings::sg_copy_to_sockptr(self.val, data.as_ptr().cast(), data.len())
        })
    }
}

/// A `SOL_SOCKET` option that the module serves.
pub trait Sockopt: 'static {
    /// The option name (`optname`).
    const OPTNAME: i32;

    /// `setsockopt(fd, SOL_SOCKET, OPTNAME, ...)` on `sk`, after the LSM
    /// and cgroup BPF checks (process context, may sleep).
    fn set(sk: &Sock, opt: &OptIn) -> Result;

    /// `getsockopt(fd, SOL_SOCKET, OPTNAME, ...)` on `sk`, after the LSM
    /// check; cgroup BPF getsockopt programs see the result (process
    /// context, may sleep).
    fn get(sk: &Sock, opt: &OptOut) -> Result;
}

/// `$replacement` as a function pointer of `$hooked`'s type. It compiles
/// only when both have the same signature (a Rust fn item coerces to the
/// other's fn-pointer type only then), so a kernel that changes the hooked
/// function's prototype fails to build instead of having its arguments
/// misread.
macro_rules! same_signature {
    ($hooked:path, $replacement:expr) => {
        if false {
            $hooked
        } else {
            $replacement
        }
    };
}

/// The module whose code the redirected calls run: this one.
fn this_module() -> *mut bindings::module {
    crate::THIS_MODULE.as_ptr().cast()
}

/// The hooks that route a [`Sockopt`]'s calls to it; unregistered on drop.
///
/// They sit below the checks every socket option passes: `sk_setsockopt()`
/// is what `do_sock_setsockopt()` reaches for `SOL_SOCKET` (through
/// `sock_setsockopt()`, or a protocol's own handler such as UDP's) once
/// `security_socket_setsockopt()` (LSM) and the cgroup BPF setsockopt
/// programs have let the call through (a program may have replaced the
/// buffer with a kernel copy); `sk_getsockopt()` is what
/// `do_sock_getsockopt()` calls for `SOL_SOCKET` after
/// `security_socket_getsockopt()`, before the cgroup BPF getsockopt programs
/// see the result. Both are called across translation units (not inlined:
/// each has its ftrace site).
///
/// A call is redirected only after a reference on this module was taken in
/// the ftrace callback (only once the module is live); the replacement drops
/// it when it returns. So the module cannot be unloaded while a redirected
/// call runs, and once it is going away, calls are no longer redirected (the
/// kernel answers `ENOPROTOOPT` as for any unknown option).
pub struct SockoptHooks<T: Sockopt> {
    _set: Ftrace,
    _get: Ftrace,
    _p: PhantomData<T>,
}

impl<T: Sockopt> SockoptHooks<T> {
    /// Registers the hooks.
    ///
    /// A second registration (of any option) fails with `EBUSY`: ftrace lets
    /// only one `IPMODIFY` ops hook a function.
    pub fn register() -> Result<Self> {
        let flags = bindings::FTRACE_OPS_FL_IPMODIFY;
        let set = same_signature!(bindings::sk_setsockopt, Self::set);
        let get = same_signature!(bindings::sk_getsockopt, Self::get);
        Ok(Self {
            _set: Ftrace::register(
                c_str!("sk_setsockopt"),
                Some(Self::redirect),
                flags,
                set as *mut core::ffi::c_void,
            )?,
            _get: Ftrace::register(
                c_str!("sk_getsockopt"),
                Some(Self::redirect),
                flags,
                get as *mut core::ffi::c_void,
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
        // `sk_setsockopt(sk, level, optname, optval, optlen)` or
        // `sk_getsockopt(sk, level, optname, optval, optlen)`: argument 2
        // is an integer in both (`same_signature!` in `register` ties the
        // position to the prototypes).
        let optname = unsafe { bindings::sg_ftrace_regs_get_argument(fregs, 2) } as i32;
        // Not `level`: both functions are the `SOL_SOCKET` handlers (every
        // caller passes `SOL_SOCKET`) and neither reads it, so the compiler
        // need not pass it. In the KASAN build `sock_setsockopt()` jumps to
        // `sk_setsockopt()` with `%esi` clobbered by an `__asan_load8` call
        // (level 0 seen in the VM), so a check of `level` missed every call.
        if optname != T::OPTNAME {
            return;
        }
        // Only a task's call: the replacement may sleep. BPF programs
        // (`bpf_{set,get}sockopt()`, the socket locked, maybe in softirq)
        // reach these functions with a list of options that is not ours;
        // were they to, the kernel would answer `ENOPROTOOPT`.
        // SAFETY: Reads the current context only.
        if !unsafe { bindings::sg_sockopt_from_task() } {
            return;
        }
        // SAFETY: `this_module()` is this module, alive while its code runs.
        if !unsafe { bindings::sg_try_module_get_live(this_module()) } {
            return;
        }
        // SAFETY: `op` is one of our registered ops, whose `private` is the
        // replacement of the function it hooks, with that function's
        // signature (checked in `register`) and the C ABI. When this
        // callback returns, the trampoline restores the argument registers
        // and returns to the new IP instead of the hooked function's body,
        // with the hooked function's return address on the stack: the
        // replacement runs in its place with its arguments and returns its
        // result to its caller. (`IPMODIFY` ops: ftrace lets no other ops
        // modify this function's IP; x86-64's trampolines honour the change.)
        // The replacement's code stays loaded until it drops the reference
        // just taken (see `finish`).
        unsafe { bindings::sg_ftrace_regs_set_ip(fregs, (*op).private as usize) };
    }

    /// Runs `f` on the socket and returns its result as the replaced
    /// function does; drops the module reference `redirect` took.
    fn finish(sk: *mut bindings::sock, f: impl FnOnce(&Sock) -> Result) -> i32 {
        let ret = if sk.is_null() {
            super::errno::enoprotoopt().to_errno()
        } else {
            // SAFETY: Every caller of the replaced functions holds the
            // socket for the call (a syscall or io_uring holds its file; a
            // kernel user owns its socket).
            match f(unsafe { Sock::from_raw(sk) }) {
                Ok(()) => 0,
                Err(e) => e.to_errno(),
            }
        };
        // SAFETY: Drops the reference `redirect` took for this call. It may
        // be the last one, and `rmmod` may then run our exit and free this
        // code while this function still returns through it: no, our exit
        // unregisters the hooks first, and unregistering (DYNAMIC ops) waits
        // in `synchronize_rcu_tasks()` until every task has scheduled
        // voluntarily or returned to user space (`synchronize_rcu()` on a
        // kernel without preemption), which a task still here has not.
        unsafe { bindings::sg_module_put(this_module()) };
        ret
    }

    /// Replaces `int sk_setsockopt(struct sock *sk, int level, int optname,
    /// sockptr_t optval, unsigned int optlen)`.
    ///
    /// # Safety
    ///
    /// Only reached through `redirect`, which took a module reference for it:
    /// the arguments are those of a call of `sk_setsockopt` by a task.
    unsafe extern "C" fn set(
        sk: *mut bindings::sock,
        _level: i32,
        _optname: i32,
        val: bindings::sockptr_t,
        len: u32,
    ) -> i32 {
        Self::finish(sk, |sk| T::set(sk, &OptIn { val, len }))
    }

    /// Replaces `int sk_getsockopt(struct sock *sk, int level, int optname,
    /// sockptr_t optval, sockptr_t optlen)`.
    ///
    /// # Safety
    ///
    /// Only reached through `redirect`, which took a module reference for it:
    /// the arguments are those of a call of `sk_getsockopt` by a task.
    unsafe extern "C" fn get(
        sk: *mut bindings::sock,
        _level: i32,
        _optname: i32,
        val: bindings::sockptr_t,
        len: bindings::sockptr_t,
    ) -> i32 {
        Self::finish(sk, |sk| T::get(sk, &OptOut { val, len }))
    }
}
