// SPDX-License-Identifier: GPL-2.0

//! The view of a service group shared by `show` (from `/proc/net/sockgroup`)
//! and `info` (from getsockopt), and its human rendering.

use std::fmt;
use std::net::SocketAddr;

use clap::ValueEnum;
use serde::Serialize;

use crate::table::Table;
use crate::uapi::{
    SOCKGROUP_F_REWRITE, SOCKGROUP_MEMBER_SERVING, SOCKGROUP_MEMBER_STALLED,
    SOCKGROUP_POLICY_PRIMARY, SOCKGROUP_POLICY_RING,
};

/// How an overflowing connection's sibling is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// The next member in ring order.
    #[default]
    Ring,
    /// The first non-full member in list order (master/standby).
    Primary,
}

impl Policy {
    /// The `SOCKGROUP_POLICY_*` value.
    pub fn to_uapi(self) -> u32 {
        match self {
            Self::Ring => SOCKGROUP_POLICY_RING,
            Self::Primary => SOCKGROUP_POLICY_PRIMARY,
        }
    }

    /// The policy of a `SOCKGROUP_POLICY_*` value, if known.
    pub fn from_uapi(value: u32) -> Option<Self> {
        match value {
            SOCKGROUP_POLICY_RING => Some(Self::Ring),
            SOCKGROUP_POLICY_PRIMARY => Some(Self::Primary),
            _ => None,
        }
    }

    /// The policy of its name in `/proc/net/sockgroup`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ring" => Some(Self::Ring),
            "primary" => Some(Self::Primary),
            _ => None,
        }
    }

    /// Its name, as `/proc/net/sockgroup` and the command line spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ring => "ring",
            Self::Primary => "primary",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a redirected connection reaches its sibling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The sibling accepts the connection as addressed.
    Steer,
    /// The destination is rewritten to the sibling's address (NAT).
    Rewrite,
}

impl Mode {
    /// The mode a group's `SOCKGROUP_F_*` flags select.
    pub fn from_flags(flags: u32) -> Self {
        if flags & SOCKGROUP_F_REWRITE != 0 {
            Self::Rewrite
        } else {
            Self::Steer
        }
    }

    /// The mode of its name in `/proc/net/sockgroup`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "steer" => Some(Self::Steer),
            "rewrite" => Some(Self::Rewrite),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Steer => "steer",
            Self::Rewrite => "rewrite",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A member's address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    Inet,
    /// IPv6, possibly dual-stack.
    Inet6,
}

impl Family {
    /// The family of its name in `/proc/net/sockgroup`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "inet" => Some(Self::Inet),
            "inet6" => Some(Self::Inet6),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inet => "inet",
            Self::Inet6 => "inet6",
        }
    }
}

/// The name of a kernel TCP state number (`include/net/tcp_states.h`).
pub fn tcp_state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// A member's state under stall rescue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It accepts, or its accept queue is empty.
    Serving,
    /// Its oldest waiting connection has waited the group's `stall_ms`.
    Stalled,
}

impl Status {
    /// The status of a `SOCKGROUP_MEMBER_*` value, if known.
    pub fn from_uapi(value: u32) -> Option<Self> {
        match value {
            SOCKGROUP_MEMBER_SERVING => Some(Self::Serving),
            SOCKGROUP_MEMBER_STALLED => Some(Self::Stalled),
            _ => None,
        }
    }

    /// The status of its name in `/proc/net/sockgroup`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "serving" => Some(Self::Serving),
            "stalled" => Some(Self::Stalled),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Serving => "serving",
            Self::Stalled => "stalled",
        }
    }
}

/// A member's stall rescue state and counters (version 2 replies, and the
/// listing's last columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rescue {
    /// Serving or stalled.
    pub status: Status,
    /// How long it has been stalled (ms; only getsockopt tells it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled_ms: Option<u32>,
    /// Connections moved from its accept queue to a sibling.
    pub rescued_away: u64,
    /// Connections moved to its accept queue from a stalled sibling.
    pub rescued_in: u64,
}

/// One listening socket of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Position in ring order, from 0.
    pub index: u32,
    /// Address family.
    pub family: Family,
    /// Local address and port.
    pub local: SocketAddr,
    /// `IPV6_V6ONLY`, when known (getsockopt, IPv6 members).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v6only: Option<bool>,
    /// TCP state number (10: listening).
    pub state: u8,
    /// TCP state name.
    pub state_name: &'static str,
    /// Connections waiting for `accept()`.
    pub accept_queue: u32,
    /// The `listen()` backlog.
    pub accept_limit: u32,
    /// Handshakes under way.
    pub handshakes: u32,
    /// SYNs for this member given to a sibling.
    pub redirected_away: u64,
    /// SYNs for a sibling taken by this member.
    pub redirected_in: u64,
    /// SYNs for this member that found every member full.
    pub dropped: u64,
    /// Socket cookie (`ss -e` shows it too).
    pub cookie: u64,
    /// Stall rescue: status and counters, when the module reports them.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub rescue: Option<Rescue>,
}

