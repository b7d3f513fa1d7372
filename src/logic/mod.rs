// SPDX-License-Identifier: GPL-2.0

//! Pure logic of sockgroup: no kernel objects, `no_std`, no allocation.
//!
//! The same files are compiled into the module (as `crate::logic`) and, on
//! the host, as the `sockgroup_logic` library that `cargo test` exercises
//! (see `Cargo.toml`).

pub mod fmt;
pub mod ring;
pub mod uapi;
