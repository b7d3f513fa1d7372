// SPDX-License-Identifier: GPL-2.0

//! Listening sockets built with the options `serve` needs before `bind()`.

use std::mem;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Call, Error};

/// A `sockaddr_storage` holding `addr`, and the length that is in use.
pub fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data for which all zeroes is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Sets an integer socket option.
fn set_int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
    what: &str,
) -> Result<(), Error> {
    // SAFETY: value lives across the call and its size is passed.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::addr_of!(value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret != 0 {
        return Err(Error::last_os(Call::Other, format!("setsockopt({what})")));
    }
    Ok(())
}

/// A TCP socket bound to `addr` and listening with `backlog`.
///
/// `SO_REUSEADDR` is always set and `SO_REUSEPORT` when `reuse_port`; an
/// IPv6 socket on the unspecified address `::` is made dual-stack.
pub fn listen(addr: SocketAddr, reuse_port: bool, backlog: u32) -> Result<TcpListener, Error> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket() takes integers; a non-negative result is a new fd.
    let raw = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(Error::last_os(Call::Other, "socket"));
    }
    // SAFETY: raw is a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    set_int_option(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1, "SO_REUSEADDR")?;
    if reuse_port {
        set_int_option(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1, "SO_REUSEPORT")?;
    }
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        set_int_option(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0, "IPV6_V6ONLY")?;
    }
    let (storage, len) = sockaddr(&addr);
    // SAFETY: storage holds a valid sockaddr of len bytes.
    let ret = unsafe { libc::bind(fd.as_raw_fd(), std::ptr::addr_of!(storage).cast(), len) };
    if ret != 0 {
        return Err(Error::last_os(Call::Other, format!("bind({addr})")));
    }
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: listen() takes integers.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } != 0 {
        return Err(Error::last_os(Call::Other, format!("listen({addr})")));
    }
    Ok(TcpListener::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_ipv4_sockaddrs() {
        let (storage, len) = sockaddr(&"127.0.0.1:8080".parse().unwrap());
        assert_eq!(len as usize, mem::size_of::<libc::sockaddr_in>());
        // SAFETY: sockaddr() wrote a sockaddr_in at the start of storage.
        let sin: libc::sockaddr_in = unsafe { std::ptr::read(std::ptr::addr_of!(storage).cast()) };
        assert_eq!(i32::from(sin.sin_family), libc::AF_INET);
        assert_eq!(u16::from_be(sin.sin_port), 8080);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [127, 0, 0, 1]);
    }

    #[test]
    fn encodes_ipv6_sockaddrs() {
        let (storage, len) = sockaddr(&"[::1]:443".parse().unwrap());
        assert_eq!(len as usize, mem::size_of::<libc::sockaddr_in6>());
        // SAFETY: sockaddr() wrote a sockaddr_in6 at the start of storage.
        let sin6: libc::sockaddr_in6 =
            unsafe { std::ptr::read(std::ptr::addr_of!(storage).cast()) };
        assert_eq!(i32::from(sin6.sin6_family), libc::AF_INET6);
        assert_eq!(u16::from_be(sin6.sin6_port), 443);
        assert_eq!(
            sin6.sin6_addr.s6_addr,
            std::net::Ipv6Addr::LOCALHOST.octets()
        );
    }

    #[test]
    fn listens_with_shared_ports() {
        let a = listen("127.0.0.1:0".parse().unwrap(), true, 8).unwrap();
        let port = a.local_addr().unwrap().port();
        let b = listen(SocketAddr::from(([127, 0, 0, 1], port)), true, 8).unwrap();
        assert_eq!(b.local_addr().unwrap().port(), port);
        let err = listen(SocketAddr::from(([127, 0, 0, 1], port)), false, 8).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EADDRINUSE));
    }
}
