// SPDX-License-Identifier: GPL-2.0

//! `sgctl serve`: a test server of several listening members, grouped.
//!
//! Every member that is not stalled accepts connections, writes
//! `member K\n` to the client and closes.  Stalled members never accept, so
//! their accept queues fill: with a group their overflow goes to siblings,
//! without one (`--no-group`, the baseline) it is dropped.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use crate::error::{Call, Error};
use crate::model::{Group, Policy};
use crate::table::Table;
use crate::uapi::SOCKGROUP_MAX_MEMBERS;
use crate::{net, sys};

/// Arguments of `sgctl serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Port of member 0 (0: the kernel picks; with --distinct-ports, one per member).
    #[arg(long)]
    pub port: u16,
    /// Local address; IPv6 allowed, `::` is dual-stack.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub addr: IpAddr,
    /// Number of members.
    #[arg(long, default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=SOCKGROUP_MAX_MEMBERS as i64))]
    pub listeners: u32,
    /// Member i listens on port+i (otherwise all share the port with SO_REUSEPORT).
    #[arg(long)]
    pub distinct_ports: bool,
    /// Overflow policy of the group.
    #[arg(long, value_enum, default_value_t = Policy::Ring)]
    pub policy: Policy,
    /// listen() backlog of every member.
    #[arg(long, default_value_t = 128)]
    pub backlog: u32,
    /// Members (by index) that never accept.
    #[arg(long, num_args = 1..)]
    pub stalled: Vec<u32>,
    /// Same set-up without SO_SERVICE_GROUP (the baseline).
    #[arg(long)]
    pub no_group: bool,
    /// File written once every member listens (and is grouped).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Exit after this many seconds (default: run until SIGTERM or SIGINT).
    #[arg(long)]
    pub serve_seconds: Option<u64>,
    /// Print the counts on exit as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The addresses of the members, in order, from `port`.
///
/// With `distinct` member i gets `port + i`; otherwise all share `port`.
/// Port 0 stays 0 for every member: the kernel picks (see [`run`]).
pub fn member_addrs(
    ip: IpAddr,
    port: u16,
    count: u32,
    distinct: bool,
) -> Result<Vec<SocketAddr>, String> {
    (0..count)
        .map(|i| {
            let offset = if distinct && port != 0 { i } else { 0 };
            u16::try_from(u32::from(port) + offset)
                .map(|p| SocketAddr::new(ip, p))
                .map_err(|_| {
                    format!(
                        "member {i} would need port {} (> 65535)",
                        u32::from(port) + offset
                    )
                })
        })
        .collect()
}

/// The content of the ready file: one `member K ADDRESS` line per member.
pub fn ready_text(locals: &[SocketAddr]) -> String {
    locals
        .iter()
        .enumerate()
        .map(|(i, a)| format!("member {i} {a}\n"))
        .collect()
}

/// What one member did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberReport {
    /// Its index.
    pub member: u32,
    /// Its local address.
    pub local: SocketAddr,
    /// It never accepted.
    pub stalled: bool,
    /// Connections it accepted and answered.
    pub accepted: u64,
}

/// What `serve` prints on exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServeReport {
    /// The members were grouped with SO_SERVICE_GROUP.
    pub grouped: bool,
    /// The group's policy (also given with `--no-group`, unused there).
    pub policy: Policy,
    /// Per-member counts.
    pub members: Vec<MemberReport>,
    /// Connections accepted in all.
    pub total: u64,
    /// The group as the kernel saw it at the end (grouped runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Group>,
}

impl ServeReport {
    /// A human summary.
    pub fn render(&self) -> String {
        let mut table = Table::new(["MEMBER", "LOCAL", "ACCEPTED"]);
        for m in &self.members {
            let stalled = if m.stalled { " (stalled)" } else { "" };
            table.push(vec![
                m.member.to_string(),
                m.local.to_string(),
                format!("{}{stalled}", m.accepted),
            ]);
        }
        let mut out = table.render("");
        out.push_str(&format!("total {}\n", self.total));
        if let Some(group) = &self.group {
            out.push('\n');
            out.push_str(&group.render());
        }
        out
    }
}

