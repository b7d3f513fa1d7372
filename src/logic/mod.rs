// SPDX-License-Identifier: GPL-2.0

//! Pure logic of sockgroup: no kernel objects, `no_std`, no allocation.
//!
//! The same files are compiled into the module (as `crate::logic`) and, on
//! the host, as the `sockgroup_logic` library that `cargo test` exercises
//! (see `Cargo.toml`).

pub mod fmt;
pub mod ring;
pub mod uapi;

// The cluster's pure parts live beside the kernel code that uses them
// (src/cluster/); they are compiled here only, so the module sees them as
// `crate::logic::frame` and `crate::logic::membership`. Parts 2 and 3 use
// more of them than the control channel does.
#[allow(dead_code)]
#[path = "../cluster/frame.rs"]
pub mod frame;
#[allow(dead_code)]
#[path = "../cluster/membership.rs"]
pub mod membership;
// Part 2: the request parser and the reassembly of a held request.
#[allow(dead_code)]
#[path = "../cluster/reasm.rs"]
pub mod reasm;
#[allow(dead_code)]
#[path = "../cluster/request.rs"]
pub mod request;
