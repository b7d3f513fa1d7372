// SPDX-License-Identifier: GPL-2.0

//! Memory that must not outlive its use: secrets.

use core::sync::atomic::{compiler_fence, Ordering};

/// Overwrites `buf` with zeros in a way the compiler cannot elide, as
/// `memzero_explicit` does: for keys about to be freed.
pub fn zeroize(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to a byte.
        unsafe { core::ptr::write_volatile(b, 0) };
    }
    compiler_fence(Ordering::SeqCst);
}
