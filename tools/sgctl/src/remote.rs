// SPDX-License-Identifier: GPL-2.0

//! `sgctl group`, `ungroup` and `info`: the sockets of another, unmodified
//! process, reached through `pidfd_getfd(2)`.
//!
//! A copy of a process's fd refers to the same open socket, so a group
//! formed on the copies is the process's own group; the copies are closed
//! when sgctl exits, which leaves the process's sockets (and the group) as
//! they are.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use clap::Args;

use crate::error::Error;
use crate::model::{Group, Policy};
use crate::sys;

/// Arguments of `sgctl group`.
#[derive(Debug, Clone, Args)]
pub struct GroupArgs {
    /// The process whose listening sockets to group.
    #[arg(long)]
    pub pid: libc::pid_t,
    /// Its fds, in ring order; the first is the one the request is made on.
    #[arg(long = "fd", required = true, num_args = 1)]
    pub fds: Vec<RawFd>,
    /// Overflow policy of the group.
    #[arg(long, value_enum, default_value_t = Policy::Ring)]
    pub policy: Policy,
}

/// Arguments of `sgctl ungroup` and `sgctl info`.
#[derive(Debug, Clone, Args)]
pub struct FdArgs {
    /// The process owning the socket.
    #[arg(long)]
    pub pid: libc::pid_t,
    /// Its fd of the socket.
    #[arg(long)]
    pub fd: RawFd,
    /// Print as JSON (info only).
    #[arg(long)]
    pub json: bool,
}

/// Local copies of the fds `fds` of process `pid`, in the same order.
fn take_fds(pid: libc::pid_t, fds: &[RawFd]) -> Result<Vec<OwnedFd>, Error> {
    let pidfd = sys::pidfd_open(pid)?;
    fds.iter()
        .map(|&fd| {
            sys::pidfd_getfd(pidfd.as_fd(), fd)
                .map_err(|e| e.context(&format!("process {pid}, fd {fd}")))
        })
        .collect()
}

/// Checks a `group` fd list: at least two fds, none twice.
pub fn check_fd_list(fds: &[RawFd]) -> Result<(), String> {
    if fds.len() < 2 {
        return Err("a group needs at least two --fd".to_owned());
    }
    if let Some((i, fd)) = fds
        .iter()
        .enumerate()
        .find(|(i, fd)| fds[..*i].contains(fd))
    {
        return Err(format!("--fd {fd} is given twice (position {})", i + 1));
    }
    Ok(())
}

/// Runs `sgctl group`; returns the group as the kernel then reports it, if
/// it can be read back.
pub fn group(args: &GroupArgs) -> Result<Option<Group>, Error> {
    check_fd_list(&args.fds)?;
    let copies = take_fds(args.pid, &args.fds)?;
    let others: Vec<RawFd> = copies[1..].iter().map(AsRawFd::as_raw_fd).collect();
    sys::set_group(copies[0].as_fd(), args.policy, &others).map_err(|e| {
        e.context(&format!(
            "grouping fds {:?} of process {}",
            args.fds, args.pid
        ))
    })?;
    Ok(sys::get_group(copies[0].as_fd()).ok())
}

/// Runs `sgctl ungroup`.
pub fn ungroup(args: &FdArgs) -> Result<(), Error> {
    let copies = take_fds(args.pid, &[args.fd])?;
    sys::set_group(copies[0].as_fd(), Policy::Ring, &[]).map_err(|e| {
        e.context(&format!(
            "ungrouping fd {} of process {}",
            args.fd, args.pid
        ))
    })
}

/// Runs `sgctl info`.
pub fn info(args: &FdArgs) -> Result<Group, Error> {
    let copies = take_fds(args.pid, &[args.fd])?;
    sys::get_group(copies[0].as_fd())
        .map_err(|e| e.context(&format!("fd {} of process {}", args.fd, args.pid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_lists() {
        assert!(check_fd_list(&[3, 4]).is_ok());
        assert!(check_fd_list(&[3, 4, 5, 6]).is_ok());
        assert_eq!(
            check_fd_list(&[3]).unwrap_err(),
            "a group needs at least two --fd"
        );
        assert_eq!(
            check_fd_list(&[3, 4, 3]).unwrap_err(),
            "--fd 3 is given twice (position 3)"
        );
    }
}
