// SPDX-License-Identifier: GPL-2.0

//! Parsing of `/proc/net/sockgroup`, the module's per-namespace listing.
//!
//! After a header line starting with `#`, each line describes one member:
//!
//! ```text
//! group policy mode member family local state queue handshakes limit redirected_away redirected_in dropped cookie stall_ms status rescued_away rescued_in
//! 1 ring steer 0 inet 127.0.0.1:8080 10 0 0 128 0 3 0 4097 200 serving 0 12
//! ```
//!
//! The last four columns (stall rescue) came with version 2 of the request;
//! a listing without them (an older module) parses too, without the
//! rescue fields.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::model::{tcp_state_name, Family, Group, Member, Mode, Policy, Rescue, Status};

/// Where the module publishes its groups (per network namespace).
pub const PROC_PATH: &str = "/proc/net/sockgroup";

/// Number of whitespace-separated fields of a member line without stall
/// rescue's columns.
const FIELDS: usize = 14;
/// ... and with them.
const FIELDS_V2: usize = 18;

/// A line of the file that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a numeric field, naming it in the error.
fn number<T: FromStr>(field: &str, name: &str) -> Result<T, String> {
    field
        .parse()
        .map_err(|_| format!("bad {name} {field:?}: not a number in range"))
}

/// One member line: its group's id, policy, mode and stall threshold (when
/// listed), and the member.
struct Line {
    group: u64,
    policy: Policy,
    mode: Mode,
    stall_ms: Option<u32>,
    member: Member,
}

/// Parses stall rescue's columns: the group's threshold and the member's
/// state and counters.
fn parse_rescue(f: &[&str]) -> Result<(u32, Rescue), String> {
    let [stall_ms, status, away, into] = f[..] else {
        unreachable!("called with the four last fields");
    };
    let status = Status::from_name(status).ok_or_else(|| format!("unknown status {status:?}"))?;
    Ok((
        number(stall_ms, "stall_ms")?,
        Rescue {
            status,
            stalled_ms: None,
            rescued_away: number(away, "rescued_away")?,
            rescued_in: number(into, "rescued_in")?,
        },
    ))
}

/// Parses one member line.
fn parse_line(line: &str) -> Result<Line, String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let (f, rescue) = match f.len() {
        FIELDS => (&f[..], None),
        FIELDS_V2 => (&f[..FIELDS], Some(parse_rescue(&f[FIELDS..])?)),
        n => return Err(format!("{n} fields, expected {FIELDS} or {FIELDS_V2}")),
    };
    let [group, policy, mode, member, family, local, state, queue, handshakes, limit, away, into, dropped, cookie] =
        f[..]
    else {
        unreachable!("the length was checked");
    };
    let policy = Policy::from_name(policy).ok_or_else(|| format!("unknown policy {policy:?}"))?;
    let mode = Mode::from_name(mode).ok_or_else(|| format!("unknown mode {mode:?}"))?;
    let family = Family::from_name(family).ok_or_else(|| format!("unknown family {family:?}"))?;
    let local: SocketAddr = local
        .parse()
        .map_err(|_| format!("bad local address {local:?}"))?;
    let state: u8 = number(state, "state")?;
    let member = Member {
        index: number(member, "member")?,
        family,
        local,
        v6only: None,
        state,
        state_name: tcp_state_name(state),
        accept_queue: number(queue, "queue")?,
        accept_limit: number(limit, "limit")?,
        handshakes: number(handshakes, "handshakes")?,
        redirected_away: number(away, "redirected_away")?,
        redirected_in: number(into, "redirected_in")?,
        dropped: number(dropped, "dropped")?,
        cookie: number(cookie, "cookie")?,
        rescue: rescue.map(|r| r.1),
    };
    Ok(Line {
        group: number(group, "group")?,
        policy,
        mode,
        stall_ms: rescue.map(|r| r.0),
        member,
    })
}

