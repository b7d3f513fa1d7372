// SPDX-License-Identifier: GPL-2.0

//! Pure logic of sockgroup: no kernel objects, `no_std`, no allocation.
//!
//! The same files are compiled into the module (as `crate::logic`) and, on
//! the host, as the `sockgroup_logic` library that `cargo test` exercises
//! (see `Cargo.toml`).

pub mod fmt;
pub mod ring;
pub mod stall;
pub mod uapi;

// The cluster's pure parts live beside the kernel code that uses them
// (src/cluster/); they are compiled here only, so the module sees them as
// `crate::logic::frame`, `crate::logic::membership`, and so on. Parts 2
// and 3 use more of them than the control channel does.
#[allow(dead_code)]
#[path = "../cluster/frame.rs"]
pub mod frame;
#[allow(dead_code)]
#[path = "../cluster/membership.rs"]
pub mod membership;
// The handoff's front-end (part 2): the first request of a connection, the
// reassembly of its segments, and the rules' matching and rendezvous hash
// over the request.
#[allow(dead_code)]
#[path = "../cluster/reasm.rs"]
pub mod reasm;
#[allow(dead_code)]
#[path = "../cluster/request.rs"]
pub mod request;
#[allow(dead_code)]
#[path = "../cluster/select.rs"]
pub mod select;
// The handoff's part 3: the translation of a moved connection's sequence
// numbers and timestamps, and the typed encapsulation header (seed 004)
// of its forwarded packets.
#[allow(dead_code)]
#[path = "../cluster/encap.rs"]
pub mod encap;
#[allow(dead_code)]
#[path = "../cluster/handoff.rs"]
pub mod handoff;
#[allow(dead_code)]
#[path = "../cluster/xlate.rs"]
pub mod xlate;
// The front-end's memory of connections that ended with a FIN, for the
// back-end's TIME_WAIT.
#[allow(dead_code)]
#[path = "../cluster/linger.rs"]
pub mod linger;
// The back-end's replay: the segments that replay a handed-off connection
// into the local TCP.
#[allow(dead_code)]
#[path = "../cluster/segment.rs"]
pub mod segment;

// The MSS clamp of the front-end's SYN-ACKs for forwarded connections.
#[path = "../cluster/mss.rs"]
pub mod mss;

// The pinning of UDP flows to the nodes that serve them (seed 004).
#[path = "../cluster/flows.rs"]
pub mod flows;

// Several dispatchers (issue 13, seed 001): owner and backup owner by
// score, the changes of the view, the association cache, the session
// affinity and what a dispatcher does with a client's segment. The kernel
// side is to come.
#[allow(dead_code)]
#[path = "../dispatch/affinity.rs"]
pub mod affinity;
#[allow(dead_code)]
#[path = "../dispatch/cache.rs"]
pub mod cache;
#[allow(dead_code)]
#[path = "../dispatch/owner.rs"]
pub mod owner;
#[allow(dead_code)]
#[path = "../dispatch/steer.rs"]
pub mod steer;
