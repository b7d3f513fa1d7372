// SPDX-License-Identifier: GPL-2.0

//! `sgctl group`, `ungroup` and `info`: the sockets of other, unmodified
//! processes, reached through `pidfd_getfd(2)`.
//!
//! A copy of a process's fd refers to the same open socket, so a group
//! formed on the copies is the processes' own group; the copies are closed
//! when sgctl exits, which leaves the processes' sockets (and the group) as
//! they are.  The members of one group may belong to several processes.

use std::collections::hash_map::{Entry, HashMap};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::str::FromStr;

use clap::{ArgGroup, Args};

use crate::error::Error;
use crate::listening::{self, Listener};
use crate::model::{Group, Policy};
use crate::sys;
use crate::table::Table;
use crate::uapi;

/// A socket of a process: its pid and its fd there, written `PID:FD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The process.
    pub pid: libc::pid_t,
    /// Its fd of the socket.
    pub fd: RawFd,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not PID:FD (e.g. 1234:5)");
        let (pid, fd) = s.split_once(':').ok_or_else(bad)?;
        let pid: libc::pid_t = pid.parse().map_err(|_| bad())?;
        let fd: RawFd = fd.parse().map_err(|_| bad())?;
        if pid <= 0 || fd < 0 {
            return Err(bad());
        }
        Ok(Self { pid, fd })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.pid, self.fd)
    }
}

/// Arguments of `sgctl group`: the sockets as `--member PID:FD...`, or as
/// `--pid PID` with `--fd N...` or `--listening`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("sockets").required(true).args(["fds", "listening", "members"])))]
pub struct GroupArgs {
    /// The process whose listening sockets to group (with --fd or --listening).
    #[arg(long, conflicts_with = "members")]
    pub pid: Option<libc::pid_t>,
    /// An fd of the process, in ring order (repeat); the first one gets the request.
    #[arg(long = "fd", value_name = "FD", num_args = 1, requires = "pid")]
    pub fds: Vec<RawFd>,
    /// Group every listening TCP socket of the process, in ascending fd order.
    #[arg(long, requires = "pid")]
    pub listening: bool,
    /// A socket of any process as PID:FD, in ring order (repeat).
    #[arg(long = "member", value_name = "PID:FD", num_args = 1)]
    pub members: Vec<Target>,
    /// Overflow policy of the group.
    #[arg(long, value_enum, default_value_t = Policy::Ring)]
    pub policy: Policy,
    /// Stall rescue: a member whose oldest waiting connection has waited
    /// this long (ms; 0 off, else 10 to 60000) has its queue moved to its
    /// siblings (sends a version 2 request; without it, version 1).
    #[arg(long, value_name = "MS", value_parser = uapi::parse_stall_ms)]
    pub stall_ms: Option<u32>,
}

/// Arguments of `sgctl ungroup` and `sgctl info`: one socket, as
/// `--pid PID --fd N` or `--member PID:FD`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("socket").required(true).args(["fd", "member"])))]
pub struct FdArgs {
    /// The process owning the socket (with --fd).
    #[arg(long, requires = "fd", conflicts_with = "member")]
    pub pid: Option<libc::pid_t>,
    /// Its fd of the socket.
    #[arg(long, requires = "pid")]
    pub fd: Option<RawFd>,
    /// The socket as PID:FD.
    #[arg(long, value_name = "PID:FD")]
    pub member: Option<Target>,
    /// Print as JSON (info only).
    #[arg(long)]
    pub json: bool,
}

impl FdArgs {
    /// The socket named.
    pub fn target(&self) -> Target {
        match (self.member, self.pid, self.fd) {
            (Some(target), _, _) => target,
            (None, Some(pid), Some(fd)) => Target { pid, fd },
            // clap requires --member, or --pid and --fd together.
            _ => unreachable!("neither --member nor --pid with --fd"),
        }
    }
}

