// SPDX-License-Identifier: GPL-2.0

//! `sgctl connect`: a client that opens fresh connections one after another
//! and counts which member served each, and which failed.
//!
//! It is also the load generator of the benchmarks (`bench/`): several
//! clients at once (`--concurrency`), the members of `serve --distinct-ports`
//! dialled in turn (`--ports`), the connection rate and p99.9 in the JSON,
//! and every connect latency with `--samples`.
//!
//! With `--payload N` each client sends N bytes (a line) right after it
//! connected and expects the member to answer `member K LEN HASH` with the
//! length and FNV-1a hash of what it read (`serve --read-payload`): the
//! bytes a client sent before its connection was accepted arrive intact, on
//! whichever member accepts it.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Dial PORT, PORT+1, ..., PORT+N-1 in turn (the members of
    /// `serve --distinct-ports`).
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: u16,
    /// Clients at once, each opening connections one after another.
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Time allowed to connect, and again to read the reply.
    #[arg(long, default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// With --json: also list every connect latency (us), in the order the
    /// connections were opened.
    #[arg(long)]
    pub samples: bool,
    /// Send this many bytes (a line) right after connecting and check that
    /// the member read them intact (`serve --read-payload`).
    #[arg(long, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1..=MAX_PAYLOAD as i64))]
    pub payload: Option<u32>,
}

/// The largest `--payload`: it is written at once into the new
/// connection's receive window, before anyone accepts it.
pub const MAX_PAYLOAD: u32 = 16384;

/// FNV-1a (64 bits) of `bytes`, continuing from `hash` (start with
/// [`FNV_START`]): what `serve --read-payload` answers and `connect
/// --payload` checks.
pub fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The FNV-1a offset basis.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The `len` bytes connection `index` sends: `sgctl INDEX `, letters,
/// then a newline (the last byte; no other newline).
pub fn payload(index: u64, len: u32) -> Vec<u8> {
    let len = len as usize;
    let mut bytes = format!("sgctl {index} ").into_bytes();
    bytes.truncate(len.saturating_sub(1));
    let letters =
        (bytes.len()..len.saturating_sub(1)).map(|i| b'a' + ((index as usize * 7 + i) % 26) as u8);
    bytes.extend(letters);
    bytes.push(b'\n');
    bytes
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
    /// Served by member K, but it did not read the payload sent as it was.
    Mismatch(u32),
}

/// A server's reply: `member K`, or `member K LEN HASH` (the length and
/// FNV-1a hash, 16 hex digits, of the payload it read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The member that answered.
    pub member: u32,
    /// What it read, as (length, hash).
    pub read: Option<(u64, u64)>,
}

/// The reply in `reply` (one line), if it is one.
pub fn parse_reply(reply: &[u8]) -> Option<Reply> {
    let text = std::str::from_utf8(reply).ok()?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    let rest = line.strip_prefix("member ")?;
    let (member, read) = match rest.split_once(' ') {
        None => (rest, None),
        Some((member, read)) => {
            let (len, hash) = read.split_once(' ')?;
            let hash = (hash.len() == 16)
                .then(|| u64::from_str_radix(hash, 16).ok())
                .flatten()?;
            (member, Some((len.parse().ok()?, hash)))
        }
    };
    let member = member.parse().ok()?;
    Some(Reply { member, read })
}

