// SPDX-License-Identifier: GPL-2.0

//! Discovery of the listening TCP sockets of a running process.
//!
//! Each fd of a socket reads as `socket:[INODE]` (`/proc/PID/fd/N`), and
//! `/proc/PID/net/tcp` and `tcp6` (the tables of the process's own network
//! namespace) list every TCP socket with its state and inode:
//!
//! ```text
//!   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//!    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23456 1 ...
//! ```
//!
//! Addresses are printed as the kernel holds them in memory: each 32-bit
//! word of the (network order) address as a host-order hex number, and the
//! port in host order.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;

use crate::error::Error;

/// The `st` field of a listening socket (`TCP_LISTEN`).
const TCP_LISTEN: u8 = 0x0A;

/// One socket line of `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpEntry {
    /// Local address and port.
    pub local: SocketAddr,
    /// TCP state (`0A`: listening).
    pub state: u8,
    /// Inode of the socket, as `/proc/PID/fd/N` names it.
    pub inode: u64,
}

/// A listening socket found among a process's fds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// The process's fd.
    pub fd: RawFd,
    /// Where it listens.
    pub local: SocketAddr,
}

/// A number of at most 8 hex digits (no sign, unlike `from_str_radix`).
fn hex(digits: &str) -> Option<u32> {
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// Decodes an address of `/proc/net/tcp{,6}`: 8 hex digits per 32-bit word,
/// each word the host-order reading of 4 bytes in network order.
fn parse_ip(digits: &str) -> Option<IpAddr> {
    if !digits.is_ascii() || !matches!(digits.len(), 8 | 32) {
        return None;
    }
    let mut bytes = Vec::with_capacity(16);
    for i in (0..digits.len()).step_by(8) {
        bytes.extend_from_slice(&hex(&digits[i..i + 8])?.to_ne_bytes());
    }
    Some(match <[u8; 16]>::try_from(&bytes[..]) {
        Ok(v6) => Ipv6Addr::from(v6).into(),
        Err(_) => Ipv4Addr::from(<[u8; 4]>::try_from(&bytes[..]).ok()?).into(),
    })
}

/// Decodes `ADDRESS:PORT` of `/proc/net/tcp{,6}`.
fn parse_socket_addr(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::try_from(hex(port)?).ok()?;
    Some(SocketAddr::new(parse_ip(ip)?, port))
}

/// Parses one socket line of `/proc/net/tcp` or `/proc/net/tcp6`.
pub fn parse_tcp_line(line: &str) -> Result<TcpEntry, String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 || !f[0].ends_with(':') {
        return Err(format!("not a socket line: {line:?}"));
    }
    let local = parse_socket_addr(f[1]).ok_or_else(|| format!("bad local address {:?}", f[1]))?;
    let state = hex(f[3])
        .and_then(|s| u8::try_from(s).ok())
        .ok_or_else(|| format!("bad state {:?}", f[3]))?;
    let inode = f[9].parse().map_err(|_| format!("bad inode {:?}", f[9]))?;
    Ok(TcpEntry {
        local,
        state,
        inode,
    })
}

