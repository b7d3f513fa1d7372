// SPDX-License-Identifier: GPL-2.0

//! A spinlock that also disables softirqs (`spin_lock_bh`), for data shared
//! between a netfilter hook (softirq) and process context.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h).
//!
//! The kernel crate's `SpinLock` of 6.12 takes `spin_lock()` only: a task
//! holding it would deadlock with a softirq on the same CPU that takes it too.

use super::bindings;
use kernel::sync::lock::{Backend, Lock};

/// The backend: `spin_lock_bh()` / `spin_unlock_bh()`.
pub struct SpinLockBhBackend;

/// A spinlock taken with softirqs disabled; make one with [`new_spinlock_bh!`].
pub type SpinLockBh<T> = Lock<T, SpinLockBhBackend>;

// SAFETY: `spin_lock_bh` gives mutual exclusion (the holder runs with
// softirqs disabled on its CPU, so no softirq on it can wait for the lock it
// holds); `init` initializes the `spinlock_t` in place before any use, with
// the lockdep class and name given (static, as `Backend::init` requires).
unsafe impl Backend for SpinLockBhBackend {
    type State = kernel::bindings::spinlock_t;
    type GuardState = ();

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut kernel::bindings::lock_class_key,
    ) {
        // SAFETY: The caller guarantees that `ptr` is valid for writes and
        // that `name` and `key` live forever.
        unsafe { kernel::bindings::__spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The caller guarantees that `init` ran on `ptr`; both
        // bindings' `spinlock_t` are the same C type.
        unsafe { bindings::sg_spin_lock_bh(ptr.cast()) }
    }

    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: The caller owns the lock, taken by `lock` above.
        unsafe { bindings::sg_spin_unlock_bh(ptr.cast()) }
    }
}

/// A new [`SpinLockBh`] holding `$data`, named `$name`, with a lockdep class of its own.
macro_rules! new_spinlock_bh {
    ($data:expr, $name:literal) => {
        kernel::sync::lock::Lock::<_, $crate::sys::lock::SpinLockBhBackend>::new(
            $data,
            kernel::c_str!($name),
            kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_spinlock_bh;