/// What a reply means for a connection that sent `sent` (nothing: `None`).
fn judge(reply: Reply, sent: Option<&[u8]>) -> Outcome {
    let want = sent.map(|b| (b.len() as u64, fnv1a(FNV_START, b)));
    if reply.read == want {
        Outcome::Served(reply.member)
    } else {
        Outcome::Mismatch(reply.member)
    }
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

/// How one attempt went: its outcome, how long the connect took (when it
/// succeeded) and how long until the reply was read (when one was).
pub struct Attempt {
    /// How it ended.
    pub outcome: Outcome,
    /// From the start to the established connection.
    pub connect: Option<Duration>,
    /// From the start to the end of the reply.
    pub reply: Option<Duration>,
}

/// Opens one connection, sends `payload` (if any) and reads the reply.
pub fn attempt(addr: SocketAddr, timeout: Duration, payload: Option<&[u8]>) -> Attempt {
    let start = Instant::now();
    let Ok(mut stream) = connect_deadline(addr, timeout) else {
        return Attempt {
            outcome: Outcome::ConnectFailed,
            connect: None,
            reply: None,
        };
    };
    let latency = start.elapsed();
    // At most MAX_PAYLOAD bytes into a fresh connection's receive window:
    // the write completes without the server's help.
    if let Some(bytes) = payload {
        if stream.write_all(bytes).is_err() {
            return Attempt {
                outcome: Outcome::NoReply,
                connect: Some(latency),
                reply: None,
            };
        }
    }
    let outcome = match read_line(&mut stream, 64, Instant::now() + timeout) {
        Ok(reply) => parse_reply(&reply).map_or(Outcome::NoReply, |r| judge(r, payload)),
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
    Attempt {
        outcome,
        connect: Some(latency),
        reply: matches!(outcome, Outcome::Served(_)).then(|| start.elapsed()),
    }
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
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest.
    pub max: u64,
}

impl Latency {
    /// The figures of `values` (any order), if there are any.
    pub fn of(values: &[u64]) -> Option<Self> {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        Some(Self {
            min: *sorted.first()?,
            p50: percentile(&sorted, 50)?,
            p99: percentile(&sorted, 99)?,
            p999: permille(&sorted, 999)?,
            max: *sorted.last()?,
        })
    }
}

/// The `p`th percentile (0..=100) of sorted values, by nearest rank.
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    permille(sorted, p.min(100) * 10)
}

/// The `pm`th permille (0..=1000) of sorted values, by nearest rank.
pub fn permille(sorted: &[u64], pm: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u128::from(pm.min(1000)) * sorted.len() as u128).div_ceil(1000) as usize;
    Some(sorted[rank.max(1) - 1])
}

/// The summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Failed: answered, but the member read other bytes than were sent
    /// (`--payload`).
    pub payload_mismatch: u64,
    /// Bytes each connection sent (`--payload`; 0: none).
    pub payload_bytes: u32,
    /// Completed connections per member.
    pub members: Vec<Served>,
    /// Connect latency of the connections that connected.
    pub connect_latency_us: Option<Latency>,
    /// From the start of each completed connection to its reply: what a
    /// client waited in all (a connection rescued from a stalled member
    /// waits about the group's stall_ms here, not in its connect).
    pub reply_latency_us: Option<Latency>,
    /// Wall time of the whole run, in microseconds.
    pub elapsed_us: u64,
    /// Completed connections per second of the run.
    pub rate_per_s: f64,
    /// Every connect latency (us), with `--samples`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_latency_samples_us: Option<Vec<u64>>,
}

impl Summary {
    /// Tallies outcomes and connect latencies.
    #[cfg(test)]
    pub fn new(outcomes: &[Outcome], latencies_us: &[u64]) -> Self {
        Self::with_replies(outcomes, latencies_us, &[])
    }

    /// Tallies outcomes, connect latencies and reply latencies.
    pub fn with_replies(outcomes: &[Outcome], latencies_us: &[u64], replies_us: &[u64]) -> Self {
        let mut per_member: BTreeMap<u32, u64> = BTreeMap::new();
        let (mut connect_failed, mut timeouts, mut no_reply, mut mismatch) = (0, 0, 0, 0);
        for outcome in outcomes {
            match outcome {
                Outcome::Served(k) => *per_member.entry(*k).or_default() += 1,
                Outcome::ConnectFailed => connect_failed += 1,
                Outcome::Timeout => timeouts += 1,
                Outcome::NoReply => no_reply += 1,
                Outcome::Mismatch(_) => mismatch += 1,
            }
        }
        let connect_latency_us = Latency::of(latencies_us);
        let reply_latency_us = Latency::of(replies_us);
        let failed = connect_failed + timeouts + no_reply + mismatch;
        Self {
            count: outcomes.len() as u64,
            completed: outcomes.len() as u64 - failed,
            failed,
            connect_failed,
            timeouts,
            no_reply,
            payload_mismatch: mismatch,
            payload_bytes: 0,
            members: per_member
                .into_iter()
                .map(|(member, served)| Served { member, served })
                .collect(),
            connect_latency_us,
            reply_latency_us,
            elapsed_us: 0,
            rate_per_s: 0.0,
            connect_latency_samples_us: None,
        }
    }

    /// Records how long the run took, and so its rate.
    pub fn with_elapsed(mut self, elapsed: Duration) -> Self {
        self.elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let secs = elapsed.as_secs_f64();
        self.rate_per_s = if secs > 0.0 {
            self.completed as f64 / secs
        } else {
            0.0
        };
        self
    }