/// A service group and its members in ring order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Unique in the network namespace.
    pub id: u64,
    /// Overflow policy.
    pub policy: Policy,
    /// Redirect mode.
    pub mode: Mode,
    /// SYNs that found every member full.
    pub dropped: u64,
    /// Stall rescue's threshold in ms (0: off), when the module reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall_ms: Option<u32>,
    /// Members in ring order.
    pub members: Vec<Member>,
}

impl Group {
    /// A human description: a title line, then a table of the members.
    ///
    /// When the module reports stall rescue (version 2 replies, the
    /// listing's last columns), the title ends with the group's `stall-ms`
    /// and the table has each member's status and rescued counters before
    /// the cookie.
    pub fn render(&self) -> String {
        let rescue = self.members.iter().any(|m| m.rescue.is_some());
        let mut headers = vec![
            "MEMBER",
            "FAMILY",
            "LOCAL",
            "STATE",
            "QUEUE/LIMIT",
            "HANDSHAKES",
            "REDIR-AWAY",
            "REDIR-IN",
            "DROPPED",
        ];
        if rescue {
            headers.extend(["STATUS", "RESCUED-AWAY", "RESCUED-IN"]);
        }
        headers.push("COOKIE");
        let mut table = Table::new(headers);
        for m in &self.members {
            let family = match m.v6only {
                Some(true) => "inet6 (v6only)".to_owned(),
                Some(false) => "inet6 (dual)".to_owned(),
                None => m.family.name().to_owned(),
            };
            let mut row = vec![
                m.index.to_string(),
                family,
                m.local.to_string(),
                m.state_name.to_owned(),
                format!("{}/{}", m.accept_queue, m.accept_limit),
                m.handshakes.to_string(),
                m.redirected_away.to_string(),
                m.redirected_in.to_string(),
                m.dropped.to_string(),
            ];
            if rescue {
                row.extend(match &m.rescue {
                    Some(r) => [
                        match (r.status, r.stalled_ms) {
                            (Status::Stalled, Some(ms)) => format!("stalled {ms}ms"),
                            (status, _) => status.name().to_owned(),
                        },
                        r.rescued_away.to_string(),
                        r.rescued_in.to_string(),
                    ],
                    None => ["-".to_owned(), "-".to_owned(), "-".to_owned()],
                });
            }
            row.push(m.cookie.to_string());
            table.push(row);
        }
        let stall = self
            .stall_ms
            .map_or(String::new(), |ms| format!("  stall-ms {ms}"));
        format!(
            "group {}  policy {}  mode {}  members {}  dropped {}{stall}\n{}",
            self.id,
            self.policy,
            self.mode,
            self.members.len(),
            self.dropped,
            table.render("  ")
        )
    }
}