/// The sockets that `group` names explicitly, in ring order; `None` for
/// `--listening`, whose sockets are found by [`discover`].
pub fn named_targets(args: &GroupArgs) -> Option<Vec<Target>> {
    match args.pid {
        Some(_) if args.listening => None,
        Some(pid) => Some(args.fds.iter().map(|&fd| Target { pid, fd }).collect()),
        None => Some(args.members.clone()),
    }
}

/// The listening TCP sockets of process `pid` (ascending fd order), and a
/// description of them for the user.
pub fn discover(pid: libc::pid_t) -> Result<(Vec<Target>, String), Error> {
    let found = listening::discover(pid).map_err(|e| e.context(&format!("process {pid}")))?;
    let targets = found.iter().map(|l| Target { pid, fd: l.fd }).collect();
    Ok((targets, render_listeners(pid, &found)))
}

/// Describes the listening sockets found in process `pid`.
fn render_listeners(pid: libc::pid_t, found: &[Listener]) -> String {
    let plural = if found.len() == 1 { "" } else { "s" };
    let mut out = format!(
        "process {pid}: {} listening TCP socket{plural}\n",
        found.len()
    );
    if !found.is_empty() {
        let mut table = Table::new(["FD", "LOCAL"]);
        for l in found {
            table.push(vec![l.fd.to_string(), l.local.to_string()]);
        }
        out.push_str(&table.render("  "));
    }
    out
}

/// Local copies of the sockets `targets`, in the same order.
fn take_fds(targets: &[Target]) -> Result<Vec<OwnedFd>, Error> {
    let mut pidfds: HashMap<libc::pid_t, OwnedFd> = HashMap::new();
    let mut copies = Vec::with_capacity(targets.len());
    for t in targets {
        let context = |e: Error| e.context(&format!("process {}, fd {}", t.pid, t.fd));
        let pidfd = match pidfds.entry(t.pid) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(sys::pidfd_open(t.pid).map_err(context)?),
        };
        copies.push(sys::pidfd_getfd(pidfd.as_fd(), t.fd).map_err(context)?);
    }
    Ok(copies)
}

/// Checks a `group` list: at least two sockets, none named twice.
pub fn check_targets(targets: &[Target]) -> Result<(), String> {
    if targets.len() < 2 {
        return Err(format!(
            "a group needs at least two sockets ({} given)",
            targets.len()
        ));
    }
    if let Some((i, t)) = targets
        .iter()
        .enumerate()
        .find(|(i, t)| targets[..*i].contains(t))
    {
        return Err(format!("{t} is given twice (position {})", i + 1));
    }
    Ok(())
}

/// The first pair of positions in `ids` that hold the same value.
fn first_repeat<T: PartialEq>(ids: &[T]) -> Option<(usize, usize)> {
    (0..ids.len()).find_map(|j| ids[..j].iter().position(|id| *id == ids[j]).map(|i| (i, j)))
}

/// Groups the sockets `targets` into one ring, in that order, with stall
/// rescue after `stall_ms` when given (a version 2 request); returns the
/// group as the kernel then reports it, if it can be read back.
pub fn group(
    targets: &[Target],
    policy: Policy,
    stall_ms: Option<u32>,
) -> Result<Option<Group>, Error> {
    check_targets(targets)?;
    let copies = take_fds(targets)?;
    // Two processes can share one socket (a forked server's workers): the
    // kernel would refuse it as listed twice; say which ones.
    let ids = copies
        .iter()
        .map(|c| sys::file_id(c.as_fd()))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((i, j)) = first_repeat(&ids) {
        return Err(Error::Msg(format!(
            "{} and {} are the same socket: list it once",
            targets[i], targets[j]
        )));
    }
    let others: Vec<RawFd> = copies[1..].iter().map(AsRawFd::as_raw_fd).collect();
    sys::set_group(copies[0].as_fd(), policy, 0, stall_ms, &others)
        .map_err(|e| e.context(&format!("grouping {}", join(targets))))?;
    Ok(sys::get_group(copies[0].as_fd()).ok())
}