/// Parses a whole `/proc/net/tcp{,6}` table (the first line is a header).
pub fn parse_tcp_table(text: &str) -> Result<Vec<TcpEntry>, String> {
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_tcp_line(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// The inode of a socket fd's link target `socket:[INODE]`, if it is one.
pub fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The listening sockets among `fds` (fd, link target), in ascending fd
/// order, with the local addresses of `listening` (inode to address).
pub fn match_listeners(
    fds: &[(RawFd, String)],
    listening: &HashMap<u64, SocketAddr>,
) -> Vec<Listener> {
    let mut found: Vec<Listener> = fds
        .iter()
        .filter_map(|(fd, target)| {
            let local = *listening.get(&socket_inode(target)?)?;
            Some(Listener { fd: *fd, local })
        })
        .collect();
    found.sort_by_key(|l| l.fd);
    found
}

/// The listening TCP sockets of process `pid`, in ascending fd order.
pub fn discover(pid: libc::pid_t) -> Result<Vec<Listener>, Error> {
    let mut listening = HashMap::new();
    for table in ["tcp", "tcp6"] {
        let path = format!("/proc/{pid}/net/{table}");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            // A kernel without IPv6 has no tcp6.
            Err(e) if e.kind() == io::ErrorKind::NotFound && table == "tcp6" => continue,
            Err(e) => return Err(Error::Msg(format!("cannot read {path}: {e}"))),
        };
        let entries = parse_tcp_table(&text).map_err(|e| Error::Msg(format!("{path}: {e}")))?;
        listening.extend(
            entries
                .into_iter()
                .filter(|e| e.state == TCP_LISTEN)
                .map(|e| (e.inode, e.local)),
        );
    }
    let dir = format!("/proc/{pid}/fd");
    let entries = fs::read_dir(&dir).map_err(|e| Error::Msg(format!("cannot read {dir}: {e}")))?;
    let mut fds = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::Msg(format!("cannot read {dir}: {e}")))?;
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // An fd closed since the listing is no socket of the process any more.
        if let Ok(target) = fs::read_link(entry.path()) {
            fds.push((fd, target.to_string_lossy().into_owned()));
        }
    }
    Ok(match_listeners(&fds, &listening))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/net/tcp` of a little-endian host: a listener on
    /// 127.0.0.1:8080, one on 0.0.0.0:22 and an established connection.
    const TCP: &str = "  \
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23456 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 98765 1 0000000000000000 20 4 30 10 -1
";

    /// A `/proc/net/tcp6` of a little-endian host: [::1]:443 and [::]:80.
    const TCP6: &str = "  \
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 778 1 0000000000000000 100 0 0 10 0
";

    #[test]
    #[cfg(target_endian = "little")]
    fn parses_a_tcp_table() {
        let entries = parse_tcp_table(TCP).unwrap();
        assert_eq!(
            entries,
            [
                TcpEntry {
                    local: "127.0.0.1:8080".parse().unwrap(),
                    state: TCP_LISTEN,
                    inode: 23456
                },
                TcpEntry {
                    local: "0.0.0.0:22".parse().unwrap(),
                    state: TCP_LISTEN,
                    inode: 1234
                },
                TcpEntry {
                    local: "127.0.0.1:8080".parse().unwrap(),
                    state: 1,
                    inode: 98765
                },
            ]
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn parses_a_tcp6_table() {
        let entries = parse_tcp_table(TCP6).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].local, "[::1]:443".parse().unwrap());
        assert_eq!((entries[0].state, entries[0].inode), (TCP_LISTEN, 777));
        assert_eq!(entries[1].local, "[::]:80".parse().unwrap());
    }

    #[test]
    fn decodes_addresses_in_host_order_words() {
        // Built the way the kernel prints them, on any host.
        let v4 = format!("{:08X}:1F90", u32::from_ne_bytes([10, 1, 2, 3]));
        assert_eq!(
            parse_socket_addr(&v4),
            Some("10.1.2.3:8080".parse().unwrap())
        );
        let ip: Ipv6Addr = "2001:db8::1:2".parse().unwrap();
        let v6: String = ip
            .octets()
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes(w.try_into().unwrap())))
            .collect();
        assert_eq!(
            parse_socket_addr(&format!("{v6}:0050")),
            Some(SocketAddr::new(ip.into(), 80))
        );
        for bad in [
            "",
            "0100007F",
            "0100007F:",
            "0100007:1F90",
            "0100007G:0050",
            "+100007F:0050",
            "0100007F:+050",
            "0100007F:10000",
            "é00007F:1F90",
        ] {
            assert_eq!(parse_socket_addr(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(parse_tcp_line("   0: 0100007F:1F90 00000000:0000 0A")
            .unwrap_err()
            .starts_with("not a socket line"));
        let line = "0: 0100007F:1F90 00000000:0000 XY 0:0 0:0 0 0 0 5";
        assert_eq!(parse_tcp_line(line).unwrap_err(), "bad state \"XY\"");
        let line = "0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 -5";
        assert_eq!(parse_tcp_line(line).unwrap_err(), "bad inode \"-5\"");
        let line = "0: 0100007F 00000000:0000 0A 0:0 0:0 0 0 0 5";
        assert!(parse_tcp_line(line).unwrap_err().starts_with("bad local"));
        let err = parse_tcp_table("header\n0: x\n").unwrap_err();
        assert!(err.starts_with("line 2: not a socket line"), "{err}");
        let err = parse_tcp_table("header\n\n  \n0: x\n").unwrap_err();
        assert!(err.starts_with("line 4: not a socket line"), "{err}");
        assert_eq!(parse_tcp_table("header only\n"), Ok(vec![]));
    }

    #[test]
    fn reads_socket_links() {
        assert_eq!(socket_inode("socket:[23456]"), Some(23456));
        assert_eq!(socket_inode("socket:[]"), None);
        assert_eq!(socket_inode("pipe:[23456]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn matches_fds_to_listeners_in_fd_order() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let b: SocketAddr = "[::]:80".parse().unwrap();
        let listening = HashMap::from([(23456, a), (778, b)]);
        let fds = [
            (12, "socket:[23456]".to_owned()),
            (0, "/dev/null".to_owned()),
            (3, "socket:[98765]".to_owned()),
            (7, "socket:[778]".to_owned()),
            (9, "anon_inode:[eventpoll]".to_owned()),
        ];
        assert_eq!(
            match_listeners(&fds, &listening),
            [Listener { fd: 7, local: b }, Listener { fd: 12, local: a }]
        );
    }

    #[test]
    fn discovers_own_listeners() {
        let l1 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let found = discover(std::process::id() as libc::pid_t).unwrap();
        for l in [&l1, &l2] {
            use std::os::fd::AsRawFd;
            let want = Listener {
                fd: l.as_raw_fd(),
                local: l.local_addr().unwrap(),
            };
            assert!(found.contains(&want), "{want:?} not in {found:?}");
        }
        assert!(found.windows(2).all(|w| w[0].fd < w[1].fd), "{found:?}");
    }
}
