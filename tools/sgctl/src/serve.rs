// SPDX-License-Identifier: GPL-2.0

//! `sgctl serve`: a test server of several listening members, grouped.
//!
//! Every member that is not stalled accepts connections, writes
//! `member K\n` to the client and closes.  Stalled members never accept, so
//! their accept queues fill: with a group their overflow goes to siblings,
//! without one (`--no-group`, the baseline) it is dropped.  With
//! `--stall-ms` the group rescues a stalled member's queue (its waiting
//! connections move to siblings); with `--read-payload` a member first reads
//! the client's line and answers `member K LEN HASH` (what it read), so a
//! client can check that bytes sent before the move arrived intact.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use crate::connect::{fnv1a, FNV_START, MAX_PAYLOAD};
use crate::error::{Call, Error};
use crate::model::{Group, Policy};
use crate::table::Table;
use crate::uapi::{self, SOCKGROUP_F_REWRITE, SOCKGROUP_MAX_MEMBERS};
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
    /// Rewrite mode (conntrack NAT to the sibling's address and port; give
    /// the members distinct ports or addresses).
    #[arg(long, conflicts_with = "no_group")]
    pub rewrite: bool,
    /// Stall rescue after MS (0 off, else 10 to 60000): a version 2 request.
    #[arg(long, value_name = "MS", value_parser = uapi::parse_stall_ms,
          conflicts_with = "no_group")]
    pub stall_ms: Option<u32>,
    /// Read each client's first line before answering, and answer
    /// `member K LEN HASH` (its length and FNV-1a hash; `connect --payload`).
    #[arg(long)]
    pub read_payload: bool,
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
    /// Connections accepted but not answered: with `--read-payload`, the
    /// client closed or sent no full line within 5 s.
    pub unanswered: u64,
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
        if self.unanswered > 0 {
            out.push_str(&format!("unanswered {}\n", self.unanswered));
        }
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

/// Answers one client of member `index` with `text`.
///
/// The reply is a few bytes into a new connection's empty send buffer, so a
/// non-blocking write completes at once.  No `setsockopt` per connection
/// (such as `SO_SNDTIMEO`): that call goes through the function the module
/// hooks, and under QEMU TCG a call running while `insmod`/`rmmod` patches
/// it can hit the patching breakpoint (README, Limits).
fn answer(stream: &TcpStream, text: &str) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    (&*stream).write_all(text.as_bytes())
}

/// How long a `--read-payload` member waits for a client's line.
const PAYLOAD_WAIT: Duration = Duration::from_secs(5);

/// A connection whose line a member is reading (`--read-payload`).
struct Reading {
    stream: TcpStream,
    member: u32,
    len: u64,
    hash: u64,
    deadline: Instant,
}

