// SPDX-License-Identifier: GPL-2.0

//! Mirror of `include/uapi/linux/sockgroup.h`, the authoritative interface.
//!
//! The structs here have the C layout of their kernel counterparts (their
//! sizes and offsets are checked by the unit tests).  Requests are encoded and
//! replies decoded in native byte order, as the kernel reads and writes them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::{fmt, mem};

use crate::model::{tcp_state_name, Family, Group, Member, Mode, Policy, Rescue, Status};

/// The SOL_SOCKET option of the module (`'S' 'G'`).
pub const SO_SERVICE_GROUP: libc::c_int = 0x5347;
/// Version 1 of the request (`struct sockgroup_req`) and of the reply.
pub const SOCKGROUP_VERSION: u32 = 1;
/// Version 2: `struct sockgroup_req_v2` (stall rescue), and the reply with
/// `struct sockgroup_info_v2` and `struct sockgroup_member_v2`.
pub const SOCKGROUP_VERSION_2: u32 = 2;
/// The least stall threshold but 0 (off).
pub const SOCKGROUP_STALL_MIN_MS: u32 = 10;
/// The greatest stall threshold.
pub const SOCKGROUP_STALL_MAX_MS: u32 = 60000;
/// A member that serves (version 2 replies).
pub const SOCKGROUP_MEMBER_SERVING: u32 = 0;
/// A member that is stalled (version 2 replies).
pub const SOCKGROUP_MEMBER_STALLED: u32 = 1;
/// Most members a group may have (the first fd plus `count` others).
pub const SOCKGROUP_MAX_MEMBERS: usize = 64;
/// Policy: the next member in ring order takes the overflow.
pub const SOCKGROUP_POLICY_RING: u32 = 0;
/// Policy: the first non-full member in list order takes the overflow.
pub const SOCKGROUP_POLICY_PRIMARY: u32 = 1;
/// Flag: redirect by rewriting the destination (conntrack NAT).
pub const SOCKGROUP_F_REWRITE: u32 = 1 << 0;

/// `struct sockgroup_req` without its flexible array `fds[]`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockgroupReq {
    /// [`SOCKGROUP_VERSION`].
    pub version: u32,
    /// `SOCKGROUP_F_*`.
    pub flags: u32,
    /// `SOCKGROUP_POLICY_*`.
    pub policy: u32,
    /// Number of `i32` fds that follow.
    pub count: u32,
}

/// `struct sockgroup_req_v2` without its flexible array `fds[]`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockgroupReqV2 {
    /// [`SOCKGROUP_VERSION_2`].
    pub version: u32,
    /// `SOCKGROUP_F_*`.
    pub flags: u32,
    /// `SOCKGROUP_POLICY_*`.
    pub policy: u32,
    /// Number of `i32` fds that follow.
    pub count: u32,
    /// Stall rescue threshold (0: off).
    pub stall_ms: u32,
    /// Zero.
    pub reserved: u32,
}

/// `struct sockgroup_info`: the head of a getsockopt reply.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockgroupInfo {
    /// [`SOCKGROUP_VERSION`].
    pub version: u32,
    /// `SOCKGROUP_F_*`.
    pub flags: u32,
    /// `SOCKGROUP_POLICY_*`.
    pub policy: u32,
    /// Number of [`SockgroupMember`] records that follow.
    pub count: u32,
    /// Unique in the network namespace.
    pub group_id: u64,
    /// SYNs that found every member full.
    pub dropped: u64,
}

/// `struct sockgroup_member`: one member of a getsockopt reply.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockgroupMember {
    /// `AF_INET` or `AF_INET6`.
    pub family: u16,
    /// Local port, host byte order.
    pub port: u16,
    /// TCP state (10: listening).
    pub state: u8,
    /// `IPV6_V6ONLY` is set (`AF_INET6` only).
    pub v6only: u8,
    /// Zero.
    pub reserved: u16,
    /// Local address in network order: 4 bytes (`AF_INET`) or 16.
    pub addr: [u8; 16],
    /// Connections waiting for `accept()`.
    pub accept_queue: u32,
    /// The `listen()` backlog.
    pub accept_limit: u32,
    /// Handshakes under way.
    pub handshakes: u32,
    /// Zero.
    pub reserved2: u32,
    /// Socket cookie (`SO_COOKIE`).
    pub cookie: u64,
    /// SYNs for this member given to a sibling.
    pub redirected_away: u64,
    /// SYNs for a sibling taken by this member.
    pub redirected_in: u64,
    /// SYNs for this member that found every member full.
    pub dropped: u64,
}