    /// A human summary.
    pub fn render(&self) -> String {
        let mismatch = if self.payload_bytes > 0 {
            format!(", {} payload mismatched", self.payload_mismatch)
        } else {
            String::new()
        };
        let mut out = format!(
            "connections {}: {} completed, {} failed \
             ({} connect failed, {} timed out, {} no reply{mismatch})\n",
            self.count,
            self.completed,
            self.failed,
            self.connect_failed,
            self.timeouts,
            self.no_reply
        );
        if self.payload_bytes > 0 {
            out.push_str(&format!(
                "payload {} bytes per connection\n",
                self.payload_bytes
            ));
        }
        for m in &self.members {
            out.push_str(&format!("member {}: {}\n", m.member, m.served));
        }
        if let Some(l) = &self.connect_latency_us {
            out.push_str(&format!(
                "connect latency (us): min {} p50 {} p99 {} max {}\n",
                l.min, l.p50, l.p99, l.max
            ));
        }
        if let Some(l) = &self.reply_latency_us {
            out.push_str(&format!(
                "reply latency (us): min {} p50 {} p99 {} max {}\n",
                l.min, l.p50, l.p99, l.max
            ));
        }
        out
    }
}

/// The address connection number `index` dials: `port + index % ports`
/// (wrapping within the port space).
pub fn target(addr: IpAddr, port: u16, ports: u16, index: u64) -> SocketAddr {
    let offset = index % u64::from(ports.max(1));
    // offset < ports <= u16::MAX, so it fits.
    let port = port.wrapping_add(offset as u16);
    SocketAddr::new(addr, port)
}

/// One connection's record: its index, outcome, connect and reply
/// latencies (us).
type Record = (u64, Outcome, Option<u64>, Option<u64>);

/// Opens connections until `next` reaches `args.count`; returns what each did.
fn client(args: &ConnectArgs, next: &AtomicU64) -> Vec<Record> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut records = Vec::new();
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= args.count {
            return records;
        }
        let bytes = args.payload.map(|len| payload(index, len));
        let a = attempt(
            target(args.addr, args.port, args.ports, index),
            timeout,
            bytes.as_deref(),
        );
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        records.push((index, a.outcome, a.connect.map(us), a.reply.map(us)));
    }
}

