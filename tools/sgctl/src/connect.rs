// SPDX-License-Identifier: GPL-2.0

//! `sgctl connect`: a client that opens fresh connections one after another
//! and counts which member served each, and which failed.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

/// Arguments of `sgctl connect`.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Server address.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub addr: IpAddr,
    /// Server port.
    #[arg(long)]
    pub port: u16,
    /// Connections to open, one after another.
    #[arg(long, default_value_t = 100)]
    pub count: u64,
    /// Time allowed to connect, and again to read the reply.
    #[arg(long, default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How one connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A `member K` line was read.
    Served(u32),
    /// The connection could not be made (refused, timed out, ...).
    ConnectFailed,
    /// Connected, but no reply within the timeout.
    Timeout,
    /// Connected, but the server closed or reset without a `member K` line.
    NoReply,
}

/// The member number in a reply `member K\n`, if it is one.
pub fn parse_reply(reply: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(reply).ok()?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    line.strip_prefix("member ")?.parse().ok()
}

/// Waits until `stream` is readable, for at most until `deadline`.
///
/// With poll(2) rather than `SO_RCVTIMEO`, so that a connection costs no
/// setsockopt call (the module hooks setsockopt; the load generator should
/// not exercise that path on every connection).
fn wait_readable(stream: &TcpStream, deadline: Instant) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let mut pfd = libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pfd` is one valid pollfd for the duration of the call.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            n if n > 0 => return Ok(()),
            0 => return Err(io::ErrorKind::TimedOut.into()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Reads until a newline, end of file or `limit` bytes, or until `deadline`.
fn read_line(stream: &mut TcpStream, limit: usize, deadline: Instant) -> io::Result<Vec<u8>> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    while reply.len() < limit && !reply.ends_with(b"\n") {
        wait_readable(stream, deadline)?;
        match stream.read(&mut buf)? {
            0 => break,
            n => reply.extend_from_slice(&buf[..n]),
        }
    }
    Ok(reply)
}

/// Connects with a deadline, using only socket(), connect(), poll() and
/// getpeername(): std's `connect_timeout` asks `getsockopt(SO_ERROR)`,
/// which goes through the path the module hooks, on every connection.
fn connect_deadline(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain syscall; the fd it returns is owned right away.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new socket that nothing else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let (sa, len) = crate::net::sockaddr(&addr);
    // SAFETY: `sa` is a valid sockaddr of `len` bytes.
    if unsafe { libc::connect(fd, std::ptr::addr_of!(sa).cast(), len) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pfd` is one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            return Err(io::ErrorKind::TimedOut.into());
        }
        // Connected if and only if there is a peer.
        stream.peer_addr()?;
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Opens one connection and reads its reply; also returns how long the
/// connect took, when it succeeded.
pub fn attempt(addr: SocketAddr, timeout: Duration) -> (Outcome, Option<Duration>) {
    let start = Instant::now();
    let Ok(mut stream) = connect_deadline(addr, timeout) else {
        return (Outcome::ConnectFailed, None);
    };
    let latency = start.elapsed();
    let outcome = match read_line(&mut stream, 64, Instant::now() + timeout) {
        Ok(reply) => parse_reply(&reply).map_or(Outcome::NoReply, Outcome::Served),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Outcome::Timeout
        }
        Err(_) => Outcome::NoReply,
    };
    (outcome, Some(latency))
}

/// Connections one member served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Served {
    /// The member.
    pub member: u32,
    /// Connections it answered.
    pub served: u64,
}

/// Connect latencies in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// Fastest.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Slowest.
    pub max: u64,
}

/// The `p`th percentile (0..=100) of sorted values, by nearest rank.
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u128::from(p.min(100)) * sorted.len() as u128).div_ceil(100) as usize;
    Some(sorted[rank.max(1) - 1])
}

/// The summary of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Connections attempted.
    pub count: u64,
    /// Connections that got a `member K` line.
    pub completed: u64,
    /// Connections that did not.
    pub failed: u64,
    /// Failed: could not connect.
    pub connect_failed: u64,
    /// Failed: connected, no reply in time.
    pub timeouts: u64,
    /// Failed: connected, closed without a reply.
    pub no_reply: u64,
    /// Completed connections per member.
    pub members: Vec<Served>,
    /// Connect latency of the connections that connected.
    pub connect_latency_us: Option<Latency>,
}

