// SPDX-License-Identifier: GPL-2.0

//! Raw bindings from our bindgen run over `rust/bindings_helper.h` (see `Kbuild`).
//!
//! Only the safe layer in `rust/` uses these; `src/` never does.

#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs,
    unreachable_pub,
    improper_ctypes,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]

use kernel::ffi;

// Blocked in `bindgen_parameters` so that they map to Rust's pointer-sized
// integers, as in the kernel crate's bindings.
type __kernel_size_t = usize;
type __kernel_ssize_t = isize;
type __kernel_ptrdiff_t = isize;

include!("bindings_generated.rs");
