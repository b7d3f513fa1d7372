// SPDX-License-Identifier: GPL-2.0

//! RCU: read-side guards and a pointer cell that readers follow without locks.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h).

use super::bindings;
use core::{
    marker::PhantomData,
    ptr,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{
    alloc::Flags,
    prelude::*,
    sync::{lock::mutex::MutexBackend, Mutex},
    types::Opaque,
};

/// An RCU read-side critical section, from `rcu_read_lock()` to `rcu_read_unlock()`.
///
/// Not `Send`: it must end on the CPU and task that began it.
pub struct Guard(PhantomData<*mut ()>);

impl Guard {
    /// Enters a read-side critical section (they nest).
    pub fn new() -> Self {
        // SAFETY: No precondition; `Drop` calls the matching
        // `rcu_read_unlock()` on the same task (`Guard` is not `Send`).
        unsafe { bindings::sg_rcu_read_lock() };
        Self(PhantomData)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: Paired with the `rcu_read_lock()` of `Guard::new`.
        unsafe { bindings::sg_rcu_read_unlock() };
    }
}

/// Waits until every `call_rcu` callback queued so far has run (`rcu_barrier()`).
///
/// The module's exit calls it last, so that no callback of ours runs after
/// the module's code is gone.
pub fn barrier() {
    // SAFETY: No memory-safety precondition. It sleeps: callers are in
    // process context (the module's exit and init failure path, through
    // `BarrierOnDrop`).
    unsafe { bindings::rcu_barrier() };
}

/// Calls [`barrier`] when dropped: the last field of the module's state.
pub struct BarrierOnDrop;

impl Drop for BarrierOnDrop {
    fn drop(&mut self) {
        barrier();
    }
}

/// A point in RCU's grace-period sequence (`get_state_synchronize_rcu()`):
/// tells later whether a full grace period has elapsed since
/// (`poll_state_synchronize_rcu()`), without waiting for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpState(usize);

impl GpState {
    /// Now: every read-side critical section under way ends before the
    /// first grace period that [`GpState::elapsed`] sees complete.
    pub fn now() -> Self {
        // SAFETY: No precondition; callable in any context. (The kernel's
        // `unsigned long` is `usize`.)
        Self(unsafe { bindings::get_state_synchronize_rcu() })
    }

    /// Whether a full grace period has elapsed since [`GpState::now`].
    pub fn elapsed(self) -> bool {
        // SAFETY: No precondition; any value is accepted (a wrong one at
        // worst answers `false` for a while), callable in any context.
        unsafe { bindings::poll_state_synchronize_rcu(self.0) }
    }

    /// The raw value, to keep in an atomic.
    pub fn to_raw(self) -> usize {
        self.0
    }

    /// From [`GpState::to_raw`].
    pub fn from_raw(raw: usize) -> Self {
        Self(raw)
    }
}

/// Waits for a full grace period (`synchronize_rcu()`). Process context.
pub fn synchronize() {
    // SAFETY: No memory-safety precondition. It sleeps: callers are in
    // process context.
    unsafe { bindings::synchronize_rcu() };
}

/// An allocation that carries its own `rcu_head`, so it can be freed after a grace period.
#[repr(C)]
struct RcuBox<T> {
    head: Opaque<bindings::callback_head>,
    value: T,
}

/// A pointer that readers follow under RCU while writers replace what it points to.
///
/// Writers publish with release ordering (`rcu_assign_pointer`); readers load
/// with acquire ordering, at least as strong as `rcu_dereference`. The value
/// replaced is dropped after a grace period, with `call_rcu`, so a writer may
/// be in atomic context.
///
/// # Invariants
///
/// `ptr` is null or comes from `KBox::into_raw` of an `RcuBox<T>` owned by
/// this cell; once replaced, it is handed to `call_rcu` exactly once.
pub struct RcuCell<T: Send + Sync> {
    ptr: AtomicPtr<RcuBox<T>>,
}

impl<T: Send + Sync> RcuCell<T> {
    /// An empty cell.
    pub const fn new() -> Self {
        Self {
            ptr: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The current value, valid for the read-side critical section `_guard`.
    pub fn get<'a>(&'a self, _guard: &'a Guard) -> Option<&'a T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: By the type invariant a non-null `p` points to a live
        // `RcuBox<T>`; it is freed only after a grace period that began
        // after it was replaced, so it outlives the critical section of `_guard`.
        unsafe { p.as_ref() }.map(|b| &b.value)
    }

    /// Publishes `value` (or nothing); the old value is dropped after a grace period.
    ///
    /// Writers that must not lose each other's updates serialize with a lock
    /// of their own; the cell itself stays sound without it.
    pub fn replace(&self, value: Option<T>, flags: Flags) -> Result {
        let new = match value {
            Some(value) => KBox::into_raw(KBox::new(
                RcuBox {
                    head: Opaque::uninit(),
                    value,
                },
                flags,
            )?),
            None => ptr::null_mut(),
        };
        let old = self.ptr.swap(new, Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: By the type invariant `old` came from `KBox::into_raw`
            // and, now that it is swapped out, nobody else will free it:
            // `free` runs once, after a grace period, so after every reader
            // that loaded `old`; `head` is its first field and unused until
            // now. `free` drops the value on whichever CPU runs callbacks
            // (`T: Send`). It is our code: the module waits for it with
            // `barrier()` before its code goes (`BarrierOnDrop`).
            unsafe {
                bindings::call_rcu(
                    Opaque::raw_get(ptr::addr_of!((*old).head)),
                    Some(Self::free),
                )
            };
        }
        Ok(())
    }

    /// The `call_rcu` callback: drops the box after the grace period.
    ///
    /// # Safety
    ///
    /// `head` must be the `head` of an `RcuBox<T>` from `KBox::into_raw`,
    /// handed to `call_rcu` once.
    unsafe extern "C" fn free(head: *mut bindings::callback_head) {
        // SAFETY: `RcuBox` is `repr(C)` with `head` first, so the pointers
        // are equal; the caller guarantees the box came from `KBox::into_raw`.
        drop(unsafe { KBox::from_raw(head.cast::<RcuBox<T>>()) });
    }
}

impl<T: Send + Sync> Drop for RcuCell<T> {
    fn drop(&mut self) {
        // Readers may still be in a critical section that found the value.
        let _ = self.replace(None, GFP_KERNEL);
    }
}

/// An [`RcuCell`] whose writers hold a mutex, which also guards their own data `C`.
///
/// Readers follow the value under RCU without locks, as with [`RcuCell`]. A
/// writer holds the mutex and reads the value without a read-side critical
/// section, so it may sleep (allocate with `GFP_KERNEL`) while it builds the
/// next value: only a writer replaces it.
///
/// # Invariants
///
/// `cell` is replaced only through [`RcuWriter::replace`], with `lock` held,
/// or when the whole value is dropped.
#[pin_data]
pub struct RcuMutex<C, T: Send + Sync> {
    #[pin]
    lock: Mutex<C>,
    cell: RcuCell<T>,
}

impl<C, T: Send + Sync> RcuMutex<C, T> {
    /// An empty cell whose writers hold `lock` (made with `new_mutex!`).
    pub fn new(lock: impl PinInit<Mutex<C>>) -> impl PinInit<Self> {
        pin_init!(Self {
            lock <- lock,
            cell: RcuCell::new(),
        })
    }

    /// The current value, for the read-side critical section `guard`.
    pub fn get<'a>(&'a self, guard: &'a Guard) -> Option<&'a T> {
        self.cell.get(guard)
    }

    /// Takes the writers' mutex (process context; may sleep).
    pub fn lock(&self) -> RcuWriter<'_, C, T> {
        RcuWriter {
            guard: self.lock.lock(),
            cell: &self.cell,
        }
    }
}

/// A writer of an [`RcuMutex`]: its mutex is held while this value lives.
pub struct RcuWriter<'a, C, T: Send + Sync> {
    guard: kernel::sync::lock::Guard<'a, C, MutexBackend>,
    cell: &'a RcuCell<T>,
}

impl<C, T: Send + Sync> RcuWriter<'_, C, T> {
    /// The current value and the writers' data. The value may be read while
    /// sleeping; the borrow ends before the next [`RcuWriter::replace`].
    pub fn get(&mut self) -> (Option<&T>, &mut C) {
        let p = self.cell.ptr.load(Ordering::Acquire);
        // SAFETY: By the type invariants of `RcuCell` a non-null `p` points
        // to a live `RcuBox<T>`, freed only after it is replaced; by the
        // invariant of `RcuMutex` only a writer replaces it while the cell
        // lives, and we are the only writer (we hold the mutex); our own
        // `replace` takes `&mut self`, so the reference returned here is
        // gone by then.
        (unsafe { p.as_ref() }.map(|b| &b.value), &mut *self.guard)
    }

    /// Publishes `value` (or nothing); the old value is dropped after a
    /// grace period. On error nothing changed.
    pub fn replace(&mut self, value: Option<T>, flags: Flags) -> Result {
        // INVARIANT: With the mutex held.
        self.cell.replace(value, flags)
    }
}