/// `struct sockgroup_info_v2`: the head of a version 2 reply.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockgroupInfoV2 {
    /// Version 1's head, with version [`SOCKGROUP_VERSION_2`].
    pub v1: SockgroupInfo,
    /// Stall rescue threshold (0: off).
    pub stall_ms: u32,
    /// Bytes of each member record that follows (at least
    /// [`MEMBER_V2_SIZE`]; a later version may append fields).
    pub member_size: u32,
}

/// `struct sockgroup_member_v2`: one member of a version 2 reply.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockgroupMemberV2 {
    /// As in version 1.
    pub m: SockgroupMember,
    /// `SOCKGROUP_MEMBER_*`.
    pub status: u32,
    /// How long it has been stalled, in ms (0: serving).
    pub stalled_ms: u32,
    /// Connections moved from its accept queue to a sibling.
    pub rescued_away: u64,
    /// Connections moved to its accept queue from a sibling.
    pub rescued_in: u64,
}

/// Size of the reply head.
pub const INFO_SIZE: usize = mem::size_of::<SockgroupInfo>();
/// Size of one member record.
pub const MEMBER_SIZE: usize = mem::size_of::<SockgroupMember>();
/// Size of the version 2 reply head.
pub const INFO_V2_SIZE: usize = mem::size_of::<SockgroupInfoV2>();
/// Size of one version 2 member record.
pub const MEMBER_V2_SIZE: usize = mem::size_of::<SockgroupMemberV2>();

/// Bytes of a version 1 getsockopt reply for a group of `members` members.
#[cfg(test)]
pub const fn reply_size(members: usize) -> usize {
    INFO_SIZE + members * MEMBER_SIZE
}

/// Bytes of a version 2 getsockopt reply for a group of `members` members.
pub const fn reply_size_v2(members: usize) -> usize {
    INFO_V2_SIZE + members * MEMBER_V2_SIZE
}

/// Checks a stall threshold given on the command line: 0 (off) or
/// [`SOCKGROUP_STALL_MIN_MS`]..=[`SOCKGROUP_STALL_MAX_MS`].
pub fn parse_stall_ms(text: &str) -> Result<u32, String> {
    let ms: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of milliseconds"))?;
    if ms != 0 && !(SOCKGROUP_STALL_MIN_MS..=SOCKGROUP_STALL_MAX_MS).contains(&ms) {
        return Err(format!(
            "{ms} ms: the stall threshold is 0 (off) or \
             {SOCKGROUP_STALL_MIN_MS} to {SOCKGROUP_STALL_MAX_MS}"
        ));
    }
    Ok(ms)
}

/// Encodes a setsockopt request: the header, then `fds` as native `i32`s.
///
/// With `stall_ms` the header is version 2's (stall rescue, 0: off), else
/// version 1's.  An empty `fds` is the request that takes the socket out of
/// its group.
pub fn encode_request(policy: Policy, flags: u32, stall_ms: Option<u32>, fds: &[RawFd]) -> Vec<u8> {
    let count = u32::try_from(fds.len()).expect("fd list longer than u32::MAX");
    let header = SockgroupReq {
        version: SOCKGROUP_VERSION,
        flags,
        policy: policy.to_uapi(),
        count,
    };
    let mut out = Vec::with_capacity(mem::size_of::<SockgroupReqV2>() + 4 * fds.len());
    match stall_ms {
        None => {
            for word in [header.version, header.flags, header.policy, header.count] {
                out.extend_from_slice(&word.to_ne_bytes());
            }
        }
        Some(stall_ms) => {
            let v2 = SockgroupReqV2 {
                version: SOCKGROUP_VERSION_2,
                flags,
                policy: header.policy,
                count,
                stall_ms,
                reserved: 0,
            };
            for word in [
                v2.version,
                v2.flags,
                v2.policy,
                v2.count,
                v2.stall_ms,
                v2.reserved,
            ] {
                out.extend_from_slice(&word.to_ne_bytes());
            }
        }
    }
    for fd in fds {
        out.extend_from_slice(&fd.to_ne_bytes());
    }
    out
}