/// Set by SIGTERM and SIGINT.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Makes SIGTERM and SIGINT set [`STOP`] instead of killing the process.
fn catch_signals() -> Result<(), Error> {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe);
        // sigaction is zeroed plain data, filled in before use.
        let ret = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if ret != 0 {
            return Err(Error::last_os(Call::Other, "sigaction"));
        }
    }
    Ok(())
}

/// Writes `text` to `path` atomically (a temporary file, then rename).
pub(crate) fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Answers one client of member `index`.
///
/// The reply is a few bytes into a new connection's empty send buffer, so a
/// non-blocking write completes at once.  No `setsockopt` per connection
/// (such as `SO_SNDTIMEO`): that call goes through the function the module
/// hooks, and under QEMU TCG a call running while `insmod`/`rmmod` patches
/// it can hit the patching breakpoint (README, Limits).
fn answer(stream: TcpStream, index: u32) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    (&stream).write_all(format!("member {index}\n").as_bytes())
}

/// Accepts every connection waiting on `listener` (non-blocking); returns
/// how many were answered.
fn drain(listener: &TcpListener, index: u32) -> u64 {
    let mut answered = 0;
    loop {
        match listener.accept() {
            Ok((stream, _)) => match answer(stream, index) {
                Ok(()) => answered += 1,
                Err(e) => eprintln!("sgctl serve: member {index}: answering a client: {e}"),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return answered,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(e) => {
                eprintln!("sgctl serve: member {index}: accept: {e}");
                return answered;
            }
        }
    }
}

/// Serves `listeners[i]` for every `i` in `active` until a signal or the
/// deadline, counting accepted connections per member.
fn serve_loop(
    listeners: &[TcpListener],
    active: &[usize],
    deadline: Option<Instant>,
) -> Result<Vec<u64>, Error> {
    let mut counts = vec![0u64; listeners.len()];
    let mut pollfds: Vec<libc::pollfd> = active
        .iter()
        .map(|&i| libc::pollfd {
            fd: listeners[i].as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !STOP.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        // SAFETY: pollfds is a live array of pollfds.len() entries.
        let ret = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 100) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::os(Call::Other, "poll", &err));
        }
        for (p, &i) in pollfds.iter_mut().zip(active) {
            if p.revents != 0 {
                counts[i] += drain(&listeners[i], i as u32);
                p.revents = 0;
            }
        }
    }
    Ok(counts)
}