/// Renders several groups one after another, a blank line between them.
pub fn render_groups(groups: &[Group]) -> String {
    if groups.is_empty() {
        return "no service groups\n".to_owned();
    }
    groups
        .iter()
        .map(Group::render)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn member(index: u32, local: &str) -> Member {
        Member {
            index,
            family: Family::Inet,
            local: local.parse().unwrap(),
            v6only: None,
            state: 10,
            state_name: "LISTEN",
            accept_queue: 0,
            accept_limit: 128,
            handshakes: 0,
            redirected_away: 0,
            redirected_in: 3,
            dropped: 0,
            cookie: 4097,
            rescue: None,
        }
    }

    #[test]
    fn names_round_trip() {
        for p in [Policy::Ring, Policy::Primary] {
            assert_eq!(Policy::from_name(p.name()), Some(p));
            assert_eq!(Policy::from_uapi(p.to_uapi()), Some(p));
        }
        assert_eq!(Policy::from_uapi(2), None);
        assert_eq!(Policy::from_name("Ring"), None);
        for m in [Mode::Steer, Mode::Rewrite] {
            assert_eq!(Mode::from_name(m.name()), Some(m));
        }
        assert_eq!(Mode::from_flags(0), Mode::Steer);
        assert_eq!(Mode::from_flags(SOCKGROUP_F_REWRITE), Mode::Rewrite);
        for f in [Family::Inet, Family::Inet6] {
            assert_eq!(Family::from_name(f.name()), Some(f));
        }
        assert_eq!(tcp_state_name(10), "LISTEN");
        assert_eq!(tcp_state_name(7), "CLOSE");
        assert_eq!(tcp_state_name(0), "UNKNOWN");
    }

    #[test]
    fn renders_a_group() {
        let mut v6 = member(1, "[::]:8080");
        v6.family = Family::Inet6;
        v6.v6only = Some(false);
        let group = Group {
            id: 1,
            policy: Policy::Ring,
            mode: Mode::Steer,
            dropped: 0,
            stall_ms: None,
            members: vec![member(0, "127.0.0.1:8080"), v6],
        };
        let text = group.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "group 1  policy ring  mode steer  members 2  dropped 0"
        );
        assert!(lines[1].starts_with("  MEMBER  FAMILY        LOCAL"));
        assert!(lines[2].starts_with("  0       inet          127.0.0.1:8080  LISTEN  0/128"));
        assert!(lines[3].starts_with("  1       inet6 (dual)  [::]:8080"));
        assert!(lines[2].ends_with("4097"));
    }

    #[test]
    fn renders_no_groups() {
        assert_eq!(render_groups(&[]), "no service groups\n");
    }

    #[test]
    fn serializes_to_json() {
        let group = Group {
            id: 2,
            policy: Policy::Primary,
            mode: Mode::Rewrite,
            dropped: 5,
            stall_ms: None,
            members: vec![member(0, "127.0.0.1:80")],
        };
        let json = serde_json::to_value(&group).unwrap();
        assert_eq!(json["policy"], "primary");
        assert_eq!(json["mode"], "rewrite");
        assert_eq!(json["members"][0]["local"], "127.0.0.1:80");
        assert_eq!(json["members"][0]["family"], "inet");
        assert_eq!(json["members"][0]["state_name"], "LISTEN");
        assert!(json["members"][0].get("v6only").is_none());
        assert!(json.get("stall_ms").is_none());
        assert!(json["members"][0].get("status").is_none());
    }

    fn rescue_group() -> Group {
        let mut stalled = member(0, "127.0.0.1:8080");
        stalled.rescue = Some(Rescue {
            status: Status::Stalled,
            stalled_ms: Some(250),
            rescued_away: 12,
            rescued_in: 0,
        });
        let mut serving = member(1, "127.0.0.1:8080");
        serving.rescue = Some(Rescue {
            status: Status::Serving,
            stalled_ms: None,
            rescued_away: 0,
            rescued_in: 12,
        });
        Group {
            id: 3,
            policy: Policy::Ring,
            mode: Mode::Steer,
            dropped: 0,
            stall_ms: Some(200),
            members: vec![stalled, serving],
        }
    }

    #[test]
    fn renders_stall_rescue() {
        let text = rescue_group().render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "group 3  policy ring  mode steer  members 2  dropped 0  stall-ms 200"
        );
        assert!(lines[1].ends_with("DROPPED  STATUS         RESCUED-AWAY  RESCUED-IN  COOKIE"));
        assert!(lines[2].ends_with("0        stalled 250ms  12            0           4097"));
        assert!(lines[3].ends_with("0        serving        0             12          4097"));
        // A member without the counters (a listing without the columns)
        // beside one with them.
        let mut g = rescue_group();
        g.members[1].rescue = None;
        let text = g.render();
        let cells: Vec<&str> = text.lines().nth(3).unwrap().split_whitespace().collect();
        assert_eq!(cells[cells.len() - 5..], ["0", "-", "-", "-", "4097"]);
    }

    #[test]
    fn serializes_stall_rescue() {
        let json = serde_json::to_value(rescue_group()).unwrap();
        assert_eq!(json["stall_ms"], 200);
        let m = &json["members"];
        assert_eq!(m[0]["status"], "stalled");
        assert_eq!(m[0]["stalled_ms"], 250);
        assert_eq!(m[0]["rescued_away"], 12);
        assert_eq!(m[1]["status"], "serving");
        assert!(m[1].get("stalled_ms").is_none());
        assert_eq!(m[1]["rescued_in"], 12);
    }

    #[test]
    fn status_names() {
        for s in [Status::Serving, Status::Stalled] {
            assert_eq!(Status::from_name(s.name()), Some(s));
        }
        assert_eq!(
            Status::from_uapi(SOCKGROUP_MEMBER_SERVING),
            Some(Status::Serving)
        );
        assert_eq!(
            Status::from_uapi(SOCKGROUP_MEMBER_STALLED),
            Some(Status::Stalled)
        );
        assert_eq!(Status::from_uapi(2), None);
        assert_eq!(Status::from_name("Stalled"), None);
    }
}
