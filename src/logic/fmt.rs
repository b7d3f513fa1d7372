// SPDX-License-Identifier: GPL-2.0

//! Text forms of socket addresses, for `/proc/net/sockgroup`.

use core::fmt::{self, Write};

/// `a.b.c.d:port` or `[v6]:port` (RFC 5952: lower case, the longest run of
/// two or more zero groups as `::`).
pub struct SockAddr<'a> {
    /// IPv6 (16 bytes of `addr`) or IPv4 (the first 4).
    pub v6: bool,
    /// Network order.
    pub addr: &'a [u8; 16],
    /// Host order.
    pub port: u16,
}

impl fmt::Display for SockAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.addr;
        if !self.v6 {
            return write!(f, "{}.{}.{}.{}:{}", a[0], a[1], a[2], a[3], self.port);
        }
        let g: [u16; 8] = core::array::from_fn(|i| u16::from_be_bytes([a[2 * i], a[2 * i + 1]]));
        // The longest run of zero groups (first one on ties), if >= 2.
        let (mut best, mut best_len, mut i) = (8, 0, 0);
        while i < 8 {
            let len = g[i..].iter().take_while(|&&x| x == 0).count();
            if len > best_len {
                (best, best_len) = (i, len);
            }
            i += len.max(1);
        }
        if best_len < 2 {
            best = 8;
        }
        f.write_char('[')?;
        let mut i = 0;
        while i < 8 {
            if i == best {
                f.write_str("::")?;
                i += best_len;
                continue;
            }
            if i > 0 && i != best + best_len {
                f.write_char(':')?;
            }
            write!(f, "{:x}", g[i])?;
            i += 1;
        }
        write!(f, "]:{}", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::{format, string::String};

    fn v6(s: &str) -> String {
        let addr: std::net::Ipv6Addr = s.parse().unwrap();
        format!(
            "{}",
            SockAddr {
                v6: true,
                addr: &addr.octets(),
                port: 80
            }
        )
    }

    #[test]
    fn formats_like_the_standard_library() {
        for s in [
            "::",
            "::1",
            "1::",
            "fe80::1:2",
            "2001:db8:0:0:1:0:0:1",
            "1:2:3:4:5:6:7:8",
            "1:0:2:3:4:5:6:7",
            "::ffff:127.0.0.1",
        ] {
            let want: std::net::Ipv6Addr = s.parse().unwrap();
            let got = v6(s);
            let parsed: std::net::SocketAddrV6 = got.parse().unwrap();
            assert_eq!(parsed.ip(), &want, "{s} -> {got}");
        }
        assert_eq!(v6("2001:db8:0:0:1:0:0:1"), "[2001:db8::1:0:0:1]:80");
        assert_eq!(v6("::1"), "[::1]:80");
        assert_eq!(v6("1:0:2:3:4:5:6:7"), "[1:0:2:3:4:5:6:7]:80");
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(
            format!(
                "{}",
                SockAddr {
                    v6: false,
                    addr: &a,
                    port: 8080
                }
            ),
            "127.0.0.1:8080"
        );
    }
}
