// SPDX-License-Identifier: GPL-2.0

//! `setsockopt`/`getsockopt(fd, SOL_SOCKET, SO_SERVICE_GROUP, ...)`.

use crate::groups::{errno, Control, NetGroups};
use crate::logic::uapi::{self, REQ2_LEN};
use crate::netns::NetState;
use crate::sys::{
    errno::{enotsock, eopnotsupp},
    ftrace::{ListenStop, OptIn, OptOut, Sockopt},
    net::Pernet,
    rcu::Guard,
    sock::{Sock, SocketFd},
};
use kernel::prelude::*;

/// The service-group option and the end of listening.
pub(crate) struct ServiceGroup;

impl ServiceGroup {
    /// The groups of `sk`'s namespace, for a call that may sleep.
    fn control(sk: &Sock) -> Result<Control> {
        let guard = Guard::new();
        // A socket of no IP family has no state of ours: not a TCP socket.
        Ok(NetGroups::of(sk, &guard).ok_or_else(eopnotsupp)?.control())
    }
}

impl Sockopt for ServiceGroup {
    const OPTNAME: i32 = uapi::SO_SERVICE_GROUP;

    fn set(sk: &Sock, opt: &OptIn) -> Result {
        let len = opt.len()?;
        uapi::check_len(len).map_err(errno)?;
        let mut buf = [0u8; REQ2_LEN + 4 * (uapi::MAX_MEMBERS - 1)];
        let header = &mut [0u8; REQ2_LEN];
        opt.read(&mut header[..len.min(REQ2_LEN)])?;
        let req = uapi::parse_header(len, header).map_err(errno)?;
        // A rewrite group turns conntrack and NAT on in the namespace: the
        // privilege of the namespace's administrator, checked first.
        if req.flags & uapi::F_REWRITE != 0 && req.count > 0 && !sk.net_admin_capable() {
            return Err(EPERM);
        }
        // `parse_header` checked that `len` is the header and `count` fds.
        let buf = &mut buf[..len];
        opt.read(buf)?;

        let mut files = KVec::with_capacity(req.count, GFP_KERNEL)?;
        for fd in uapi::fds(&buf[req.header_len..]) {
            files.push(SocketFd::lookup(fd)?, GFP_KERNEL)?;
        }
        let mut listed = KVec::with_capacity(req.count, GFP_KERNEL)?;
        for f in files.iter() {
            listed.push(f.sk().ok_or_else(enotsock)?, GFP_KERNEL)?;
        }
        let control = Self::control(sk)?;
        if req.flags & uapi::F_REWRITE != 0 && req.count > 0 {
            // A request that would fail turns nothing on.
            control.validate(sk, &listed)?;
            // Conntrack and our NAT function for the namespace (may sleep).
            Pernet::<NetState>::enable_nat(sk.net())?;
        }
        control.regroup(sk, &listed, &req)
    }

    fn get(sk: &Sock, opt: &OptOut) -> Result {
        let len = usize::try_from(opt.len()?).map_err(|_| EINVAL)?;
        // The caller asks for the version 2 reply in its buffer's first word.
        let mut first = [0u8; 4];
        let asked = if len >= first.len() {
            opt.read(&mut first)?;
            Some(first)
        } else {
            None
        };
        let version = uapi::reply_version(asked);
        let reply = Self::control(sk).map_err(|_| ENOENT)?.info(sk, version)?;
        if len < reply.len() {
            opt.set_len(reply.len() as i32)?;
            return Err(ERANGE);
        }
        opt.write(&reply)?;
        opt.set_len(reply.len() as i32)
    }
}

impl ListenStop for ServiceGroup {
    fn listen_stop(sk: &Sock) {
        let guard = Guard::new();
        if let Some(state) = NetGroups::of(sk, &guard) {
            state.listen_stopped(sk);
        }
    }
}
