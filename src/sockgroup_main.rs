// SPDX-License-Identifier: GPL-2.0

//! sockgroup: the kernel spreads incoming TCP connections over the sockets
//! and servers that provide one service.
//!
//! This crate is the module.  `rust/` (the `sys` module) is the thin layer
//! over the kernel's C interfaces and holds every `unsafe`; `logic` is plain
//! `no_std` Rust that is also tested on the host.

use kernel::prelude::*;

// The logic is a library shared with the host tests: its items are `pub`.
#[allow(unreachable_pub)]
mod logic;
// The safe layer is a library: it offers more than the module uses at any
// one time, with `pub` items.
#[allow(dead_code, unreachable_pub)]
#[path = "../rust/sys.rs"]
mod sys;

module! {
    type: SockGroup,
    name: "sockgroup",
    author: "sockgroup developers",
    description: "Service groups of listening sockets, and TCP handoff between servers",
    license: "GPL",
}

struct SockGroup;

impl kernel::Module for SockGroup {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded\n");
        Ok(SockGroup)
    }
}

impl Drop for SockGroup {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