/// Runs `sgctl connect`.
pub fn run(args: &ConnectArgs) -> Summary {
    let next = AtomicU64::new(0);
    let start = Instant::now();
    let mut records: Vec<Record> = if args.concurrency <= 1 {
        client(args, &next)
    } else {
        std::thread::scope(|scope| {
            let clients: Vec<_> = (0..args.concurrency)
                .map(|_| scope.spawn(|| client(args, &next)))
                .collect();
            clients
                .into_iter()
                // A client thread does not panic; if one did, its records are lost.
                .flat_map(|c| c.join().unwrap_or_default())
                .collect()
        })
    };
    let elapsed = start.elapsed();
    records.sort_unstable_by_key(|r| r.0);
    let outcomes: Vec<Outcome> = records.iter().map(|r| r.1).collect();
    let latencies: Vec<u64> = records.iter().filter_map(|r| r.2).collect();
    let replies: Vec<u64> = records.iter().filter_map(|r| r.3).collect();
    let mut summary = Summary::with_replies(&outcomes, &latencies, &replies).with_elapsed(elapsed);
    summary.payload_bytes = args.payload.unwrap_or(0);
    if args.samples {
        Summary {
            connect_latency_samples_us: Some(latencies),
            ..summary
        }
    } else {
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replies() {
        let plain = |member| Some(Reply { member, read: None });
        assert_eq!(parse_reply(b"member 0\n"), plain(0));
        assert_eq!(parse_reply(b"member 12"), plain(12));
        assert_eq!(
            parse_reply(b"member 2 1000 00000000deadbeef\n"),
            Some(Reply {
                member: 2,
                read: Some((1000, 0xdead_beef))
            })
        );
        assert_eq!(parse_reply(b"member 2 1000\n"), None);
        assert_eq!(parse_reply(b"member 2 1000 deadbeef\n"), None);
        assert_eq!(parse_reply(b"member 2 x 00000000deadbeef\n"), None);
        assert_eq!(parse_reply(b"member 2 1 00000000deadbeef extra\n"), None);
        assert_eq!(parse_reply(b"member \n"), None);
        assert_eq!(parse_reply(b"member -1\n"), None);
        assert_eq!(parse_reply(b"Member 1\n"), None);
        assert_eq!(parse_reply(b"member 1\n\n"), None);
        assert_eq!(parse_reply(b""), None);
        assert_eq!(parse_reply(&[0xff, 0xfe]), None);
    }

    #[test]
    fn payloads_are_lines_of_their_length() {
        for len in [1, 2, 5, 9, 100, MAX_PAYLOAD] {
            let p = payload(42, len);
            assert_eq!(p.len(), len as usize);
            assert_eq!(p.last(), Some(&b'\n'));
            assert_eq!(p.iter().filter(|&&b| b == b'\n').count(), 1);
        }
        assert_eq!(payload(3, 12), b"sgctl 3 def\n");
        assert_ne!(payload(3, 100), payload(4, 100));
        // FNV-1a's published test values.
        assert_eq!(fnv1a(FNV_START, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_START, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            fnv1a(fnv1a(FNV_START, b"fo"), b"o"),
            fnv1a(FNV_START, b"foo")
        );
    }

    #[test]
    fn judges_payload_replies() {
        let sent = payload(7, 50);
        let good = Reply {
            member: 1,
            read: Some((50, fnv1a(FNV_START, &sent))),
        };
        assert_eq!(judge(good, Some(&sent)), Outcome::Served(1));
        assert_eq!(judge(good, None), Outcome::Mismatch(1));
        let short = Reply {
            read: Some((49, fnv1a(FNV_START, &sent[..49]))),
            ..good
        };
        assert_eq!(judge(short, Some(&sent)), Outcome::Mismatch(1));
        let plain = Reply {
            member: 2,
            read: None,
        };
        assert_eq!(judge(plain, Some(&sent)), Outcome::Mismatch(2));
        assert_eq!(judge(plain, None), Outcome::Served(2));
        let s = Summary::new(&[Outcome::Mismatch(1), Outcome::Served(2)], &[5, 6]);
        assert_eq!((s.completed, s.failed, s.payload_mismatch), (1, 1, 1));
        let s = Summary {
            payload_bytes: 50,
            ..s
        };
        assert_eq!(
            s.render(),
            "connections 2: 1 completed, 1 failed \
             (0 connect failed, 0 timed out, 0 no reply, 1 payload mismatched)\n\
             payload 50 bytes per connection\n\
             member 2: 1\n\
             connect latency (us): min 5 p50 5 p99 6 max 6\n"
        );
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
        let w: Vec<u64> = (1..=2000).collect();
        assert_eq!(permille(&w, 999), Some(1998));
        assert_eq!(permille(&w, 1000), Some(2000));
        assert_eq!(permille(&v, 999), Some(100));
        assert_eq!(permille(&[], 999), None);
    }

    #[test]
    fn dials_ports_in_turn() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let ports: Vec<u16> = (0..7).map(|i| target(lo, 9000, 3, i).port()).collect();
        assert_eq!(ports, [9000, 9001, 9002, 9000, 9001, 9002, 9000]);
        assert_eq!(target(lo, 9000, 1, 5).port(), 9000);
        assert_eq!(target(lo, 65535, 2, 1).port(), 0);
    }

    #[test]
    fn rate_from_elapsed() {
        let s = Summary::new(&[Outcome::Served(0); 10], &[1; 10])
            .with_elapsed(Duration::from_millis(500));
        assert_eq!(s.elapsed_us, 500_000);
        assert!((s.rate_per_s - 20.0).abs() < 1e-9);
        let none = Summary::new(&[], &[]).with_elapsed(Duration::ZERO);
        assert_eq!(none.rate_per_s, 0.0);
        assert_eq!(
            serde_json::to_value(&none).unwrap()["connect_latency_samples_us"],
            serde_json::Value::Null
        );
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
        assert_eq!((l.min, l.p50, l.p99, l.p999, l.max), (10, 30, 50, 50, 50));
        assert_eq!(
            s.render(),
            "connections 6: 3 completed, 3 failed (1 connect failed, 1 timed out, 1 no reply)\n\
             member 0: 1\nmember 1: 2\n\
             connect latency (us): min 10 p50 30 p99 50 max 50\n"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["members"][1]["served"], 2);
        assert_eq!(json["connect_latency_us"]["p99"], 50);
        assert_eq!(json["reply_latency_us"], serde_json::Value::Null);
        let r = Summary::with_replies(&outcomes[..3], &[1, 2, 3], &[300, 100, 200]);
        let l = r.reply_latency_us.unwrap();
        assert_eq!((l.min, l.p50, l.max), (100, 200, 300));
        assert!(r
            .render()
            .ends_with("reply latency (us): min 100 p50 200 p99 300 max 300\n"));
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
