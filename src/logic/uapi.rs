// SPDX-License-Identifier: GPL-2.0

//! The `SO_SERVICE_GROUP` interface of `include/uapi/linux/sockgroup.h`:
//! request parsing and validation, and the getsockopt reply's encoding.
//!
//! The layouts are native-endian byte arrays at fixed offsets, so the logic
//! needs no kernel type; the module checks at build time that the sizes
//! here match the header's structs.

use super::ring::Policy;

/// The option name.
pub const SO_SERVICE_GROUP: i32 = 0x5347;
/// `SOCKGROUP_VERSION`: `struct sockgroup_req`, version 1 replies.
pub const VERSION: u32 = 1;
/// `SOCKGROUP_VERSION_2`: `struct sockgroup_req_v2`, version 2 replies.
pub const VERSION_2: u32 = 2;
/// `SOCKGROUP_STALL_MIN_MS`: the least stall threshold but 0 (off).
pub const STALL_MIN_MS: u32 = 10;
/// `SOCKGROUP_STALL_MAX_MS`: the greatest stall threshold.
pub const STALL_MAX_MS: u32 = 60000;
/// `SOCKGROUP_MEMBER_SERVING`.
pub const MEMBER_SERVING: u32 = 0;
/// `SOCKGROUP_MEMBER_STALLED`.
pub const MEMBER_STALLED: u32 = 1;
/// `SOCKGROUP_MAX_MEMBERS`: the calling socket and at most 63 listed ones.
pub const MAX_MEMBERS: usize = 64;
/// `SOCKGROUP_MAX_GROUPS`: groups per network namespace.
pub const MAX_GROUPS: usize = 256;
/// `SOCKGROUP_MAX_NET_MEMBERS`: members of all groups of a network namespace.
pub const MAX_NET_MEMBERS: usize = 2048;
/// `SOCKGROUP_F_REWRITE`.
pub const F_REWRITE: u32 = 1 << 0;
/// The flags this version accepts (`SOCKGROUP_F_ALL`).
pub const F_ALL: u32 = F_REWRITE;
/// `sizeof(struct sockgroup_req)`.
pub const REQ_LEN: usize = 16;
/// `sizeof(struct sockgroup_req_v2)`: the longest header.
pub const REQ2_LEN: usize = 24;
/// `sizeof(struct sockgroup_info)`.
pub const INFO_LEN: usize = 32;
/// `sizeof(struct sockgroup_member)`.
pub const MEMBER_LEN: usize = 72;
/// `sizeof(struct sockgroup_info_v2)`.
pub const INFO2_LEN: usize = 40;
/// `sizeof(struct sockgroup_member_v2)`.
pub const MEMBER2_LEN: usize = 96;

/// Why a request is refused; each maps to the errno the header documents.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// `EINVAL`: malformed request, a socket listed twice, one not listening.
    Invalid,
    /// `E2BIG`: too many members.
    TooBig,
    /// `EOPNOTSUPP`: not TCP over IPv4 or IPv6.
    NotTcp,
    /// `EXDEV`: another network namespace.
    OtherNet,
    /// `EAFNOSUPPORT`: another address family.
    OtherFamily,
    /// `EBUSY`: in another group.
    InOtherGroup,
    /// `ENOSPC`: the namespace would have more than [`MAX_GROUPS`] groups
    /// or [`MAX_NET_MEMBERS`] members.
    NoRoom,
}

/// A request's header, checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Request {
    /// `SOCKGROUP_F_*`.
    pub flags: u32,
    /// The policy.
    pub policy: Policy,
    /// How many fds follow.
    pub count: usize,
    /// Stall rescue's threshold in milliseconds (0: off; version 1: 0).
    pub stall_ms: u32,
    /// The header's length: the fds start there.
    pub header_len: usize,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_ne_bytes(w)
}