impl Reading {
    /// Reads what has arrived; returns the reply once the line is complete
    /// (or the client has closed), `None` while more is to come, and an
    /// error when the connection failed.
    fn advance(&mut self) -> io::Result<Option<String>> {
        let mut buf = [0u8; 4096];
        loop {
            match (&self.stream).read(&mut buf) {
                Ok(0) => return Ok(Some(self.reply())),
                Ok(n) => {
                    let newline = buf[..n].iter().position(|&b| b == b'\n');
                    let line = newline.map_or(n, |i| i + 1);
                    self.hash = fnv1a(self.hash, &buf[..line]);
                    self.len += line as u64;
                    if newline.is_some() || self.len > u64::from(MAX_PAYLOAD) {
                        return Ok(Some(self.reply()));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn reply(&self) -> String {
        format!("member {} {} {:016x}\n", self.member, self.len, self.hash)
    }
}

/// Accepts every connection waiting on `listener` (non-blocking): answers
/// each at once, or (`read_payload`) adds it to `reading`.  Returns how
/// many were answered.
fn drain(
    listener: &TcpListener,
    index: u32,
    read_payload: bool,
    reading: &mut Vec<Reading>,
) -> u64 {
    let mut answered = 0;
    loop {
        match listener.accept() {
            Ok((stream, _)) if read_payload => match stream.set_nonblocking(true) {
                Ok(()) => reading.push(Reading {
                    stream,
                    member: index,
                    len: 0,
                    hash: FNV_START,
                    deadline: Instant::now() + PAYLOAD_WAIT,
                }),
                Err(e) => eprintln!("sgctl serve: member {index}: O_NONBLOCK: {e}"),
            },
            Ok((stream, _)) => match answer(&stream, &format!("member {index}\n")) {
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

/// What the serve loop counted: connections answered per member, and
/// connections accepted but not answered.
struct Counts {
    answered: Vec<u64>,
    unanswered: u64,
}

/// Serves `listeners[i]` for every `i` in `active` until a signal or the
/// deadline, counting answered connections per member.
fn serve_loop(
    listeners: &[TcpListener],
    active: &[usize],
    read_payload: bool,
    deadline: Option<Instant>,
) -> Result<Counts, Error> {
    let mut counts = Counts {
        answered: vec![0u64; listeners.len()],
        unanswered: 0,
    };
    let mut reading: Vec<Reading> = Vec::new();
    let mut pollfds: Vec<libc::pollfd> = Vec::new();
    while !STOP.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        pollfds.clear();
        pollfds.extend(
            active
                .iter()
                .map(|&i| listeners[i].as_raw_fd())
                .chain(reading.iter().map(|r| r.stream.as_raw_fd()))
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                }),
        );
        // SAFETY: pollfds is a live array of pollfds.len() entries.
        let ret = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 100) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::os(Call::Other, "poll", &err));
        }
        // Connections first (their pollfds follow the listeners'), so
        // that the indices stay valid while new ones are added.
        let now = Instant::now();
        let ready: Vec<bool> = pollfds[active.len()..]
            .iter()
            .map(|p| p.revents != 0)
            .collect();
        let mut k = 0;
        reading.retain_mut(|r| {
            let is_ready = ready.get(k).copied().unwrap_or(false);
            k += 1;
            let done = if is_ready { r.advance() } else { Ok(None) };
            match done {
                Ok(Some(reply)) => {
                    match answer(&r.stream, &reply) {
                        Ok(()) => counts.answered[r.member as usize] += 1,
                        Err(e) => {
                            eprintln!("sgctl serve: member {}: answering a client: {e}", r.member);
                            counts.unanswered += 1;
                        }
                    }
                    false
                }
                Ok(None) if now < r.deadline => true,
                Ok(None) => {
                    eprintln!(
                        "sgctl serve: member {}: no line from a client within {PAYLOAD_WAIT:?}",
                        r.member
                    );
                    counts.unanswered += 1;
                    false
                }
                Err(e) => {
                    eprintln!("sgctl serve: member {}: reading a client: {e}", r.member);
                    counts.unanswered += 1;
                    false
                }
            }
        });
        for (p, &i) in pollfds.iter().zip(active) {
            if p.revents != 0 {
                counts.answered[i] += drain(&listeners[i], i as u32, read_payload, &mut reading);
            }
        }
    }
    counts.unanswered += reading.len() as u64;
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
        let flags = if args.rewrite { SOCKGROUP_F_REWRITE } else { 0 };
        sys::set_group(
            listeners[0].as_fd(),
            args.policy,
            flags,
            args.stall_ms,
            &others,
        )
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
        let mode = if args.rewrite { ", rewrite" } else { "" };
        let stall = args
            .stall_ms
            .map_or(String::new(), |ms| format!(", stall-ms {ms}"));
        eprintln!(
            "sgctl serve: grouped {} members, policy {}{mode}{stall}",
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
    let Counts {
        answered: counts,
        unanswered,
    } = serve_loop(&listeners, &active, args.read_payload, deadline)?;

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
        unanswered,
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
            unanswered: 0,
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
