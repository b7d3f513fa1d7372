// SPDX-License-Identifier: GPL-2.0

//! Entry points for the KUnit suite in `sockgroup_kunit.c`.
//!
//! 6.12 has no `#[kunit_tests]`: the suite is C, in a test module of its own
//! (`sockgroup_kunit.ko`, built only for kernels with `CONFIG_KUNIT`, as is
//! this file), and calls these functions through `helpers.c`, which
//! exports them to it (`sg_kunit_*`, `EXPORT_SYMBOL_IF_KUNIT`). They run
//! the module's Rust code inside the kernel and report what they observed
//! in a plain C struct for the suite to assert on.

use super::{skb::Family, sock::KernelSocket};
use crate::logic::ring::{choose, Choice, Load, Policy};

use super::bindings::sg_listener_report as ListenerReport;

fn probe(backlog: i32) -> kernel::error::Result<ListenerReport> {
    let sock = KernelSocket::new_tcp(Family::Inet)?;
    sock.bind_loopback_v4()?;
    sock.listen(backlog)?;
    let sk = sock.sk();
    Ok(ListenerReport {
        err: 0,
        state: u32::from(sk.state()),
        max_backlog: sk.max_ack_backlog(),
        backlog: sk.ack_backlog(),
        handshakes: sk.reqsk_queue_len(),
    })
}

/// Creates a kernel TCP listener with `backlog` and reads it through [`super::sock::Sock`].
///
/// The report's layout is `struct sg_listener_report` of `kunit.h`.
///
/// # Safety
///
/// `out` must be valid for writing a `ListenerReport`.
#[no_mangle]
pub unsafe extern "C" fn sg_rs_kunit_listener_probe(out: *mut ListenerReport, backlog: i32) {
    let report = probe(backlog).unwrap_or_else(|e| ListenerReport {
        err: e.to_errno(),
        ..Default::default()
    });
    // SAFETY: The caller guarantees `out` is valid for writes.
    unsafe { out.write(report) };
}

/// Runs the ring choice as compiled into the module.
///
/// Member `i` is full when bit `i` of `full_mask` is set.  Returns the
/// chosen index, `-1` for "the addressed member keeps it", `-2` for "all full".
#[no_mangle]
pub extern "C" fn sg_rs_kunit_ring_choose(
    primary: bool,
    len: u32,
    addressed: u32,
    full_mask: u64,
) -> i32 {
    let policy = if primary {
        Policy::Primary
    } else {
        Policy::Ring
    };
    let load = |i: usize| Load {
        listening: true,
        accept_queue: if full_mask & (1 << i) != 0 { 2 } else { 0 },
        handshakes: 0,
        limit: 1,
        cookie: false,
    };
    match choose(policy, len.min(64) as usize, addressed as usize, load) {
        Choice::Addressed => -1,
        Choice::Redirect(i) => i as i32,
        Choice::AllFull => -2,
    }
}