impl Summary {
    /// Tallies outcomes and connect latencies.
    pub fn new(outcomes: &[Outcome], latencies_us: &[u64]) -> Self {
        let mut per_member: BTreeMap<u32, u64> = BTreeMap::new();
        let (mut connect_failed, mut timeouts, mut no_reply) = (0, 0, 0);
        for outcome in outcomes {
            match outcome {
                Outcome::Served(k) => *per_member.entry(*k).or_default() += 1,
                Outcome::ConnectFailed => connect_failed += 1,
                Outcome::Timeout => timeouts += 1,
                Outcome::NoReply => no_reply += 1,
            }
        }
        let mut sorted = latencies_us.to_vec();
        sorted.sort_unstable();
        let connect_latency_us = (!sorted.is_empty()).then(|| Latency {
            min: sorted[0],
            p50: percentile(&sorted, 50).unwrap_or_default(),
            p99: percentile(&sorted, 99).unwrap_or_default(),
            max: sorted[sorted.len() - 1],
        });
        let failed = connect_failed + timeouts + no_reply;
        Self {
            count: outcomes.len() as u64,
            completed: outcomes.len() as u64 - failed,
            failed,
            connect_failed,
            timeouts,
            no_reply,
            members: per_member
                .into_iter()
                .map(|(member, served)| Served { member, served })
                .collect(),
            connect_latency_us,
        }
    }

    /// A human summary.
    pub fn render(&self) -> String {
        let mut out = format!(
            "connections {}: {} completed, {} failed \
             ({} connect failed, {} timed out, {} no reply)\n",
            self.count,
            self.completed,
            self.failed,
            self.connect_failed,
            self.timeouts,
            self.no_reply
        );
        for m in &self.members {
            out.push_str(&format!("member {}: {}\n", m.member, m.served));
        }
        if let Some(l) = &self.connect_latency_us {
            out.push_str(&format!(
                "connect latency (us): min {} p50 {} p99 {} max {}\n",
                l.min, l.p50, l.p99, l.max
            ));
        }
        out
    }
}

/// Runs `sgctl connect`.
pub fn run(args: &ConnectArgs) -> Summary {
    let addr = SocketAddr::new(args.addr, args.port);
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut outcomes = Vec::new();
    let mut latencies = Vec::new();
    for _ in 0..args.count {
        let (outcome, latency) = attempt(addr, timeout);
        outcomes.push(outcome);
        if let Some(l) = latency {
            latencies.push(u64::try_from(l.as_micros()).unwrap_or(u64::MAX));
        }
    }
    Summary::new(&outcomes, &latencies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replies() {
        assert_eq!(parse_reply(b"member 0\n"), Some(0));
        assert_eq!(parse_reply(b"member 12"), Some(12));
        assert_eq!(parse_reply(b"member \n"), None);
        assert_eq!(parse_reply(b"member -1\n"), None);
        assert_eq!(parse_reply(b"Member 1\n"), None);
        assert_eq!(parse_reply(b"member 1\n\n"), None);
        assert_eq!(parse_reply(b""), None);
        assert_eq!(parse_reply(&[0xff, 0xfe]), None);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&v, 100), Some(100));
        assert_eq!(percentile(&v, 0), Some(1));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn summarises_outcomes() {
        let outcomes = [
            Outcome::Served(1),
            Outcome::Served(0),
            Outcome::Served(1),
            Outcome::ConnectFailed,
            Outcome::Timeout,
            Outcome::NoReply,
        ];
        let s = Summary::new(&outcomes, &[30, 10, 20, 40, 50]);
        assert_eq!((s.count, s.completed, s.failed), (6, 3, 3));
        assert_eq!((s.connect_failed, s.timeouts, s.no_reply), (1, 1, 1));
        assert_eq!(
            s.members,
            [
                Served {
                    member: 0,
                    served: 1
                },
                Served {
                    member: 1,
                    served: 2
                }
            ]
        );
        let l = s.connect_latency_us.unwrap();
        assert_eq!((l.min, l.p50, l.p99, l.max), (10, 30, 50, 50));
        assert_eq!(
            s.render(),
            "connections 6: 3 completed, 3 failed (1 connect failed, 1 timed out, 1 no reply)\n\
             member 0: 1\nmember 1: 2\n\
             connect latency (us): min 10 p50 30 p99 50 max 50\n"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["members"][1]["served"], 2);
        assert_eq!(json["connect_latency_us"]["p99"], 50);
    }

    #[test]
    fn summarises_nothing() {
        let s = Summary::new(&[], &[]);
        assert_eq!(s.connect_latency_us, None);
        assert_eq!(
            s.render(),
            "connections 0: 0 completed, 0 failed (0 connect failed, 0 timed out, 0 no reply)\n"
        );
    }
}