/// Why a getsockopt reply could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the head and its members need.
    Short { len: usize, needed: usize },
    /// A reply version this tool does not know.
    Version(u32),
    /// A policy this tool does not know.
    Policy(u32),
    /// A member's address family is neither `AF_INET` nor `AF_INET6`.
    Family(u16),
    /// A version 2 reply whose member records are shorter than this tool's.
    MemberSize(u32),
    /// A member status this tool does not know.
    Status(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short { len, needed } => {
                write!(
                    f,
                    "reply of {len} bytes is shorter than the {needed} it needs"
                )
            }
            Self::Version(v) => write!(
                f,
                "reply version {v} (this sgctl knows versions {SOCKGROUP_VERSION} \
                 and {SOCKGROUP_VERSION_2})"
            ),
            Self::MemberSize(n) => write!(
                f,
                "member records of {n} bytes (version 2's are {MEMBER_V2_SIZE})"
            ),
            Self::Status(s) => write!(f, "unknown member status {s} in reply"),
            Self::Policy(p) => write!(f, "unknown policy {p} in reply"),
            Self::Family(a) => write!(f, "unknown address family {a} in reply"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Reads a `T` from the front of `bytes`.
///
/// Only used for the plain-integer structs of this module, for which every bit
/// pattern is a valid value.
fn read_struct<T: Copy>(bytes: &[u8]) -> T {
    assert!(bytes.len() >= mem::size_of::<T>());
    // SAFETY: the slice holds at least size_of::<T>() bytes (checked above),
    // read_unaligned copes with any alignment, and T is one of this module's
    // repr(C) structs of integers, valid for any bit pattern.
    unsafe { bytes.as_ptr().cast::<T>().read_unaligned() }
}

/// Decodes a getsockopt reply (head and members) into a [`Group`]: a
/// version 1 reply, or a version 2 one (with stall rescue).
pub fn decode_reply(bytes: &[u8]) -> Result<Group, DecodeError> {
    if bytes.len() < INFO_SIZE {
        return Err(DecodeError::Short {
            len: bytes.len(),
            needed: INFO_SIZE,
        });
    }
    let info: SockgroupInfo = read_struct(bytes);
    let (head, stride, stall_ms) = match info.version {
        SOCKGROUP_VERSION => (INFO_SIZE, MEMBER_SIZE, None),
        SOCKGROUP_VERSION_2 => {
            if bytes.len() < INFO_V2_SIZE {
                return Err(DecodeError::Short {
                    len: bytes.len(),
                    needed: INFO_V2_SIZE,
                });
            }
            let v2: SockgroupInfoV2 = read_struct(bytes);
            if (v2.member_size as usize) < MEMBER_V2_SIZE {
                return Err(DecodeError::MemberSize(v2.member_size));
            }
            (INFO_V2_SIZE, v2.member_size as usize, Some(v2.stall_ms))
        }
        v => return Err(DecodeError::Version(v)),
    };
    let policy = Policy::from_uapi(info.policy).ok_or(DecodeError::Policy(info.policy))?;
    let needed = head + info.count as usize * stride;
    if bytes.len() < needed {
        return Err(DecodeError::Short {
            len: bytes.len(),
            needed,
        });
    }
    let members = bytes[head..needed]
        .chunks_exact(stride)
        .zip(0u32..)
        .map(|(chunk, index)| {
            let mut member = decode_member(index, &read_struct(chunk))?;
            if stall_ms.is_some() {
                let m: SockgroupMemberV2 = read_struct(chunk);
                let status = Status::from_uapi(m.status).ok_or(DecodeError::Status(m.status))?;
                member.rescue = Some(Rescue {
                    status,
                    stalled_ms: (status == Status::Stalled).then_some(m.stalled_ms),
                    rescued_away: m.rescued_away,
                    rescued_in: m.rescued_in,
                });
            }
            Ok(member)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Group {
        id: info.group_id,
        policy,
        mode: Mode::from_flags(info.flags),
        dropped: info.dropped,
        stall_ms,
        members,
    })
}

/// Turns one member record into a [`Member`] at position `index`.
fn decode_member(index: u32, m: &SockgroupMember) -> Result<Member, DecodeError> {
    let (family, ip) = match i32::from(m.family) {
        libc::AF_INET => {
            let [a, b, c, d, ..] = m.addr;
            (Family::Inet, IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
        }
        libc::AF_INET6 => (Family::Inet6, IpAddr::V6(Ipv6Addr::from(m.addr))),
        _ => return Err(DecodeError::Family(m.family)),
    };
    let v6only = (family == Family::Inet6).then_some(m.v6only != 0);
    Ok(Member {
        index,
        family,
        local: SocketAddr::new(ip, m.port),
        v6only,
        state: m.state,
        state_name: tcp_state_name(m.state),
        accept_queue: m.accept_queue,
        accept_limit: m.accept_limit,
        handshakes: m.handshakes,
        redirected_away: m.redirected_away,
        redirected_in: m.redirected_in,
        dropped: m.dropped,
        cookie: m.cookie,
        rescue: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn layouts_match_the_c_header() {
        assert_eq!(mem::size_of::<SockgroupReq>(), 16);
        assert_eq!(INFO_SIZE, 32);
        assert_eq!(offset_of!(SockgroupInfo, count), 12);
        assert_eq!(offset_of!(SockgroupInfo, group_id), 16);
        assert_eq!(offset_of!(SockgroupInfo, dropped), 24);
        assert_eq!(MEMBER_SIZE, 72);
        assert_eq!(offset_of!(SockgroupMember, port), 2);
        assert_eq!(offset_of!(SockgroupMember, state), 4);
        assert_eq!(offset_of!(SockgroupMember, v6only), 5);
        assert_eq!(offset_of!(SockgroupMember, reserved), 6);
        assert_eq!(offset_of!(SockgroupMember, addr), 8);
        assert_eq!(offset_of!(SockgroupMember, accept_queue), 24);
        assert_eq!(offset_of!(SockgroupMember, accept_limit), 28);
        assert_eq!(offset_of!(SockgroupMember, handshakes), 32);
        assert_eq!(offset_of!(SockgroupMember, reserved2), 36);
        assert_eq!(offset_of!(SockgroupMember, cookie), 40);
        assert_eq!(offset_of!(SockgroupMember, redirected_away), 48);
        assert_eq!(offset_of!(SockgroupMember, redirected_in), 56);
        assert_eq!(offset_of!(SockgroupMember, dropped), 64);
        assert_eq!(reply_size(3), 32 + 3 * 72);
        assert_eq!(mem::size_of::<SockgroupReqV2>(), 24);
        assert_eq!(offset_of!(SockgroupReqV2, stall_ms), 16);
        assert_eq!(offset_of!(SockgroupReqV2, reserved), 20);
        assert_eq!(INFO_V2_SIZE, 40);
        assert_eq!(offset_of!(SockgroupInfoV2, stall_ms), 32);
        assert_eq!(offset_of!(SockgroupInfoV2, member_size), 36);
        assert_eq!(MEMBER_V2_SIZE, 96);
        assert_eq!(offset_of!(SockgroupMemberV2, status), 72);
        assert_eq!(offset_of!(SockgroupMemberV2, stalled_ms), 76);
        assert_eq!(offset_of!(SockgroupMemberV2, rescued_away), 80);
        assert_eq!(offset_of!(SockgroupMemberV2, rescued_in), 88);
        assert_eq!(reply_size_v2(3), 40 + 3 * 96);
    }

    fn words(bytes: &[u8]) -> Vec<u32> {
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn encodes_a_request_with_fds() {
        let req = encode_request(Policy::Primary, 0, None, &[5, 7, 9]);
        assert_eq!(req.len(), 16 + 3 * 4);
        assert_eq!(words(&req), [1, 0, 1, 3, 5, 7, 9]);
    }

    #[test]
    fn encodes_a_version_2_request() {
        let req = encode_request(Policy::Ring, SOCKGROUP_F_REWRITE, Some(200), &[5, 7]);
        assert_eq!(req.len(), 24 + 2 * 4);
        assert_eq!(words(&req), [2, 1, 0, 2, 200, 0, 5, 7]);
        // --stall-ms 0: version 2, rescue off.
        let req = encode_request(Policy::Primary, 0, Some(0), &[4]);
        assert_eq!(words(&req), [2, 0, 1, 1, 0, 0, 4]);
    }

    #[test]
    fn encodes_a_leave_request() {
        let req = encode_request(Policy::Ring, 0, None, &[]);
        assert_eq!(words(&req), [1, 0, 0, 0]);
    }

    #[test]
    fn parses_stall_thresholds() {
        assert_eq!(parse_stall_ms("0"), Ok(0));
        assert_eq!(parse_stall_ms("10"), Ok(10));
        assert_eq!(parse_stall_ms("60000"), Ok(60000));
        for bad in ["1", "9", "60001", "-1", "x", ""] {
            assert!(parse_stall_ms(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_stall_ms("9").unwrap_err(),
            "9 ms: the stall threshold is 0 (off) or 10 to 60000"
        );
    }

    /// Builds the bytes the kernel would write for `info` and `members`.
    fn reply_bytes(info: SockgroupInfo, members: &[SockgroupMember]) -> Vec<u8> {
        fn bytes_of<T>(v: &T) -> &[u8] {
            // SAFETY: the test structs are repr(C) integers with no padding.
            unsafe { std::slice::from_raw_parts((v as *const T).cast(), mem::size_of::<T>()) }
        }
        let mut out = bytes_of(&info).to_vec();
        for m in members {
            out.extend_from_slice(bytes_of(m));
        }
        out
    }

    fn sample_members() -> [SockgroupMember; 2] {
        let mut v4 = SockgroupMember {
            family: libc::AF_INET as u16,
            port: 8080,
            state: 10,
            accept_queue: 3,
            accept_limit: 128,
            handshakes: 1,
            cookie: 4097,
            redirected_away: 2,
            redirected_in: 5,
            dropped: 1,
            ..Default::default()
        };
        v4.addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        let v6 = SockgroupMember {
            family: libc::AF_INET6 as u16,
            port: 8081,
            state: 10,
            v6only: 1,
            addr: Ipv6Addr::LOCALHOST.octets(),
            accept_limit: 5,
            cookie: 4100,
            ..Default::default()
        };
        [v4, v6]
    }

    #[test]
    fn decodes_a_reply() {
        let info = SockgroupInfo {
            version: 1,
            flags: 0,
            policy: SOCKGROUP_POLICY_PRIMARY,
            count: 2,
            group_id: 7,
            dropped: 1,
        };
        let group = decode_reply(&reply_bytes(info, &sample_members())).unwrap();
        assert_eq!(group.id, 7);
        assert_eq!(group.policy, Policy::Primary);
        assert_eq!(group.mode, Mode::Steer);
        assert_eq!(group.dropped, 1);
        let [a, b] = &group.members[..] else {
            panic!("two members expected")
        };
        assert_eq!((a.index, a.family), (0, Family::Inet));
        assert_eq!(a.local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(a.v6only, None);
        assert_eq!((a.accept_queue, a.accept_limit, a.handshakes), (3, 128, 1));
        assert_eq!((a.redirected_away, a.redirected_in, a.dropped), (2, 5, 1));
        assert_eq!((a.cookie, a.state_name), (4097, "LISTEN"));
        assert_eq!((b.index, b.family), (1, Family::Inet6));
        assert_eq!(b.local, "[::1]:8081".parse().unwrap());
        assert_eq!(b.v6only, Some(true));
    }

    #[test]
    fn decodes_rewrite_mode_and_ignores_spare_bytes() {
        let info = SockgroupInfo {
            version: 1,
            flags: SOCKGROUP_F_REWRITE,
            count: 0,
            ..Default::default()
        };
        let mut bytes = reply_bytes(info, &[]);
        bytes.extend_from_slice(&[0; MEMBER_SIZE]);
        let group = decode_reply(&bytes).unwrap();
        assert_eq!(group.mode, Mode::Rewrite);
        assert!(group.members.is_empty());
    }

    #[test]
    fn rejects_bad_replies() {
        let info = SockgroupInfo {
            version: 1,
            count: 2,
            ..Default::default()
        };
        let members = sample_members();
        let short = reply_bytes(info, &members[..1]);
        assert_eq!(
            decode_reply(&short),
            Err(DecodeError::Short {
                len: 104,
                needed: 176
            })
        );
        assert!(matches!(
            decode_reply(&[0; 8]),
            Err(DecodeError::Short { .. })
        ));
        let v3 = SockgroupInfo { version: 3, ..info };
        assert_eq!(
            decode_reply(&reply_bytes(v3, &members)),
            Err(DecodeError::Version(3))
        );
        let p9 = SockgroupInfo { policy: 9, ..info };
        assert_eq!(
            decode_reply(&reply_bytes(p9, &members)),
            Err(DecodeError::Policy(9))
        );
        let mut odd = members;
        odd[1].family = 1;
        assert_eq!(
            decode_reply(&reply_bytes(info, &odd)),
            Err(DecodeError::Family(1))
        );
        assert!(DecodeError::Version(3).to_string().contains("version 3"));
    }

    fn bytes_of<T>(v: &T) -> &[u8] {
        // SAFETY: the test structs are repr(C) integers with no padding.
        unsafe { std::slice::from_raw_parts((v as *const T).cast(), mem::size_of::<T>()) }
    }

    /// The bytes of a version 2 reply: head, then each member padded to
    /// `member_size`.
    fn reply_v2(info: SockgroupInfoV2, members: &[SockgroupMemberV2]) -> Vec<u8> {
        let mut out = bytes_of(&info).to_vec();
        for m in members {
            let mut record = bytes_of(m).to_vec();
            record.resize(info.member_size as usize, 0xee);
            out.extend_from_slice(&record);
        }
        out
    }

    fn sample_v2() -> (SockgroupInfoV2, [SockgroupMemberV2; 2]) {
        let [a, b] = sample_members();
        let info = SockgroupInfoV2 {
            v1: SockgroupInfo {
                version: 2,
                count: 2,
                group_id: 9,
                ..Default::default()
            },
            stall_ms: 200,
            member_size: MEMBER_V2_SIZE as u32,
        };
        let stalled = SockgroupMemberV2 {
            m: a,
            status: SOCKGROUP_MEMBER_STALLED,
            stalled_ms: 340,
            rescued_away: 64,
            rescued_in: 0,
        };
        let serving = SockgroupMemberV2 {
            m: b,
            status: SOCKGROUP_MEMBER_SERVING,
            stalled_ms: 0,
            rescued_away: 0,
            rescued_in: 64,
        };
        (info, [stalled, serving])
    }

    #[test]
    fn decodes_a_version_2_reply() {
        let (info, members) = sample_v2();
        let group = decode_reply(&reply_v2(info, &members)).unwrap();
        assert_eq!((group.id, group.stall_ms), (9, Some(200)));
        let [a, b] = &group.members[..] else {
            panic!("two members expected")
        };
        assert_eq!(a.local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!((a.redirected_away, a.redirected_in, a.cookie), (2, 5, 4097));
        assert_eq!(
            a.rescue,
            Some(Rescue {
                status: Status::Stalled,
                stalled_ms: Some(340),
                rescued_away: 64,
                rescued_in: 0
            })
        );
        let r = b.rescue.unwrap();
        assert_eq!(
            (r.status, r.stalled_ms, r.rescued_in),
            (Status::Serving, None, 64)
        );
        // A version 1 reply has no rescue fields.
        let v1 = SockgroupInfo {
            version: 1,
            count: 2,
            ..Default::default()
        };
        let g1 = decode_reply(&reply_bytes(v1, &sample_members())).unwrap();
        assert_eq!(g1.stall_ms, None);
        assert!(g1.members.iter().all(|m| m.rescue.is_none()));
    }

    #[test]
    fn decodes_longer_version_2_members() {
        // A later module may append fields to each member: member_size says
        // where the next one starts.
        let (mut info, members) = sample_v2();
        info.member_size = 104;
        let group = decode_reply(&reply_v2(info, &members)).unwrap();
        assert_eq!(group.members[1].local.port(), 8081);
        assert_eq!(group.members[1].rescue.unwrap().rescued_in, 64);
    }

    #[test]
    fn rejects_bad_version_2_replies() {
        let (info, members) = sample_v2();
        let bytes = reply_v2(info, &members);
        assert_eq!(
            decode_reply(&bytes[..36]),
            Err(DecodeError::Short {
                len: 36,
                needed: 40
            })
        );
        assert_eq!(
            decode_reply(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Short {
                len: 231,
                needed: 232
            })
        );
        let short = SockgroupInfoV2 {
            member_size: 72,
            ..info
        };
        assert_eq!(
            decode_reply(&reply_v2(short, &[])),
            Err(DecodeError::MemberSize(72))
        );
        let mut odd = members;
        odd[0].status = 7;
        assert_eq!(
            decode_reply(&reply_v2(info, &odd)),
            Err(DecodeError::Status(7))
        );
    }
}
