// SPDX-License-Identifier: GPL-2.0

//! sockgroup: the kernel spreads incoming TCP connections over the sockets
//! and servers that provide one service.
//!
//! This crate is the module. `rust/` (the `sys` module) is the thin layer
//! over the kernel's C interfaces, the only code the compiler cannot check; `logic` is plain
//! `no_std` Rust that is also tested on the host; `groups` and `sockopt`
//! are the service groups (capability 1 of SPEC.md).

use kernel::prelude::*;

mod cluster;
mod groups;
// The logic is a library shared with the host tests: its items are `pub`.
#[allow(unreachable_pub)]
mod logic;
mod netns;
mod sockopt;
// The safe layer is a library: it offers more than the module uses at any
// one time, with `pub` items.
#[allow(dead_code, unreachable_pub)]
#[path = "../rust/sys.rs"]
mod sys;

use sys::{
    fault::SweepFault,
    ftrace::{ListenStopHook, SockoptHooks},
    genetlink::Registration,
    net::{pernet_key, Pernet},
    rcu::BarrierOnDrop,
};

module! {
    type: SockGroup,
    name: "sockgroup",
    author: "sockgroup developers",
    description: "Service groups of listening sockets, and TCP handoff between servers",
    license: "GPL",
}

/// The module's registrations. Fields drop in order: first the netlink
/// family (waiting for its requests under way), then no new option call
/// and no listen-stop notice, then every namespace's hooks, groups (each
/// cancels its sweep) and cluster node (closing its channels), then the sweep's fault injection, last a wait
/// for the RCU callbacks that free old snapshots.
struct SockGroup {
    _genl: Registration<cluster::netlink::Sockgroup>,
    _sockopt: SockoptHooks<sockopt::ServiceGroup>,
    _listen_stop: ListenStopHook<sockopt::ServiceGroup>,
    _pernet: Pernet<netns::NetState>,
    _fault: SweepFault,
    _barrier: BarrierOnDrop,
}

impl kernel::Module for SockGroup {
    fn init(module: &'static ThisModule) -> Result<Self> {
        // Each step that fails drops the ones before, in reverse order,
        // as `Drop` of `SockGroup` would; the barrier comes first, so it
        // waits last, for the RCU callbacks of any snapshot freed meanwhile.
        let barrier = BarrierOnDrop;
        let fault = SweepFault::register();
        let pernet = Pernet::register(pernet_key!())
            .inspect_err(|e| pr_err!("per-namespace state: {:?}\n", e))?;
        let listen_stop = ListenStopHook::register()
            .inspect_err(|e| pr_err!("ftrace hook on inet_csk_listen_stop: {:?}\n", e))?;
        let sockopt = SockoptHooks::register()
            .inspect_err(|e| pr_err!("ftrace hooks on the option: {:?}\n", e))?;
        // Last: requests find every namespace's state.
        let genl = Registration::register(module)
            .inspect_err(|e| pr_err!("generic netlink family: {:?}\n", e))?;
        pr_info!(
            "loaded: SO_SERVICE_GROUP = {:#x}\n",
            logic::uapi::SO_SERVICE_GROUP
        );
        Ok(SockGroup {
            _genl: genl,
            _sockopt: sockopt,
            _listen_stop: listen_stop,
            _pernet: pernet,
            _fault: fault,
            _barrier: barrier,
        })
    }
}

impl Drop for SockGroup {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
