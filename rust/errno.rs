// SPDX-License-Identifier: GPL-2.0

//! Error codes that the kernel crate of 6.12 does not name.

use super::bindings;
use kernel::error::Error;

fn code(errno: u32) -> Error {
    Error::from_errno(-(errno as i32))
}

/// Protocol not available: an option nobody serves.
pub fn enoprotoopt() -> Error {
    code(bindings::ENOPROTOOPT)
}

/// Socket operation on non-socket.
pub fn enotsock() -> Error {
    code(bindings::ENOTSOCK)
}

/// Operation not supported on this kind of socket.
pub fn eopnotsupp() -> Error {
    code(bindings::EOPNOTSUPP)
}

/// Address family not supported.
pub fn eafnosupport() -> Error {
    code(bindings::EAFNOSUPPORT)
}

/// No data available.
pub fn enodata() -> Error {
    code(bindings::ENODATA)
}

/// Package not installed: the kernel has no connection tracking or NAT.
pub fn enopkg() -> Error {
    code(bindings::ENOPKG)
}

/// Message too long: a netlink message is full.
pub fn emsgsize() -> Error {
    code(bindings::EMSGSIZE)
}

/// Network unreachable: no route.
pub fn enetunreach() -> Error {
    code(bindings::ENETUNREACH)
}

/// No route to host: a forwarded packet's destination.
pub fn ehostunreach() -> Error {
    code(bindings::EHOSTUNREACH)
}

/// No buffer space: a packet the queue dropped (`NET_XMIT_DROP`).
pub fn enobufs() -> Error {
    code(bindings::ENOBUFS)
}
