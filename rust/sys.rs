// SPDX-License-Identifier: GPL-2.0

//! The safe layer over the kernel's networking C interfaces.
//!
//! Everything `unsafe` in sockgroup lives below this module (in `rust/`);
//! `src/` uses only the safe types exported here.

#[path = "bindings.rs"]
pub(crate) mod bindings;
#[path = "conntrack.rs"]
pub(crate) mod conntrack;
#[path = "crc32c.rs"]
pub(crate) mod crc32c;
#[path = "crypto.rs"]
pub(crate) mod crypto;
#[path = "errno.rs"]
pub(crate) mod errno;
#[path = "fault.rs"]
pub(crate) mod fault;
#[path = "ftrace.rs"]
pub(crate) mod ftrace;
#[path = "genetlink.rs"]
pub(crate) mod genetlink;
// The entry points of the KUnit suite, a module of its own (sockgroup_kunit.ko).
#[cfg(CONFIG_KUNIT)]
#[path = "kunit.rs"]
pub(crate) mod kunit;
#[path = "lock.rs"]
pub(crate) mod lock;
#[path = "mem.rs"]
pub(crate) mod mem;
#[path = "net.rs"]
pub(crate) mod net;
#[path = "netfilter.rs"]
pub(crate) mod netfilter;
#[path = "rcu.rs"]
pub(crate) mod rcu;
#[path = "request_sock.rs"]
pub(crate) mod request_sock;
#[path = "skb.rs"]
pub(crate) mod skb;
#[path = "sock.rs"]
pub(crate) mod sock;
#[path = "socket.rs"]
pub(crate) mod socket;
#[path = "tcp.rs"]
pub(crate) mod tcp;
#[path = "udp_tunnel.rs"]
pub(crate) mod udp_tunnel;
#[path = "work.rs"]
pub(crate) mod work;
