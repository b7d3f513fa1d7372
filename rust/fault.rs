// SPDX-License-Identifier: GPL-2.0

//! Fault injection into sockgroup's own retry paths (kernel fault-injection
//! framework, `Documentation/fault-injection/fault-injection.rst`).
//!
//! The member sweep runs in a kworker, which failslab's task filter and
//! `/proc/self/fail-nth` cannot single out; `/sys/kernel/debug/fail_sockgroup_sweep`
//! (probability, times, interval, ...) makes a sweep fail as if an
//! allocation had, so that tests reach its retry. Only with
//! `CONFIG_FAULT_INJECTION_DEBUG_FS`; otherwise nothing fails.

use super::bindings;

/// The debugfs directory of the fault attribute, removed on drop.
pub struct SweepFault(());

impl SweepFault {
    /// Creates the debugfs directory (best effort: without debugfs, nothing fails).
    pub fn register() -> Self {
        // SAFETY: Process context; the helper is idempotent (a second
        // registration keeps the first directory).
        unsafe { bindings::sg_fault_register() };
        Self(())
    }

    /// Whether the sweep is to fail now.
    pub fn should_fail() -> bool {
        // SAFETY: Always safe: the attribute is static; without its
        // directory it keeps its defaults (never fails).
        unsafe { bindings::sg_fault_sweep() }
    }
}

impl Drop for SweepFault {
    fn drop(&mut self) {
        // SAFETY: Paired with `register`.
        unsafe { bindings::sg_fault_unregister() };
    }
}