/// Checks the header of a request of `optlen` bytes.
///
/// `header` holds the first `min(optlen, REQ2_LEN)` bytes of the request,
/// zeros after them; callers check `optlen >= REQ_LEN` (with [`check_len`])
/// before reading them.
pub fn parse_header(optlen: usize, header: &[u8; REQ2_LEN]) -> Result<Request, Refusal> {
    let (version, flags, policy, count) = (
        u32_at(header, 0),
        u32_at(header, 4),
        u32_at(header, 8),
        u32_at(header, 12),
    );
    let (header_len, stall_ms) = match version {
        VERSION => (REQ_LEN, 0),
        VERSION_2 if optlen >= REQ2_LEN => {
            let (stall_ms, reserved) = (u32_at(header, 16), u32_at(header, 20));
            if reserved != 0
                || (stall_ms != 0 && !(STALL_MIN_MS..=STALL_MAX_MS).contains(&stall_ms))
            {
                return Err(Refusal::Invalid);
            }
            (REQ2_LEN, stall_ms)
        }
        _ => return Err(Refusal::Invalid),
    };
    if flags & !F_ALL != 0 {
        return Err(Refusal::Invalid);
    }
    let policy = match policy {
        0 => Policy::Ring,
        1 => Policy::Primary,
        _ => return Err(Refusal::Invalid),
    };
    let count = usize::try_from(count).map_err(|_| Refusal::TooBig)?;
    if count > MAX_MEMBERS - 1 {
        return Err(Refusal::TooBig);
    }
    if optlen != header_len + 4 * count {
        return Err(Refusal::Invalid);
    }
    Ok(Request {
        flags,
        policy,
        count,
        stall_ms,
        header_len,
    })
}

/// The reply version a getsockopt caller asks for: the first `__u32` of its
/// buffer (`None`: shorter than 4 bytes), [`VERSION_2`] or else version 1.
pub fn reply_version(first: Option<[u8; 4]>) -> u32 {
    match first.map(u32::from_ne_bytes) {
        Some(VERSION_2) => VERSION_2,
        _ => VERSION,
    }
}

/// Checks that a request is at least a header long.
pub fn check_len(optlen: usize) -> Result<(), Refusal> {
    if optlen < REQ_LEN {
        Err(Refusal::Invalid)
    } else {
        Ok(())
    }
}

/// The fds that follow the header (`bytes` holds exactly `4 * count`).
pub fn fds(bytes: &[u8]) -> impl Iterator<Item = i32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
}

/// Address family of a socket as far as grouping cares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fam {
    /// IPv4.
    V4,
    /// IPv6 that also takes IPv4 (dual-stack).
    V6Dual,
    /// IPv6 only (`IPV6_V6ONLY`).
    V6Only,
}

impl Fam {
    /// Whether a socket of family `self` may join one of `anchor`'s group.
    pub fn joins(self, anchor: Fam) -> bool {
        use Fam::*;
        matches!(
            (anchor, self),
            (V4, V4) | (V4, V6Dual) | (V6Dual, _) | (V6Only, V6Dual) | (V6Only, V6Only)
        )
    }

    /// Whether a socket of family `self` can take a connection over IPv4 (`v4`) or IPv6.
    pub fn takes(self, v4: bool) -> bool {
        match self {
            Fam::V4 => v4,
            Fam::V6Dual => true,
            Fam::V6Only => !v4,
        }
    }
}

/// Where a connection rewritten to a member goes: `Some(Some(addr))`: its
/// bound address and port; `Some(None)`: its port only (it is bound to the
/// wildcard address); `None`: it cannot take a connection of this family
/// (`v4`: the packet is IPv4).
pub fn rewrite_target(v4: bool, fam: Fam, addr: &[u8; 16]) -> Option<Option<[u8; 16]>> {
    let zero = addr.iter().all(|&b| b == 0);
    let mapped = addr[..10].iter().all(|&b| b == 0) && addr[10] == 0xff && addr[11] == 0xff;
    match (v4, fam) {
        (true, Fam::V4) if addr[..4] == [0; 4] => Some(None),
        (true, Fam::V4) => Some(Some(*addr)),
        (true, Fam::V6Dual) if zero => Some(None),
        (true, Fam::V6Dual) if mapped => {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&addr[12..]);
            Some(Some(a))
        }
        (true, _) => None,
        (false, Fam::V4) => None,
        (false, _) if zero => Some(None),
        (false, _) if mapped => None,
        (false, _) => Some(Some(*addr)),
    }
}

/// What the request checks of each socket, read from it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Candidate {
    /// A TCP socket of an IP family (`None`: anything else).
    pub fam: Option<Fam>,
    /// In the calling socket's network namespace.
    pub same_net: bool,
    /// Listening.
    pub listening: bool,
    /// Identity of the socket (its address).
    pub key: usize,
    /// The group it is in, if any.
    pub group: Option<u64>,
}

