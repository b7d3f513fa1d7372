// SPDX-License-Identifier: GPL-2.0

//! A delayed work item embedded in the data it works on.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h).
//!
//! The kernel crate's `workqueue` of 6.12 hands an `Arc` or a `KBox` to the
//! queue and offers no cancellation nor delay; this is the plain C pattern
//! instead: a `delayed_work` next to its data, queued on the system
//! workqueue, cancelled (waiting for a run under way) before the data goes.

use super::bindings;
use core::ops::Deref;
use kernel::{prelude::*, types::Opaque};

/// What a [`Worked`] work item does.
pub trait Run: Send + Sync + 'static {
    /// Runs in process context (a kworker; may sleep). `Some(ms)`: run again
    /// after `ms` milliseconds.
    fn run(&self) -> Option<u32>;
}

/// `data` with a delayed work item that runs `D::run(&data)`.
///
/// # Invariants
///
/// `dw` was initialized with [`Worked::callback`] as its function, and is
/// only queued while `self` is alive: `Drop` cancels it and waits.
#[repr(C)]
#[pin_data(PinnedDrop)]
pub struct Worked<D: Run> {
    // First: the `delayed_work`'s address is `self`'s (see `callback`).
    #[pin]
    dw: Opaque<bindings::delayed_work>,
    #[pin]
    data: D,
}

// SAFETY: The `delayed_work` is only used through the workqueue functions,
// which may be called from any thread; `D` is `Send + Sync`.
unsafe impl<D: Run> Send for Worked<D> {}
// SAFETY: As above: `&Worked` only queues the work, which is thread-safe.
unsafe impl<D: Run> Sync for Worked<D> {}

impl<D: Run> Worked<D> {
    /// `data` with an idle work item.
    pub fn new(data: impl PinInit<D>) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writing a `delayed_work`, which
            // `INIT_DELAYED_WORK` initializes in place.
            dw <- Opaque::ffi_init(|slot| unsafe {
                bindings::sg_init_delayed_work(slot, Some(Self::callback))
            }),
            data <- data,
        })
    }

    /// Queues a run now, unless one is already queued (any context, also
    /// atomic). A run under way is followed by another one.
    pub fn schedule(&self) {
        self.schedule_in(0);
    }

    /// Runs the work now: queues it, or brings a run queued for later
    /// forward (any context, also atomic: socket callbacks call it).
    pub fn kick(&self) {
        // SAFETY: By the type invariant `dw` is initialized and `self`
        // outlives any run queued now.
        unsafe { bindings::sg_mod_delayed_work(self.dw.get(), 0) };
    }

    /// Queues a run after `ms` milliseconds, unless one is already queued.
    pub fn schedule_in(&self, ms: u32) {
        // SAFETY: By the type invariant `dw` is initialized and `self`
        // outlives any run queued now.
        unsafe { bindings::sg_queue_delayed_work(self.dw.get(), ms) };
    }

    /// Cancels a queued run and waits for one under way (process context;
    /// sleeps). A run queued again later runs as usual.
    pub fn cancel_sync(&self) {
        // SAFETY: By the type invariant `dw` is initialized.
        unsafe { bindings::cancel_delayed_work_sync(self.dw.get()) };
    }

    /// The work function.
    ///
    /// # Safety
    ///
    /// Only the workqueue calls it, with the `work` of a queued `dw` of a
    /// live `Worked<D>` (by the type invariant).
    unsafe extern "C" fn callback(work: *mut bindings::work_struct) {
        // SAFETY: `work` is the `work` member of our `delayed_work`.
        let dw = unsafe { bindings::sg_to_delayed_work(work) };
        // SAFETY: `Worked` is `repr(C)` with `dw` first, and `Opaque` is
        // `repr(transparent)`: the `delayed_work` is at the address of its
        // `Worked<D>`, which `Drop` keeps alive until this run returns.
        let this = unsafe { &*dw.cast::<Self>() };
        if let Some(ms) = this.data.run() {
            this.schedule_in(ms);
        }
    }
}

impl<D: Run> Deref for Worked<D> {
    type Target = D;

    fn deref(&self) -> &D {
        &self.data
    }
}

#[pinned_drop]
impl<D: Run> PinnedDrop for Worked<D> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `dw` is initialized. This waits for a run under way and
        // stops one that queues itself again; nobody else can queue it
        // now, as we are being dropped (no other reference).
        unsafe { bindings::cancel_delayed_work_sync(self.dw.get()) };
    }
}
