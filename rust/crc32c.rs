// SPDX-License-Identifier: GPL-2.0

//! The kernel's CRC32C (`lib/crc32.c`'s `__crc32c_le`, exported, built
//! with `CONFIG_CRC32`) behind the pure logic's [`Crc32c`] trait.

use super::bindings;
use crate::logic::owner::Crc32c;

/// The kernel's `__crc32c_le`: the CRC register after `data` from `crc`,
/// no inversion (`crate::logic::owner::crc32c` inverts around it).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KernelCrc32c;

impl Crc32c for KernelCrc32c {
    fn crc32c_le(&self, crc: u32, data: &[u8]) -> u32 {
        // SAFETY: `data` is valid for reading `data.len()` bytes during the
        // call; `__crc32c_le` reads exactly those, keeps no pointer, and
        // may be called in any context (no lock, no sleep, no allocation).
        unsafe { bindings::__crc32c_le(crc, data.as_ptr(), data.len()) }
    }
}