/// Checks the calling socket `anchor` and the `listed` ones, in order.
///
/// Each socket must be listening TCP, of `anchor`'s namespace and a
/// compatible family, listed once, and in no group or in `anchor`'s own
/// (which the request then re-forms).
pub fn validate(anchor: &Candidate, listed: &[Candidate]) -> Result<(), Refusal> {
    let anchor_fam = anchor.fam.ok_or(Refusal::NotTcp)?;
    for (i, c) in core::iter::once(anchor).chain(listed).enumerate() {
        let fam = c.fam.ok_or(Refusal::NotTcp)?;
        if !c.same_net {
            return Err(Refusal::OtherNet);
        }
        if !fam.joins(anchor_fam) {
            return Err(Refusal::OtherFamily);
        }
        if !c.listening {
            return Err(Refusal::Invalid);
        }
        if core::iter::once(anchor)
            .chain(listed)
            .take(i)
            .any(|p| p.key == c.key)
        {
            return Err(Refusal::Invalid);
        }
        if c.group.is_some() && c.group != anchor.group {
            return Err(Refusal::InOtherGroup);
        }
    }
    Ok(())
}

/// Checks that a request leaves its namespace within [`MAX_GROUPS`] and
/// [`MAX_NET_MEMBERS`]: the namespace has `groups` groups and `members`
/// members now; the request re-forms a group of `reformed` members (`None`:
/// it forms a new group) into one of `new` members (`validate` checked that
/// every other member it lists is in no group).
pub fn check_room(
    groups: usize,
    members: usize,
    reformed: Option<usize>,
    new: usize,
) -> Result<(), Refusal> {
    let groups = match reformed {
        Some(_) => groups,
        None => groups.saturating_add(1),
    };
    let members = members
        .saturating_sub(reformed.unwrap_or(0))
        .saturating_add(new);
    if groups > MAX_GROUPS || members > MAX_NET_MEMBERS {
        return Err(Refusal::NoRoom);
    }
    Ok(())
}

/// The group part of a getsockopt reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Info {
    /// `SOCKGROUP_F_*`.
    pub flags: u32,
    /// `SOCKGROUP_POLICY_*`.
    pub policy: u32,
    /// Members that follow.
    pub count: u32,
    /// The group's id.
    pub group_id: u64,
    /// SYNs that found every member full.
    pub dropped: u64,
    /// Stall rescue's threshold (0: off).
    pub stall_ms: u32,
}

impl Info {
    /// Encodes `struct sockgroup_info_v2`.
    pub fn encode_v2(&self) -> [u8; INFO2_LEN] {
        let mut b = [0u8; INFO2_LEN];
        b[..INFO_LEN].copy_from_slice(&self.encode());
        b[0..4].copy_from_slice(&VERSION_2.to_ne_bytes());
        b[32..36].copy_from_slice(&self.stall_ms.to_ne_bytes());
        b[36..40].copy_from_slice(&(MEMBER2_LEN as u32).to_ne_bytes());
        b
    }

    /// Encodes `struct sockgroup_info`.
    pub fn encode(&self) -> [u8; INFO_LEN] {
        let mut b = [0u8; INFO_LEN];
        b[0..4].copy_from_slice(&VERSION.to_ne_bytes());
        b[4..8].copy_from_slice(&self.flags.to_ne_bytes());
        b[8..12].copy_from_slice(&self.policy.to_ne_bytes());
        b[12..16].copy_from_slice(&self.count.to_ne_bytes());
        b[16..24].copy_from_slice(&self.group_id.to_ne_bytes());
        b[24..32].copy_from_slice(&self.dropped.to_ne_bytes());
        b
    }
}

/// One member of a getsockopt reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct MemberInfo {
    /// `AF_INET` or `AF_INET6`.
    pub family: u16,
    /// Local port, host order.
    pub port: u16,
    /// TCP state.
    pub state: u8,
    /// `IPV6_V6ONLY`.
    pub v6only: bool,
    /// Local address, network order (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
    /// Connections waiting for accept().
    pub accept_queue: u32,
    /// The listen() backlog.
    pub accept_limit: u32,
    /// Handshakes under way.
    pub handshakes: u32,
    /// Socket cookie.
    pub cookie: u64,
    /// SYNs for this member given to a sibling.
    pub redirected_away: u64,
    /// SYNs for a sibling taken by this member.
    pub redirected_in: u64,
    /// SYNs for this member that found every member full.
    pub dropped: u64,
    /// Stalled (else serving).
    pub stalled: bool,
    /// How long its oldest connection has waited, when stalled (ms).
    pub stalled_ms: u32,
    /// Connections moved from its accept queue to a sibling.
    pub rescued_away: u64,
    /// Connections moved to its accept queue from a stalled sibling.
    pub rescued_in: u64,
}