/// Parses the whole file into groups, in order of first appearance, each
/// with its members in file (ring) order.
///
/// Comment lines (`#`) and blank lines are skipped.  A group's policy, mode
/// and stall threshold are taken from its first line, and its `dropped` is
/// the sum of its members' (the kernel counts a drop against the member
/// addressed).
pub fn parse(text: &str) -> Result<Vec<Group>, ParseError> {
    let mut groups: Vec<Group> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let line = parse_line(trimmed).map_err(|message| ParseError {
            line: number + 1,
            message,
        })?;
        let group = match groups.iter().position(|g| g.id == line.group) {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Group {
                    id: line.group,
                    policy: line.policy,
                    mode: line.mode,
                    dropped: 0,
                    stall_ms: line.stall_ms,
                    members: Vec::new(),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        group.dropped += line.member.dropped;
        group.members.push(line.member);
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# group policy mode member family local state queue handshakes limit redirected_away redirected_in dropped cookie
1 ring steer 0 inet 127.0.0.1:8080 10 0 0 128 0 3 0 4097
2 primary steer 0 inet6 [::]:8080 10 5 1 5 4 0 2 4099
1 ring steer 1 inet 127.0.0.1:8080 10 2 0 128 3 0 1 4098
2 primary steer 1 inet6 [::]:8081 10 0 0 5 0 0 0 4100
";

    #[test]
    fn parses_and_groups_members() {
        let groups = parse(SAMPLE).unwrap();
        assert_eq!(groups.len(), 2);
        let (g1, g2) = (&groups[0], &groups[1]);
        assert_eq!(
            (g1.id, g1.policy, g1.mode, g1.dropped),
            (1, Policy::Ring, Mode::Steer, 1)
        );
        assert_eq!(g1.members.len(), 2);
        let m = &g1.members[0];
        assert_eq!(m.local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (m.index, m.family, m.state, m.state_name),
            (0, Family::Inet, 10, "LISTEN")
        );
        assert_eq!((m.accept_queue, m.handshakes, m.accept_limit), (0, 0, 128));
        assert_eq!(
            (m.redirected_away, m.redirected_in, m.dropped, m.cookie),
            (0, 3, 0, 4097)
        );
        assert_eq!(g1.members[1].cookie, 4098);
        assert_eq!((g2.id, g2.policy, g2.dropped), (2, Policy::Primary, 2));
        let m = &g2.members[0];
        assert_eq!(m.family, Family::Inet6);
        assert_eq!(m.local, "[::]:8080".parse().unwrap());
        assert_eq!((m.accept_queue, m.handshakes, m.accept_limit), (5, 1, 5));
        assert_eq!(g2.members[1].local.port(), 8081);
    }

    #[test]
    fn header_only_means_no_groups() {
        assert!(parse("# group policy mode\n").unwrap().is_empty());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn reports_the_bad_line() {
        let err = parse("# h\n1 ring steer 0 inet 127.0.0.1:1 10 0 0 1 0 0 0\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.message, "13 fields, expected 14 or 18");
        let cases = [
            (
                "1 loop steer 0 inet 127.0.0.1:1 10 0 0 1 0 0 0 1",
                "unknown policy",
            ),
            (
                "1 ring nat 0 inet 127.0.0.1:1 10 0 0 1 0 0 0 1",
                "unknown mode",
            ),
            (
                "1 ring steer 0 unix 127.0.0.1:1 10 0 0 1 0 0 0 1",
                "unknown family",
            ),
            (
                "1 ring steer 0 inet 127.0.0.1 10 0 0 1 0 0 0 1",
                "bad local address",
            ),
            (
                "x ring steer 0 inet 127.0.0.1:1 10 0 0 1 0 0 0 1",
                "bad group",
            ),
            (
                "1 ring steer 0 inet 127.0.0.1:1 300 0 0 1 0 0 0 1",
                "bad state",
            ),
            (
                "1 ring steer 0 inet 127.0.0.1:1 10 0 0 1 0 0 -1 1",
                "bad dropped",
            ),
        ];
        for (line, want) in cases {
            let err = parse(line).unwrap_err();
            assert_eq!(err.line, 1);
            assert!(err.message.starts_with(want), "{line}: {}", err.message);
        }
        assert!(err.to_string().starts_with("line 2: "));
    }

    const SAMPLE_V2: &str = "\
# group policy mode member family local state queue handshakes limit redirected_away redirected_in dropped cookie stall_ms status rescued_away rescued_in
4 ring rewrite 0 inet 127.0.0.1:9000 10 0 0 64 3 0 0 4097 200 stalled 65 0
4 ring rewrite 1 inet 127.0.0.1:9001 10 0 0 64 0 2 0 4098 200 serving 0 40
4 ring rewrite 2 inet 127.0.0.1:9002 10 1 0 64 0 1 0 4099 200 serving 0 25
5 primary steer 0 inet6 [::1]:9100 10 0 0 8 0 0 0 4100 0 serving 0 0
";

    #[test]
    fn parses_stall_rescue_columns() {
        let groups = parse(SAMPLE_V2).unwrap();
        let (g, h) = (&groups[0], &groups[1]);
        assert_eq!((g.id, g.mode, g.stall_ms), (4, Mode::Rewrite, Some(200)));
        let r: Vec<Rescue> = g.members.iter().map(|m| m.rescue.unwrap()).collect();
        assert_eq!(
            r[0],
            Rescue {
                status: Status::Stalled,
                stalled_ms: None,
                rescued_away: 65,
                rescued_in: 0
            }
        );
        assert_eq!((r[1].status, r[1].rescued_in), (Status::Serving, 40));
        assert_eq!(r[2].rescued_in, 25);
        assert_eq!(g.members[2].cookie, 4099);
        assert_eq!(
            (h.stall_ms, h.members[0].rescue.unwrap().status),
            (Some(0), Status::Serving)
        );
        // Without the columns: no rescue fields.
        let old = parse(SAMPLE).unwrap();
        assert_eq!(old[0].stall_ms, None);
        assert!(old
            .iter()
            .flat_map(|g| &g.members)
            .all(|m| m.rescue.is_none()));
    }

    #[test]
    fn reports_bad_stall_rescue_columns() {
        let base = "1 ring steer 0 inet 127.0.0.1:1 10 0 0 1 0 0 0 1";
        for (tail, want) in [
            ("200 waiting 0 0", "unknown status"),
            ("x serving 0 0", "bad stall_ms"),
            ("200 serving -1 0", "bad rescued_away"),
            ("200 stalled 0 y", "bad rescued_in"),
        ] {
            let err = parse(&format!("{base} {tail}\n")).unwrap_err();
            assert!(err.message.starts_with(want), "{tail}: {}", err.message);
        }
        let err = parse(&format!("{base} 200 serving 0\n")).unwrap_err();
        assert_eq!(err.message, "17 fields, expected 14 or 18");
    }
}