/// Opens the listening members that `args` describe.
fn open_members(args: &ServeArgs) -> Result<Vec<TcpListener>, Error> {
    let shared = !args.distinct_ports;
    let mut addrs = member_addrs(args.addr, args.port, args.listeners, args.distinct_ports)?;
    let mut listeners = Vec::with_capacity(addrs.len());
    for i in 0..addrs.len() {
        let listener = net::listen(addrs[i], shared, args.backlog)
            .map_err(|e| e.context(&format!("member {i}")))?;
        if i == 0 && shared && args.port == 0 {
            // The kernel chose member 0's port: the others share it.
            let port = local_addr(&listener)?.port();
            addrs = member_addrs(args.addr, port, args.listeners, false)?;
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Runs `sgctl serve`; returns the report to print.
pub fn run(args: &ServeArgs) -> Result<ServeReport, Error> {
    if let Some(&bad) = args.stalled.iter().find(|&&k| k >= args.listeners) {
        return Err(Error::Msg(format!(
            "--stalled {bad}: there are only members 0 to {}",
            args.listeners - 1
        )));
    }
    catch_signals()?;
    let listeners = open_members(args)?;
    let locals = listeners
        .iter()
        .map(local_addr)
        .collect::<Result<Vec<_>, _>>()?;
    if !args.no_group {
        let others: Vec<RawFd> = listeners[1..].iter().map(AsRawFd::as_raw_fd).collect();
        sys::set_group(listeners[0].as_fd(), args.policy, &others)
            .map_err(|e| e.context("grouping the members on member 0"))?;
    }
    for (i, local) in locals.iter().enumerate() {
        let stalled = if args.stalled.contains(&(i as u32)) {
            " (stalled)"
        } else {
            ""
        };
        eprintln!("sgctl serve: member {i} listening on {local}{stalled}");
    }
    if args.no_group {
        eprintln!("sgctl serve: not grouped (--no-group)");
    } else {
        eprintln!(
            "sgctl serve: grouped {} members, policy {}",
            locals.len(),
            args.policy
        );
    }
    if let Some(path) = &args.ready_file {
        write_atomically(path, &ready_text(&locals))
            .map_err(|e| Error::Msg(format!("writing {}: {e}", path.display())))?;
    }

    let active: Vec<usize> = (0..listeners.len())
        .filter(|&i| !args.stalled.contains(&(i as u32)))
        .collect();
    for &i in &active {
        listeners[i]
            .set_nonblocking(true)
            .map_err(|e| Error::os(Call::Other, format!("member {i}: O_NONBLOCK"), &e))?;
    }
    let deadline = args
        .serve_seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let counts = serve_loop(&listeners, &active, deadline)?;

    let group = if args.no_group {
        None
    } else {
        sys::get_group(listeners[0].as_fd())
            .map_err(|e| eprintln!("sgctl serve: reading the group at exit: {e}"))
            .ok()
    };
    let members = locals
        .iter()
        .zip(&counts)
        .zip(0u32..)
        .map(|((&local, &accepted), member)| MemberReport {
            member,
            local,
            stalled: args.stalled.contains(&member),
            accepted,
        })
        .collect();
    Ok(ServeReport {
        grouped: !args.no_group,
        policy: args.policy,
        members,
        total: counts.iter().sum(),
        group,
    })
}

/// The local address of a listener.
fn local_addr(listener: &TcpListener) -> Result<SocketAddr, Error> {
    listener
        .local_addr()
        .map_err(|e| Error::os(Call::Other, "getsockname", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn shared_and_distinct_ports() {
        let shared = member_addrs(LOCAL, 8080, 3, false).unwrap();
        assert!(shared.iter().all(|a| a.to_string() == "127.0.0.1:8080"));
        let distinct = member_addrs("::".parse().unwrap(), 8080, 3, true).unwrap();
        let names: Vec<String> = distinct.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["[::]:8080", "[::]:8081", "[::]:8082"]);
    }

    #[test]
    fn distinct_ports_must_fit() {
        assert!(member_addrs(LOCAL, 65535, 1, true).is_ok());
        let err = member_addrs(LOCAL, 65534, 3, true).unwrap_err();
        assert_eq!(err, "member 2 would need port 65536 (> 65535)");
        assert!(member_addrs(LOCAL, 65535, 3, false).is_ok());
        let any = member_addrs(LOCAL, 0, 3, true).unwrap();
        assert!(any.iter().all(|a| a.port() == 0));
    }

    #[test]
    fn ready_file_lists_members() {
        let locals = member_addrs(LOCAL, 9000, 2, true).unwrap();
        assert_eq!(
            ready_text(&locals),
            "member 0 127.0.0.1:9000\nmember 1 127.0.0.1:9001\n"
        );
    }

    #[test]
    fn renders_the_report() {
        let report = ServeReport {
            grouped: false,
            policy: Policy::Ring,
            members: vec![
                MemberReport {
                    member: 0,
                    local: "127.0.0.1:9000".parse().unwrap(),
                    stalled: true,
                    accepted: 0,
                },
                MemberReport {
                    member: 1,
                    local: "127.0.0.1:9000".parse().unwrap(),
                    stalled: false,
                    accepted: 12,
                },
            ],
            total: 12,
            group: None,
        };
        assert_eq!(
            report.render(),
            "MEMBER  LOCAL           ACCEPTED\n\
             0       127.0.0.1:9000  0 (stalled)\n\
             1       127.0.0.1:9000  12\n\
             total 12\n"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["members"][1]["accepted"], 12);
        assert_eq!(json["members"][0]["stalled"], true);
        assert_eq!(json["policy"], "ring");
        assert!(json.get("group").is_none());
    }
}