impl MemberInfo {
    /// Encodes `struct sockgroup_member`.
    pub fn encode(&self) -> [u8; MEMBER_LEN] {
        let mut b = [0u8; MEMBER_LEN];
        b[0..2].copy_from_slice(&self.family.to_ne_bytes());
        b[2..4].copy_from_slice(&self.port.to_ne_bytes());
        b[4] = self.state;
        b[5] = u8::from(self.v6only);
        b[8..24].copy_from_slice(&self.addr);
        b[24..28].copy_from_slice(&self.accept_queue.to_ne_bytes());
        b[28..32].copy_from_slice(&self.accept_limit.to_ne_bytes());
        b[32..36].copy_from_slice(&self.handshakes.to_ne_bytes());
        b[40..48].copy_from_slice(&self.cookie.to_ne_bytes());
        b[48..56].copy_from_slice(&self.redirected_away.to_ne_bytes());
        b[56..64].copy_from_slice(&self.redirected_in.to_ne_bytes());
        b[64..72].copy_from_slice(&self.dropped.to_ne_bytes());
        b
    }

    /// Encodes `struct sockgroup_member_v2`.
    pub fn encode_v2(&self) -> [u8; MEMBER2_LEN] {
        let mut b = [0u8; MEMBER2_LEN];
        b[..MEMBER_LEN].copy_from_slice(&self.encode());
        let status = if self.stalled {
            MEMBER_STALLED
        } else {
            MEMBER_SERVING
        };
        b[72..76].copy_from_slice(&status.to_ne_bytes());
        b[76..80].copy_from_slice(&self.stalled_ms.to_ne_bytes());
        b[80..88].copy_from_slice(&self.rescued_away.to_ne_bytes());
        b[88..96].copy_from_slice(&self.rescued_in.to_ne_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u32, flags: u32, policy: u32, count: u32) -> [u8; REQ2_LEN] {
        header2(version, flags, policy, count, 0)
    }

    fn header2(version: u32, flags: u32, policy: u32, count: u32, stall: u32) -> [u8; REQ2_LEN] {
        let mut h = [0u8; REQ2_LEN];
        for (i, v) in [version, flags, policy, count, stall].iter().enumerate() {
            h[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        h
    }

    #[test]
    fn version_2_header() {
        let r = parse_header(REQ2_LEN + 8, &header2(2, 0, 0, 2, 250)).unwrap();
        assert_eq!((r.stall_ms, r.header_len, r.count), (250, REQ2_LEN, 2));
        assert_eq!(
            parse_header(REQ2_LEN, &header2(2, 0, 0, 0, 0))
                .unwrap()
                .stall_ms,
            0
        );
        // Bounds of the threshold, and the reserved word.
        assert!(parse_header(REQ2_LEN, &header2(2, 0, 0, 0, STALL_MIN_MS)).is_ok());
        assert!(parse_header(REQ2_LEN, &header2(2, 0, 0, 0, STALL_MAX_MS)).is_ok());
        for bad in [1, STALL_MIN_MS - 1, STALL_MAX_MS + 1, u32::MAX] {
            assert_eq!(
                parse_header(REQ2_LEN, &header2(2, 0, 0, 0, bad)),
                Err(Refusal::Invalid)
            );
        }
        let mut h = header2(2, 0, 0, 0, 100);
        h[20] = 1;
        assert_eq!(parse_header(REQ2_LEN, &h), Err(Refusal::Invalid));
        // A version 2 request shorter than its header, or a version 1
        // request of version 2's length.
        assert_eq!(
            parse_header(REQ_LEN, &header2(2, 0, 0, 0, 0)),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            parse_header(REQ2_LEN, &header(1, 0, 0, 0)),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            parse_header(REQ_LEN + 8, &header(1, 0, 0, 2))
                .unwrap()
                .header_len,
            REQ_LEN
        );
        assert_eq!(reply_version(Some(2u32.to_ne_bytes())), VERSION_2);
        assert_eq!(reply_version(Some(1u32.to_ne_bytes())), VERSION);
        assert_eq!(reply_version(Some(7u32.to_ne_bytes())), VERSION);
        assert_eq!(reply_version(None), VERSION);
    }

    #[test]
    fn room_bounds_groups_and_members() {
        assert_eq!(check_room(0, 0, None, 2), Ok(()));
        assert_eq!(
            check_room(MAX_GROUPS - 1, 2 * (MAX_GROUPS - 1), None, 2),
            Ok(())
        );
        assert_eq!(
            check_room(MAX_GROUPS, 2 * MAX_GROUPS, None, 2),
            Err(Refusal::NoRoom)
        );
        // Re-forming a group at the limit adds no group.
        assert_eq!(check_room(MAX_GROUPS, 2 * MAX_GROUPS, Some(2), 3), Ok(()));
        assert_eq!(check_room(1, MAX_NET_MEMBERS, Some(64), 64), Ok(()));
        assert_eq!(
            check_room(1, MAX_NET_MEMBERS, Some(2), 3),
            Err(Refusal::NoRoom)
        );
        assert_eq!(
            check_room(32, MAX_NET_MEMBERS, None, 2),
            Err(Refusal::NoRoom)
        );
        assert_eq!(check_room(31, MAX_NET_MEMBERS - 2, None, 2), Ok(()));
    }

    #[test]
    fn header_checks_each_field() {
        let ok = parse_header(REQ_LEN + 8, &header(1, 0, 1, 2));
        assert_eq!(
            ok,
            Ok(Request {
                flags: 0,
                policy: Policy::Primary,
                count: 2,
                stall_ms: 0,
                header_len: REQ_LEN,
            })
        );
        assert_eq!(parse_header(REQ_LEN, &header(1, 0, 0, 0)).unwrap().count, 0);
        assert_eq!(
            parse_header(REQ_LEN + 8, &header(3, 0, 0, 2)),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            parse_header(REQ_LEN + 8, &header(1, 1 << 7, 0, 2)),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            parse_header(REQ_LEN + 8, &header(1, F_REWRITE, 0, 2)).map(|r| r.flags),
            Ok(F_REWRITE)
        );
        assert_eq!(
            parse_header(REQ_LEN + 8, &header(1, 0, 7, 2)),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            parse_header(REQ_LEN + 4, &header(1, 0, 0, 2)),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            parse_header(REQ_LEN + 12, &header(1, 0, 0, 2)),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            parse_header(REQ_LEN + 4 * 64, &header(1, 0, 0, 64)),
            Err(Refusal::TooBig)
        );
        assert_eq!(
            parse_header(REQ_LEN + 4 * 63, &header(1, 0, 0, 63))
                .unwrap()
                .count,
            63
        );
        assert_eq!(
            parse_header(REQ_LEN, &header(1, 0, 0, u32::MAX)),
            Err(Refusal::TooBig)
        );
        assert_eq!(check_len(REQ_LEN - 1), Err(Refusal::Invalid));
    }

    #[test]
    fn fds_are_native_endian_words() {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&7i32.to_ne_bytes());
        b[4..].copy_from_slice(&(-1i32).to_ne_bytes());
        assert!(fds(&b).eq([7, -1]));
    }

    fn cand(key: usize) -> Candidate {
        Candidate {
            fam: Some(Fam::V4),
            same_net: true,
            listening: true,
            key,
            group: None,
        }
    }

    #[test]
    fn validation_refuses_each_case() {
        let a = cand(1);
        assert_eq!(validate(&a, &[cand(2), cand(3)]), Ok(()));
        assert_eq!(
            validate(
                &a,
                &[Candidate {
                    fam: None,
                    ..cand(2)
                }]
            ),
            Err(Refusal::NotTcp)
        );
        assert_eq!(
            validate(
                &a,
                &[Candidate {
                    same_net: false,
                    ..cand(2)
                }]
            ),
            Err(Refusal::OtherNet)
        );
        assert_eq!(
            validate(
                &a,
                &[Candidate {
                    fam: Some(Fam::V6Only),
                    ..cand(2)
                }]
            ),
            Err(Refusal::OtherFamily)
        );
        assert_eq!(
            validate(
                &a,
                &[Candidate {
                    fam: Some(Fam::V6Dual),
                    ..cand(2)
                }]
            ),
            Ok(())
        );
        assert_eq!(
            validate(
                &a,
                &[Candidate {
                    listening: false,
                    ..cand(2)
                }]
            ),
            Err(Refusal::Invalid)
        );
        assert_eq!(validate(&a, &[cand(2), cand(2)]), Err(Refusal::Invalid));
        assert_eq!(validate(&a, &[cand(1)]), Err(Refusal::Invalid));
        assert_eq!(
            validate(
                &a,
                &[Candidate {
                    group: Some(4),
                    ..cand(2)
                }]
            ),
            Err(Refusal::InOtherGroup)
        );
        let member = Candidate {
            group: Some(4),
            ..cand(1)
        };
        assert_eq!(
            validate(
                &member,
                &[Candidate {
                    group: Some(4),
                    ..cand(2)
                }]
            ),
            Ok(())
        );
        assert_eq!(
            validate(
                &Candidate {
                    listening: false,
                    ..a
                },
                &[cand(2)]
            ),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn families() {
        assert!(Fam::V6Dual.takes(true) && Fam::V6Dual.takes(false));
        assert!(Fam::V4.takes(true) && !Fam::V4.takes(false));
        assert!(!Fam::V6Only.takes(true) && Fam::V6Only.takes(false));
        assert!(!Fam::V4.joins(Fam::V6Only) && !Fam::V6Only.joins(Fam::V4));
    }

    #[test]
    fn rewrite_targets() {
        let mut v4 = [0u8; 16];
        v4[..4].copy_from_slice(&[127, 0, 0, 2]);
        assert_eq!(rewrite_target(true, Fam::V4, &v4), Some(Some(v4)));
        assert_eq!(rewrite_target(true, Fam::V4, &[0; 16]), Some(None));
        assert_eq!(rewrite_target(false, Fam::V4, &v4), None);
        assert_eq!(rewrite_target(true, Fam::V6Dual, &[0; 16]), Some(None));
        assert_eq!(rewrite_target(true, Fam::V6Only, &[0; 16]), None);
        let mut mapped = [0u8; 16];
        mapped[10..12].copy_from_slice(&[0xff, 0xff]);
        mapped[12..].copy_from_slice(&[127, 0, 0, 2]);
        assert_eq!(rewrite_target(true, Fam::V6Dual, &mapped), Some(Some(v4)));
        assert_eq!(rewrite_target(false, Fam::V6Dual, &mapped), None);
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(rewrite_target(false, Fam::V6Only, &v6), Some(Some(v6)));
        assert_eq!(rewrite_target(true, Fam::V6Dual, &v6), None);
        assert_eq!(rewrite_target(false, Fam::V6Dual, &[0; 16]), Some(None));
    }

    #[test]
    fn reply_layout() {
        let i = Info {
            flags: 0,
            policy: 1,
            count: 2,
            group_id: 9,
            dropped: 3,
            stall_ms: 0,
        }
        .encode();
        assert_eq!(u32_at(&i, 0), VERSION);
        assert_eq!(u32_at(&i, 8), 1);
        assert_eq!(u32_at(&i, 12), 2);
        assert_eq!(i[16], 9);
        assert_eq!(i[24], 3);
        let m = MemberInfo {
            family: 10,
            port: 8080,
            state: 10,
            v6only: true,
            accept_limit: 5,
            dropped: 2,
            ..Default::default()
        }
        .encode();
        assert_eq!(u16::from_ne_bytes([m[0], m[1]]), 10);
        assert_eq!(u16::from_ne_bytes([m[2], m[3]]), 8080);
        assert_eq!((m[4], m[5]), (10, 1));
        assert_eq!(u32_at(&m, 28), 5);
        assert_eq!(m[64], 2);
        let i2 = Info {
            count: 1,
            stall_ms: 300,
            ..Default::default()
        }
        .encode_v2();
        assert_eq!(u32_at(&i2, 0), VERSION_2);
        assert_eq!(u32_at(&i2, 12), 1);
        assert_eq!(u32_at(&i2, 32), 300);
        assert_eq!(u32_at(&i2, 36) as usize, MEMBER2_LEN);
        let m2 = MemberInfo {
            port: 80,
            stalled: true,
            stalled_ms: 450,
            rescued_away: 7,
            rescued_in: 9,
            ..Default::default()
        }
        .encode_v2();
        assert_eq!(u16::from_ne_bytes([m2[2], m2[3]]), 80);
        assert_eq!(u32_at(&m2, 72), MEMBER_STALLED);
        assert_eq!(u32_at(&m2, 76), 450);
        assert_eq!(m2[80], 7);
        assert_eq!(m2[88], 9);
    }
}