/// `targets` as `PID:FD PID:FD ...`.
pub fn join(targets: &[Target]) -> String {
    targets
        .iter()
        .map(Target::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `sgctl ungroup`.
pub fn ungroup(target: Target) -> Result<(), Error> {
    let copies = take_fds(&[target])?;
    sys::set_group(copies[0].as_fd(), Policy::Ring, 0, None, &[]).map_err(|e| {
        e.context(&format!(
            "ungrouping fd {} of process {}",
            target.fd, target.pid
        ))
    })
}

/// Runs `sgctl info`.
pub fn info(target: Target) -> Result<Group, Error> {
    let copies = take_fds(&[target])?;
    sys::get_group(copies[0].as_fd())
        .map_err(|e| e.context(&format!("fd {} of process {}", target.fd, target.pid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pid: libc::pid_t, fd: RawFd) -> Target {
        Target { pid, fd }
    }

    #[test]
    fn parses_pid_fd() {
        assert_eq!("1234:5".parse(), Ok(t(1234, 5)));
        assert_eq!("1:0".parse(), Ok(t(1, 0)));
        assert_eq!(t(42, 7).to_string(), "42:7");
        for bad in [
            "",
            "1234",
            "1234:",
            ":5",
            "12:34:5",
            "a:5",
            "5:b",
            "0:3",
            "-1:3",
            "3:-1",
            " 3:4",
            "3:4 ",
            "99999999999:1",
        ] {
            let err = bad.parse::<Target>().unwrap_err();
            assert_eq!(err, format!("{bad:?} is not PID:FD (e.g. 1234:5)"));
        }
    }

    #[test]
    fn target_lists() {
        assert!(check_targets(&[t(1, 3), t(1, 4)]).is_ok());
        assert!(check_targets(&[t(1, 3), t(2, 3), t(1, 5), t(3, 9)]).is_ok());
        assert_eq!(
            check_targets(&[t(1, 3)]).unwrap_err(),
            "a group needs at least two sockets (1 given)"
        );
        assert_eq!(
            check_targets(&[t(7, 3), t(7, 4), t(7, 3)]).unwrap_err(),
            "7:3 is given twice (position 3)"
        );
        assert_eq!(join(&[t(7, 3), t(8, 4)]), "7:3 8:4");
    }

    #[test]
    fn finds_repeats() {
        assert_eq!(first_repeat(&[1, 2, 3]), None);
        assert_eq!(first_repeat(&[1, 2, 3, 2, 1]), Some((1, 3)));
        assert_eq!(first_repeat::<u8>(&[]), None);
    }

    #[test]
    fn refuses_one_socket_named_twice() {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = a.try_clone().unwrap();
        let me = std::process::id() as libc::pid_t;
        let (ta, tb) = (t(me, a.as_raw_fd()), t(me, b.as_raw_fd()));
        match group(&[ta, tb], Policy::Ring, None) {
            Err(Error::Msg(msg)) => {
                assert_eq!(
                    msg,
                    format!("{ta} and {tb} are the same socket: list it once")
                );
            }
            // Sandboxes without pidfd_getfd.
            Err(e) if matches!(e.errno(), Some(libc::ENOSYS | libc::EPERM)) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn describes_listeners() {
        let found = [
            Listener {
                fd: 6,
                local: "127.0.0.1:8081".parse().unwrap(),
            },
            Listener {
                fd: 12,
                local: "[::]:8082".parse().unwrap(),
            },
        ];
        assert_eq!(
            render_listeners(9, &found),
            "process 9: 2 listening TCP sockets\n  \
             FD  LOCAL\n  \
             6   127.0.0.1:8081\n  \
             12  [::]:8082\n"
        );
        assert_eq!(
            render_listeners(9, &[]),
            "process 9: 0 listening TCP sockets\n"
        );
    }
}
