// SPDX-License-Identifier: GPL-2.0

//! `sgctl cluster`: configure and watch this network namespace's node of a
//! sockgroup cluster through the `sockgroup` generic netlink family.

pub mod attrs;
pub mod key;
pub mod socket;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use self::attrs::*;
use self::socket::Client;
pub use self::socket::Extack;
use crate::error::Error;
use crate::genl_uapi::*;
use crate::output;
use crate::table::Table;

/// Arguments of `sgctl cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Print as JSON (one object per line for monitor).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The subcommands of `sgctl cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// This node: set, show or delete its configuration.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Peers: add, delete or show (never their keys).
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Services: add, delete or show.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Rules of services: add, delete or show.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// The node, its membership, peers with state and counters, services
    /// with their counters, rules and the namespace's counters.
    Show,
    /// The connections of services that are held (their first request not
    /// yet decided) or were decided, with what the handshake told.
    Conns,
    /// Print the events (peer up, peer down, key rejected) as they come, one
    /// line each, until killed.
    Monitor(MonitorArgs),
}

/// Arguments of `sgctl cluster monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Write this file (empty) once subscribed: events after that are seen.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
}

/// `sgctl cluster node ...`.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Configure this node (creates it, or changes what is given).
    Set(NodeSetArgs),
    /// Print this node's configuration and membership.
    Show,
    /// Remove this node's configuration, with its peers, services and rules.
    Del,
}

/// Arguments of `sgctl cluster node set`.
#[derive(Debug, Args)]
pub struct NodeSetArgs {
    /// This node's id in the cluster (1 or more).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub id: u32,
    /// Where the control channel listens (ADDR:PORT, [ADDR]:PORT for IPv6).
    #[arg(long, value_name = "ADDR:PORT")]
    pub ctl: Option<SocketAddr>,
    /// Where encapsulated packets reach this node (ADDR:PORT, UDP).
    #[arg(long, value_name = "ADDR:PORT")]
    pub fwd: Option<SocketAddr>,
    /// Milliseconds between heartbeats (kernel default 200; 10 to 60000).
    #[arg(long, value_name = "MS")]
    pub hb_interval: Option<u32>,
    /// Added to the front-end's ISN of the connections this node replays as
    /// a back-end (default 0: aligned); not 0, their packets are translated
    /// (to exercise the translating path). Decimal or 0x hex.
    #[arg(long, value_name = "N", value_parser = parse_u32)]
    pub replay_isn_offset: Option<u32>,
    /// Added to the front-end's timestamp clock of those connections
    /// (default 0), as --replay-isn-offset.
    #[arg(long, value_name = "N", value_parser = parse_u32)]
    pub replay_ts_offset: Option<u32>,
}

/// A u32, decimal or hex with 0x.
fn parse_u32(s: &str) -> Result<u32, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s}: {e}"))
}

/// `sgctl cluster peer ...`.
#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Add a peer with the pair's key.
    Add(PeerAddArgs),
    /// Remove a peer; its channel closes.
    Del(IdArgs),
    /// Show a peer, or all, with state and counters.
    Show(ShowIdArgs),
}

/// Arguments of `sgctl cluster peer add`.
#[derive(Debug, Args)]
pub struct PeerAddArgs {
    /// The peer's node id.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub id: u32,
    /// The peer's control address: the only address that may connect as it.
    #[arg(long)]
    pub addr: IpAddr,
    /// The peer's control port (default: this node's).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub ctl_port: Option<u16>,
    /// The file holding the pair's key: 16 to 64 bytes, raw or as hex text.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// Accept a key file that group or others may read or write.
    #[arg(long)]
    pub insecure_key_file: bool,
}

/// An object's id.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The id.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub id: u32,
}

/// An optional id: one object, or all.
#[derive(Debug, Args)]
pub struct ShowIdArgs {
    /// Only this one (default: all).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub id: Option<u32>,
}

/// `sgctl cluster service ...`.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Add a service.
    Add(ServiceAddArgs),
    /// Remove a service and its rules.
    Del(IdArgs),
    /// Show a service, or all.
    Show(ShowIdArgs),
}

/// The transport protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
}

/// What this node does for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Receives the service's connections and places them.
    Frontend,
    /// Serves connections placed on it.
    Backend,
    /// Both.
    Both,
}

/// Arguments of `sgctl cluster service add`.
#[derive(Debug, Args)]
pub struct ServiceAddArgs {
    /// The service's id.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub id: u32,
    /// The virtual address.
    #[arg(long)]
    pub addr: IpAddr,
    /// The port.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// The protocol.
    #[arg(long, value_enum, default_value_t = Proto::Tcp)]
    pub proto: Proto,
    /// What this node does for it.
    #[arg(long, value_enum, default_value_t = Role::Both)]
    pub role: Role,
    /// How long a connection is held for its first request before it is
    /// served locally, in milliseconds (kernel default 2000; 100 to 60000).
    #[arg(long, value_name = "MS")]
    pub hold_timeout: Option<u32>,
    /// The nodes that dispatch it (ids, comma-separated, at most 16): each
    /// owns the connections it scores highest for, the others forward
    /// their segments to it.
    #[arg(long, value_name = "ID,ID,...", value_delimiter = ',')]
    pub dispatchers: Vec<u32>,
}

/// `sgctl cluster rule ...`.
#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// Add a rule to a service.
    Add(RuleAddArgs),
    /// Remove a rule.
    Del(IdArgs),
    /// Show a rule, or all.
    Show(ShowIdArgs),
}

/// Arguments of `sgctl cluster rule add`.
#[derive(Debug, Args)]
pub struct RuleAddArgs {
    /// The rule's id.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub id: u32,
    /// The service it belongs to.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub service: u32,
    /// Rules of a service are tried by increasing prio.
    #[arg(long, default_value_t = 0)]
    pub prio: u32,
    /// What it matches: any, path-prefix:/P, host:H, host-suffix:DOMAIN,
    /// cookie:NAME, cookie-value:NAME=VALUE, sni:NAME or session-id ("="
    /// after the type works as ":").
    #[arg(long = "match", value_name = "MATCH", value_parser = parse_match, default_value = "any")]
    pub matches: RuleMatch,
    /// Where it places a connection: local, peer:ID (0 is this node) or
    /// hash:ID,ID,... (1 to 16 peers; with a cookie or session-id match, or any for a UDP service: the flow is hashed).
    #[arg(long, value_name = "TARGET", value_parser = parse_target)]
    pub target: RuleTarget,
}

/// A rule's match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    /// any, path-prefix, host, cookie or sni.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value matched (none for any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A rule's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTarget {
    /// local, peer or hash.
    #[serde(rename = "type")]
    pub kind: String,
    /// The peer, for target peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<u32>,
    /// The peers, for target hash.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<u32>,
}

/// A rule's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    /// Requests the rule matched.
    pub matched: u64,
    /// Matches whose target had no candidate up (served by this node).
    pub none_up: u64,
    /// Matches per peer of the target, in the target's order.
    pub targets: Vec<TargetCount>,
}

/// The matches a rule placed on one peer of its target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetCount {
    /// The peer (0 is this node).
    pub peer: u32,
    pub count: u64,
}

/// Names of the spec's enums, by value.
const MATCH_TYPES: &[(u32, &str)] = &[
    (SOCKGROUP_MATCH_TYPE_ANY, "any"),
    (SOCKGROUP_MATCH_TYPE_PATH_PREFIX, "path-prefix"),
    (SOCKGROUP_MATCH_TYPE_HOST, "host"),
    (SOCKGROUP_MATCH_TYPE_COOKIE, "cookie"),
    (SOCKGROUP_MATCH_TYPE_SNI, "sni"),
    (SOCKGROUP_MATCH_TYPE_HOST_SUFFIX, "host-suffix"),
    (SOCKGROUP_MATCH_TYPE_COOKIE_VALUE, "cookie-value"),
    (SOCKGROUP_MATCH_TYPE_SESSION_ID, "session-id"),
];
/// The match types that take no value.
const VALUELESS: &[&str] = &["any", "session-id"];
/// The most peers of a hash target.
const MAX_HASH_PEERS: usize = 16;
const TARGET_TYPES: &[(u32, &str)] = &[
    (SOCKGROUP_TARGET_TYPE_LOCAL, "local"),
    (SOCKGROUP_TARGET_TYPE_PEER, "peer"),
    (SOCKGROUP_TARGET_TYPE_HASH, "hash"),
];
const PEER_STATES: &[(u32, &str)] = &[
    (SOCKGROUP_PEER_STATE_DOWN, "down"),
    (SOCKGROUP_PEER_STATE_CONNECTING, "connecting"),
    (SOCKGROUP_PEER_STATE_UP, "up"),
];
const ROLES: &[(u32, &str)] = &[
    (SOCKGROUP_ROLE_FRONTEND, "frontend"),
    (SOCKGROUP_ROLE_BACKEND, "backend"),
    (SOCKGROUP_ROLE_BOTH, "both"),
];
const CONN_STATES: &[(u32, &str)] = &[
    (SOCKGROUP_CONN_STATE_HELD, "held"),
    (SOCKGROUP_CONN_STATE_LOCAL, "local"),
    (SOCKGROUP_CONN_STATE_REMOTE, "remote"),
    (SOCKGROUP_CONN_STATE_HANDING_OFF, "handing-off"),
    (SOCKGROUP_CONN_STATE_MOVED, "moved"),
    (SOCKGROUP_CONN_STATE_SYNCED, "synced"),
];

/// The name of `value` in `table`, or the number for one this sgctl does
/// not know.
fn name_of(table: &[(u32, &str)], value: u32) -> String {
    table
        .iter()
        .find(|&&(v, _)| v == value)
        .map_or_else(|| value.to_string(), |&(_, n)| n.to_owned())
}

/// The value named `name` in `table`.
fn value_of(table: &[(u32, &str)], name: &str) -> Option<u32> {
    table.iter().find(|&&(_, n)| n == name).map(|&(v, _)| v)
}

/// Parses `TYPE` or `TYPE:VALUE` (or `TYPE=VALUE`).
fn parse_match(text: &str) -> Result<RuleMatch, String> {
    let names = || {
        MATCH_TYPES
            .iter()
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let split = MATCH_TYPES.iter().find_map(|&(_, name)| {
        let rest = text.strip_prefix(name)?;
        match rest.chars().next() {
            None => Some((name, None)),
            Some(':' | '=') => Some((name, Some(rest[1..].to_owned()))),
            Some(_) => None,
        }
    });
    let Some((kind, value)) = split else {
        let kind = text.split([':', '=']).next().unwrap_or(text);
        return Err(format!("unknown match type {kind:?} (one of {})", names()));
    };
    match (VALUELESS.contains(&kind), &value) {
        (true, Some(_)) => return Err(format!("match {kind} takes no value")),
        (true, None) => {}
        (false, None) => return Err(format!("match {kind} needs a value: {kind}:VALUE")),
        (false, Some(v)) if v.is_empty() => {
            return Err(format!("match {kind} needs a value: {kind}:VALUE"))
        }
        (false, Some(v)) if v.len() > 255 || v.contains('\0') => {
            return Err("a match value is at most 255 bytes, without NUL".into())
        }
        (false, Some(v)) if kind == "cookie-value" && !v.contains('=') => {
            return Err("match cookie-value needs cookie-value:NAME=VALUE".into())
        }
        _ => {}
    }
    Ok(RuleMatch {
        kind: kind.to_owned(),
        value,
    })
}

/// Parses `local`, `peer:ID` or `hash:ID,ID,...`.
fn parse_target(text: &str) -> Result<RuleTarget, String> {
    let bad = || format!("bad target {text:?}: local, peer:ID or hash:ID,ID,...");
    let id = |s: &str| s.parse::<u32>().map_err(|e| format!("peer id {s:?}: {e}"));
    let (kind, peer, peers) = match text.split_once(':') {
        Some(("peer", s)) => ("peer", Some(id(s)?), Vec::new()),
        Some(("hash", list)) => {
            let peers = list.split(',').map(id).collect::<Result<Vec<_>, _>>()?;
            if peers.len() > MAX_HASH_PEERS {
                return Err(format!("a hash target has at most {MAX_HASH_PEERS} peers"));
            }
            ("hash", None, peers)
        }
        Some(_) => return Err(bad()),
        None if text == "local" => (text, None, Vec::new()),
        None if text == "peer" => return Err("target peer needs an id: peer:ID".into()),
        None if text == "hash" => return Err("target hash needs peers: hash:ID,ID,...".into()),
        None => return Err(bad()),
    };
    Ok(RuleTarget {
        kind: kind.to_owned(),
        peer,
        peers,
    })
}

// ---- Requests ----

/// node-set of these arguments.
pub fn node_set_msg(a: &NodeSetArgs) -> SgMessage {
    let mut v = vec![NodeAttr::Id(a.id)];
    if let Some(ctl) = a.ctl {
        v.push(NodeAttr::CtlAddr(ctl.ip()));
        v.push(NodeAttr::CtlPort(ctl.port()));
    }
    if let Some(fwd) = a.fwd {
        v.push(NodeAttr::FwdAddr(fwd.ip()));
        v.push(NodeAttr::FwdPort(fwd.port()));
    }
    if let Some(ms) = a.hb_interval {
        v.push(NodeAttr::HbInterval(ms));
    }
    if let Some(n) = a.replay_isn_offset {
        v.push(NodeAttr::ReplayIsnOffset(n));
    }
    if let Some(n) = a.replay_ts_offset {
        v.push(NodeAttr::ReplayTsOffset(n));
    }
    SgMessage::new(SOCKGROUP_CMD_NODE_SET, Attrs::Node(v))
}

/// peer-new of these arguments and key.
pub fn peer_new_msg(a: &PeerAddArgs, key: Key) -> SgMessage {
    let mut v = vec![PeerAttr::Id(a.id), PeerAttr::Addr(a.addr)];
    if let Some(port) = a.ctl_port {
        v.push(PeerAttr::CtlPort(port));
    }
    v.push(PeerAttr::Key(key));
    SgMessage::new(SOCKGROUP_CMD_PEER_NEW, Attrs::Peer(v))
}

/// service-new of these arguments.
pub fn service_new_msg(a: &ServiceAddArgs) -> SgMessage {
    let proto = match a.proto {
        Proto::Tcp => SOCKGROUP_PROTO_TCP,
        Proto::Udp => SOCKGROUP_PROTO_UDP,
    };
    let role = match a.role {
        Role::Frontend => SOCKGROUP_ROLE_FRONTEND,
        Role::Backend => SOCKGROUP_ROLE_BACKEND,
        Role::Both => SOCKGROUP_ROLE_BOTH,
    };
    let mut v = vec![
        ServiceAttr::Id(a.id),
        ServiceAttr::Addr(a.addr),
        ServiceAttr::Port(a.port),
        ServiceAttr::Proto(proto),
        ServiceAttr::Role(role),
    ];
    if let Some(ms) = a.hold_timeout {
        v.push(ServiceAttr::HoldTimeout(ms));
    }
    v.extend(a.dispatchers.iter().map(|&id| ServiceAttr::Dispatchers(id)));
    SgMessage::new(SOCKGROUP_CMD_SERVICE_NEW, Attrs::Service(v))
}

/// rule-new of these arguments.
pub fn rule_new_msg(a: &RuleAddArgs) -> SgMessage {
    let mut m = vec![MatchAttr::Type(
        value_of(MATCH_TYPES, &a.matches.kind).expect("parse_match checked it"),
    )];
    if let Some(value) = &a.matches.value {
        m.push(MatchAttr::Value(value.clone()));
    }
    let mut t = vec![TargetAttr::Type(
        value_of(TARGET_TYPES, &a.target.kind).expect("parse_target checked it"),
    )];
    if let Some(peer) = a.target.peer {
        t.push(TargetAttr::Peer(peer));
    }
    t.extend(a.target.peers.iter().copied().map(TargetAttr::Peers));
    SgMessage::new(
        SOCKGROUP_CMD_RULE_NEW,
        Attrs::Rule(vec![
            RuleAttr::Id(a.id),
            RuleAttr::Service(a.service),
            RuleAttr::Prio(a.prio),
            RuleAttr::Match(Nest(m)),
            RuleAttr::Target(Nest(t)),
        ]),
    )
}

/// A request of `cmd` naming one object by `id` (del, or get of one), or
/// none (node-get, node-del, stats-get, dumps).
pub fn id_msg(cmd: u8, id: Option<u32>) -> SgMessage {
    let ids = id.into_iter();
    let attrs = match cmd {
        SOCKGROUP_CMD_NODE_GET | SOCKGROUP_CMD_NODE_DEL => Attrs::Node(Vec::new()),
        SOCKGROUP_CMD_PEER_DEL | SOCKGROUP_CMD_PEER_GET => {
            Attrs::Peer(ids.map(PeerAttr::Id).collect())
        }
        SOCKGROUP_CMD_SERVICE_DEL | SOCKGROUP_CMD_SERVICE_GET => {
            Attrs::Service(ids.map(ServiceAttr::Id).collect())
        }
        SOCKGROUP_CMD_RULE_DEL | SOCKGROUP_CMD_RULE_GET => {
            Attrs::Rule(ids.map(RuleAttr::Id).collect())
        }
        SOCKGROUP_CMD_STATS_GET => Attrs::Stats(Vec::new()),
        SOCKGROUP_CMD_CONN_GET => Attrs::Conn(Vec::new()),
        _ => panic!("command {cmd} takes more than an id"),
    };
    SgMessage::new(cmd, attrs)
}

// ---- Replies ----

/// A node, as node-get reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Node {
    pub id: u32,
    pub ctl_addr: Option<IpAddr>,
    pub ctl_port: Option<u16>,
    pub fwd_addr: Option<IpAddr>,
    pub fwd_port: Option<u16>,
    pub hb_interval_ms: Option<u32>,
    pub generation: Option<u64>,
    /// The ids of the nodes up, this one included.
    pub members: Vec<u32>,
    /// What replays add to the front-end's ISN and timestamp clock.
    pub replay_isn_offset: Option<u32>,
    pub replay_ts_offset: Option<u32>,
}

impl Node {
    fn of(attrs: &[NodeAttr]) -> Self {
        let mut n = Self::default();
        for a in attrs {
            match a {
                NodeAttr::Id(v) => n.id = *v,
                NodeAttr::CtlAddr(v) => n.ctl_addr = Some(*v),
                NodeAttr::CtlPort(v) => n.ctl_port = Some(*v),
                NodeAttr::FwdAddr(v) => n.fwd_addr = Some(*v),
                NodeAttr::FwdPort(v) => n.fwd_port = Some(*v),
                NodeAttr::HbInterval(v) => n.hb_interval_ms = Some(*v),
                NodeAttr::Generation(v) => n.generation = Some(*v),
                NodeAttr::Member(v) => n.members.push(*v),
                NodeAttr::ReplayIsnOffset(v) => n.replay_isn_offset = Some(*v),
                NodeAttr::ReplayTsOffset(v) => n.replay_ts_offset = Some(*v),
                NodeAttr::Other(_) => {}
            }
        }
        n
    }
}

/// Handoff frames sent and received (HANDOFF_REQ, HANDOFF_ACK,
/// HANDOFF_NACK, TERM), of a peer or of the namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HandoffFrames {
    pub handoff_req_tx: u64,
    pub handoff_req_rx: u64,
    pub handoff_ack_tx: u64,
    pub handoff_ack_rx: u64,
    pub handoff_nack_tx: u64,
    pub handoff_nack_rx: u64,
    pub term_tx: u64,
    pub term_rx: u64,
}

impl HandoffFrames {
    /// The table's column names.
    const HEADERS: [&'static str; 8] = [
        "REQ-TX", "REQ-RX", "ACK-TX", "ACK-RX", "NACK-TX", "NACK-RX", "TERM-TX", "TERM-RX",
    ];

    /// The table's cells, in the order of [`Self::HEADERS`].
    fn cells(&self) -> impl Iterator<Item = String> {
        [
            self.handoff_req_tx,
            self.handoff_req_rx,
            self.handoff_ack_tx,
            self.handoff_ack_rx,
            self.handoff_nack_tx,
            self.handoff_nack_rx,
            self.term_tx,
            self.term_rx,
        ]
        .into_iter()
        .map(|v| v.to_string())
    }
}

/// A peer's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerStats {
    pub frames_tx: u64,
    pub frames_rx: u64,
    pub heartbeats_tx: u64,
    pub heartbeats_rx: u64,
    pub rejected: u64,
    pub connects: u64,
    pub ups: u64,
    pub downs: u64,
    #[serde(flatten)]
    pub handoff: HandoffFrames,
}

/// A peer, as peer-get reports it (there is no key to report).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Peer {
    pub id: u32,
    pub addr: Option<IpAddr>,
    pub ctl_port: Option<u16>,
    pub state: Option<String>,
    pub stats: Option<PeerStats>,
}

impl Peer {
    fn of(attrs: &[PeerAttr]) -> Self {
        let mut p = Self::default();
        for a in attrs {
            match a {
                PeerAttr::Id(v) => p.id = *v,
                PeerAttr::Addr(v) => p.addr = Some(*v),
                PeerAttr::CtlPort(v) => p.ctl_port = Some(*v),
                PeerAttr::State(v) => p.state = Some(name_of(PEER_STATES, *v)),
                PeerAttr::Stats(Nest(s)) => {
                    let mut st = PeerStats::default();
                    for a in s {
                        match a {
                            PeerStatsAttr::FramesTx(v) => st.frames_tx = *v,
                            PeerStatsAttr::FramesRx(v) => st.frames_rx = *v,
                            PeerStatsAttr::HeartbeatsTx(v) => st.heartbeats_tx = *v,
                            PeerStatsAttr::HeartbeatsRx(v) => st.heartbeats_rx = *v,
                            PeerStatsAttr::Rejected(v) => st.rejected = *v,
                            PeerStatsAttr::Connects(v) => st.connects = *v,
                            PeerStatsAttr::Ups(v) => st.ups = *v,
                            PeerStatsAttr::Downs(v) => st.downs = *v,
                            PeerStatsAttr::HandoffReqTx(v) => st.handoff.handoff_req_tx = *v,
                            PeerStatsAttr::HandoffReqRx(v) => st.handoff.handoff_req_rx = *v,
                            PeerStatsAttr::HandoffAckTx(v) => st.handoff.handoff_ack_tx = *v,
                            PeerStatsAttr::HandoffAckRx(v) => st.handoff.handoff_ack_rx = *v,
                            PeerStatsAttr::HandoffNackTx(v) => st.handoff.handoff_nack_tx = *v,
                            PeerStatsAttr::HandoffNackRx(v) => st.handoff.handoff_nack_rx = *v,
                            PeerStatsAttr::TermTx(v) => st.handoff.term_tx = *v,
                            PeerStatsAttr::TermRx(v) => st.handoff.term_rx = *v,
                            PeerStatsAttr::Other(_) => {}
                        }
                    }
                    p.stats = Some(st);
                }
                // A key is never reported; one that came would not be kept.
                PeerAttr::Key(_) | PeerAttr::Other(_) => {}
            }
        }
        p
    }
}

/// A service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Service {
    pub id: u32,
    pub addr: Option<IpAddr>,
    pub port: Option<u16>,
    /// tcp, udp, or the protocol number.
    pub proto: Option<String>,
    pub role: Option<String>,
    pub hold_timeout_ms: Option<u32>,
    pub stats: Option<ServiceStats>,
    /// The nodes that dispatch it (empty: not dispatched).
    pub dispatchers: Vec<u32>,
}

/// A service's counters: connections held, how they were decided, what
/// their first request was, and why some were served without a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceStats {
    pub held: u64,
    pub local: u64,
    /// Decided for a peer (then handed off, or served here after a fallback).
    pub remote: u64,
    pub over_bytes: u64,
    pub over_time: u64,
    pub malformed: u64,
    pub http1: u64,
    pub http2: u64,
    pub tls: u64,
    pub cookie_bypass: u64,
    pub tfo_bypass: u64,
    pub hold_full: u64,
    pub aborted: u64,
    /// Segments of held connections dropped as duplicates or past the budget.
    pub dup: u64,
    /// Moved to their peer (HANDOFF_ACK).
    pub handed_off: u64,
    /// Handoffs served here instead, by reason: the peer refused, went
    /// down, did not answer in time; the request could not be queued.
    pub fallback_nack: u64,
    pub fallback_peer_down: u64,
    pub fallback_timeout: u64,
    pub fallback_unsent: u64,
    /// Segments of moved connections dropped (never reset).
    pub moved_drop: u64,
    pub moved_fwd: u64,
    pub ended: u64,
    /// SYN-ACKs whose MSS was lowered for the forwarding's overhead.
    pub mss_clamped: u64,
    /// Segments forwarded to their owner (another dispatcher), and those
    /// that could not be.
    pub to_owner: u64,
    pub to_owner_drop: u64,
    /// CONN_SYNCs sent (owner), recorded (backup), refused.
    pub sync_tx: u64,
    pub sync_rx: u64,
    pub sync_rejected: u64,
    /// Moved connections taken over as the new owner.
    pub takeover: u64,
    /// Segments dropped, not reset, while the dispatchers' views changed.
    pub view_drop: u64,
    /// Segments of connections this node owns but does not know, forwarded
    /// to their backup (the dispatcher that held them before it joined).
    pub to_backup: u64,
    /// TRANSFER entries sent, taken and refused.
    pub transfer_tx: u64,
    pub transfer_rx: u64,
    pub transfer_rejected: u64,
    /// CONN_ENDs sent, and records or entries they ended here.
    pub end_tx: u64,
    pub end_rx: u64,
    pub cache_hit: u64,
    pub cache_fill: u64,
    /// Entries handed over in TRANSFERs the new owner acknowledged.
    pub transfer_acked: u64,
    /// Late segments of ended connections sent to their back-end's TIME_WAIT.
    pub late_fwd: u64,
    /// Stale moved entries of an earlier connection on a tuple, replaced.
    pub stale_replaced: u64,
}

impl ServiceStats {
    fn of(attrs: &[ServiceStatsAttr]) -> Self {
        let mut s = Self::default();
        for a in attrs {
            match a {
                ServiceStatsAttr::Held(v) => s.held = *v,
                ServiceStatsAttr::Local(v) => s.local = *v,
                ServiceStatsAttr::Remote(v) => s.remote = *v,
                ServiceStatsAttr::OverBytes(v) => s.over_bytes = *v,
                ServiceStatsAttr::OverTime(v) => s.over_time = *v,
                ServiceStatsAttr::Malformed(v) => s.malformed = *v,
                ServiceStatsAttr::Http1(v) => s.http1 = *v,
                ServiceStatsAttr::Http2(v) => s.http2 = *v,
                ServiceStatsAttr::Tls(v) => s.tls = *v,
                ServiceStatsAttr::CookieBypass(v) => s.cookie_bypass = *v,
                ServiceStatsAttr::TfoBypass(v) => s.tfo_bypass = *v,
                ServiceStatsAttr::HoldFull(v) => s.hold_full = *v,
                ServiceStatsAttr::Aborted(v) => s.aborted = *v,
                ServiceStatsAttr::Dup(v) => s.dup = *v,
                ServiceStatsAttr::HandedOff(v) => s.handed_off = *v,
                ServiceStatsAttr::FallbackNack(v) => s.fallback_nack = *v,
                ServiceStatsAttr::FallbackPeerDown(v) => s.fallback_peer_down = *v,
                ServiceStatsAttr::FallbackTimeout(v) => s.fallback_timeout = *v,
                ServiceStatsAttr::FallbackUnsent(v) => s.fallback_unsent = *v,
                ServiceStatsAttr::MovedDrop(v) => s.moved_drop = *v,
                ServiceStatsAttr::MovedFwd(v) => s.moved_fwd = *v,
                ServiceStatsAttr::Ended(v) => s.ended = *v,
                ServiceStatsAttr::MssClamped(v) => s.mss_clamped = *v,
                ServiceStatsAttr::ToOwner(v) => s.to_owner = *v,
                ServiceStatsAttr::ToOwnerDrop(v) => s.to_owner_drop = *v,
                ServiceStatsAttr::SyncTx(v) => s.sync_tx = *v,
                ServiceStatsAttr::SyncRx(v) => s.sync_rx = *v,
                ServiceStatsAttr::SyncRejected(v) => s.sync_rejected = *v,
                ServiceStatsAttr::Takeover(v) => s.takeover = *v,
                ServiceStatsAttr::ViewDrop(v) => s.view_drop = *v,
                ServiceStatsAttr::ToBackup(v) => s.to_backup = *v,
                ServiceStatsAttr::TransferTx(v) => s.transfer_tx = *v,
                ServiceStatsAttr::TransferRx(v) => s.transfer_rx = *v,
                ServiceStatsAttr::TransferRejected(v) => s.transfer_rejected = *v,
                ServiceStatsAttr::EndTx(v) => s.end_tx = *v,
                ServiceStatsAttr::EndRx(v) => s.end_rx = *v,
                ServiceStatsAttr::CacheHit(v) => s.cache_hit = *v,
                ServiceStatsAttr::CacheFill(v) => s.cache_fill = *v,
                ServiceStatsAttr::TransferAcked(v) => s.transfer_acked = *v,
                ServiceStatsAttr::LateFwd(v) => s.late_fwd = *v,
                ServiceStatsAttr::StaleReplaced(v) => s.stale_replaced = *v,
                ServiceStatsAttr::Other(_) => {}
            }
        }
        s
    }
}

impl Service {
    fn of(attrs: &[ServiceAttr]) -> Self {
        let mut s = Self::default();
        for a in attrs {
            match a {
                ServiceAttr::Id(v) => s.id = *v,
                ServiceAttr::Addr(v) => s.addr = Some(*v),
                ServiceAttr::Port(v) => s.port = Some(*v),
                ServiceAttr::Proto(v) => {
                    s.proto = Some(match *v {
                        SOCKGROUP_PROTO_TCP => "tcp".into(),
                        SOCKGROUP_PROTO_UDP => "udp".into(),
                        n => n.to_string(),
                    })
                }
                ServiceAttr::Role(v) => s.role = Some(name_of(ROLES, *v)),
                ServiceAttr::HoldTimeout(v) => s.hold_timeout_ms = Some(*v),
                ServiceAttr::Stats(Nest(a)) => s.stats = Some(ServiceStats::of(a)),
                ServiceAttr::Dispatchers(v) => s.dispatchers.push(*v),
                ServiceAttr::Other(_) => {}
            }
        }
        s
    }
}

/// A rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub id: u32,
    pub service: Option<u32>,
    pub prio: Option<u32>,
    #[serde(rename = "match")]
    pub matches: Option<RuleMatch>,
    pub target: Option<RuleTarget>,
    pub stats: Option<RuleStats>,
}

impl Rule {
    fn of(attrs: &[RuleAttr]) -> Self {
        let mut r = Self::default();
        for a in attrs {
            match a {
                RuleAttr::Id(v) => r.id = *v,
                RuleAttr::Service(v) => r.service = Some(*v),
                RuleAttr::Prio(v) => r.prio = Some(*v),
                RuleAttr::Match(Nest(m)) => {
                    let mut out = RuleMatch {
                        kind: name_of(MATCH_TYPES, SOCKGROUP_MATCH_TYPE_ANY),
                        value: None,
                    };
                    for a in m {
                        match a {
                            MatchAttr::Type(t) => out.kind = name_of(MATCH_TYPES, *t),
                            MatchAttr::Value(v) => out.value = Some(v.clone()),
                            MatchAttr::Other(_) => {}
                        }
                    }
                    r.matches = Some(out);
                }
                RuleAttr::Target(Nest(t)) => {
                    let mut out = RuleTarget {
                        kind: name_of(TARGET_TYPES, SOCKGROUP_TARGET_TYPE_LOCAL),
                        peer: None,
                        peers: Vec::new(),
                    };
                    for a in t {
                        match a {
                            TargetAttr::Type(t) => out.kind = name_of(TARGET_TYPES, *t),
                            TargetAttr::Peer(p) => out.peer = Some(*p),
                            TargetAttr::Peers(p) => out.peers.push(*p),
                            TargetAttr::Other(_) => {}
                        }
                    }
                    r.target = Some(out);
                }
                RuleAttr::Stats(Nest(s)) => {
                    let mut out = RuleStats::default();
                    for a in s {
                        match a {
                            RuleStatsAttr::Matched(v) => out.matched = *v,
                            RuleStatsAttr::NoneUp(v) => out.none_up = *v,
                            RuleStatsAttr::Target(Nest(t)) => {
                                let mut c = TargetCount::default();
                                for a in t {
                                    match a {
                                        TargetStatsAttr::Peer(p) => c.peer = *p,
                                        TargetStatsAttr::Count(v) => c.count = *v,
                                        TargetStatsAttr::Other(_) => {}
                                    }
                                }
                                out.targets.push(c);
                            }
                            RuleStatsAttr::Other(_) => {}
                        }
                    }
                    r.stats = Some(out);
                }
                RuleAttr::Other(_) => {}
            }
        }
        r
    }
}

/// The namespace's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub peers_up: u32,
    pub accepted: u64,
    pub refused_nonpeer: u64,
    pub rejected: u64,
    pub frames_tx: u64,
    pub frames_rx: u64,
    pub generation: u64,
    #[serde(flatten)]
    pub handoff: HandoffFrames,
    /// Handoff frames the outbox refused (full).
    pub outbox_full: u64,
    /// HANDOFF_REQs not sent: the peer's channel was not up.
    pub unsent: u64,
    /// The forwarding data plane's counters.
    pub fwd: FwdStats,
    /// The back-end's counters.
    pub backend: BackendStats,
}

/// The back-end's counters (the `backend-stats` set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackendStats {
    pub adopted: u64,
    pub refused: u64,
    pub terms: u64,
    pub watched: u64,
    pub replay_started: u64,
    pub replay_failed: u64,
    pub replay_dropped: u64,
    pub replay_rst_dropped: u64,
    pub xlate_conns: u64,
    pub xlated_in: u64,
    pub xlated_out: u64,
    pub xlate_drop: u64,
    pub aborted: u64,
    pub replay_tw_reopened: u64,
    pub replay_tw_refused: u64,
    pub reowned: u64,
    pub rto_reverted: u64,
    pub rto_probed: u64,
}

impl BackendStats {
    fn of(attrs: &[BackendStatsAttr]) -> Self {
        let mut b = Self::default();
        for a in attrs {
            let (slot, v) = match a {
                BackendStatsAttr::Adopted(v) => (&mut b.adopted, v),
                BackendStatsAttr::Refused(v) => (&mut b.refused, v),
                BackendStatsAttr::Terms(v) => (&mut b.terms, v),
                BackendStatsAttr::Watched(v) => (&mut b.watched, v),
                BackendStatsAttr::ReplayStarted(v) => (&mut b.replay_started, v),
                BackendStatsAttr::ReplayFailed(v) => (&mut b.replay_failed, v),
                BackendStatsAttr::ReplayDropped(v) => (&mut b.replay_dropped, v),
                BackendStatsAttr::ReplayRstDropped(v) => (&mut b.replay_rst_dropped, v),
                BackendStatsAttr::XlateConns(v) => (&mut b.xlate_conns, v),
                BackendStatsAttr::XlatedIn(v) => (&mut b.xlated_in, v),
                BackendStatsAttr::XlatedOut(v) => (&mut b.xlated_out, v),
                BackendStatsAttr::XlateDrop(v) => (&mut b.xlate_drop, v),
                BackendStatsAttr::Aborted(v) => (&mut b.aborted, v),
                BackendStatsAttr::ReplayTwReopened(v) => (&mut b.replay_tw_reopened, v),
                BackendStatsAttr::ReplayTwRefused(v) => (&mut b.replay_tw_refused, v),
                BackendStatsAttr::Reowned(v) => (&mut b.reowned, v),
                BackendStatsAttr::RtoReverted(v) => (&mut b.rto_reverted, v),
                BackendStatsAttr::RtoProbed(v) => (&mut b.rto_probed, v),
                BackendStatsAttr::Other(_) => continue,
            };
            *slot = *v;
        }
        b
    }
}

/// The forwarding data plane's counters (the `fwd-stats` set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FwdStats {
    pub tx: u64,
    pub tx_failed: u64,
    pub rx: u64,
    pub rx_nonpeer: u64,
    pub rx_refused: u64,
    pub rx_replay: u64,
    pub rx_unknown: u64,
    pub udp_flows: u64,
    pub udp_unpinned: u64,
    pub udp_local: u64,
    pub udp_forwarded: u64,
    pub udp_active: u64,
    pub verified_tx: u64,
    pub verified_rx: u64,
    pub rx_late_ack: u64,
    pub rx_stale_syn: u64,
}

impl FwdStats {
    fn of(attrs: &[FwdStatsAttr]) -> Self {
        let mut f = Self::default();
        for a in attrs {
            let (slot, v) = match a {
                FwdStatsAttr::Tx(v) => (&mut f.tx, v),
                FwdStatsAttr::TxFailed(v) => (&mut f.tx_failed, v),
                FwdStatsAttr::Rx(v) => (&mut f.rx, v),
                FwdStatsAttr::RxNonpeer(v) => (&mut f.rx_nonpeer, v),
                FwdStatsAttr::RxRefused(v) => (&mut f.rx_refused, v),
                FwdStatsAttr::RxReplay(v) => (&mut f.rx_replay, v),
                FwdStatsAttr::RxUnknown(v) => (&mut f.rx_unknown, v),
                FwdStatsAttr::UdpFlows(v) => (&mut f.udp_flows, v),
                FwdStatsAttr::UdpUnpinned(v) => (&mut f.udp_unpinned, v),
                FwdStatsAttr::UdpLocal(v) => (&mut f.udp_local, v),
                FwdStatsAttr::UdpForwarded(v) => (&mut f.udp_forwarded, v),
                FwdStatsAttr::UdpActive(v) => (&mut f.udp_active, v),
                FwdStatsAttr::VerifiedTx(v) => (&mut f.verified_tx, v),
                FwdStatsAttr::VerifiedRx(v) => (&mut f.verified_rx, v),
                FwdStatsAttr::RxLateAck(v) => (&mut f.rx_late_ack, v),
                FwdStatsAttr::RxStaleSyn(v) => (&mut f.rx_stale_syn, v),
                FwdStatsAttr::Other(_) => continue,
            };
            *slot = *v;
        }
        f
    }
}

impl Stats {
    fn of(attrs: &[StatsAttr]) -> Self {
        let mut s = Self::default();
        for a in attrs {
            match a {
                StatsAttr::PeersUp(v) => s.peers_up = *v,
                StatsAttr::Accepted(v) => s.accepted = *v,
                StatsAttr::RefusedNonpeer(v) => s.refused_nonpeer = *v,
                StatsAttr::Rejected(v) => s.rejected = *v,
                StatsAttr::FramesTx(v) => s.frames_tx = *v,
                StatsAttr::FramesRx(v) => s.frames_rx = *v,
                StatsAttr::Generation(v) => s.generation = *v,
                StatsAttr::Fwd(Nest(f)) => s.fwd = FwdStats::of(f),
                StatsAttr::Backend(Nest(b)) => s.backend = BackendStats::of(b),
                StatsAttr::HandoffReqTx(v) => s.handoff.handoff_req_tx = *v,
                StatsAttr::HandoffReqRx(v) => s.handoff.handoff_req_rx = *v,
                StatsAttr::HandoffAckTx(v) => s.handoff.handoff_ack_tx = *v,
                StatsAttr::HandoffAckRx(v) => s.handoff.handoff_ack_rx = *v,
                StatsAttr::HandoffNackTx(v) => s.handoff.handoff_nack_tx = *v,
                StatsAttr::HandoffNackRx(v) => s.handoff.handoff_nack_rx = *v,
                StatsAttr::TermTx(v) => s.handoff.term_tx = *v,
                StatsAttr::TermRx(v) => s.handoff.term_rx = *v,
                StatsAttr::OutboxFull(v) => s.outbox_full = *v,
                StatsAttr::Unsent(v) => s.unsent = *v,
                StatsAttr::Other(_) => {}
            }
        }
        s
    }
}

/// A connection of a service, as conn-get reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Conn {
    pub service: u32,
    /// The client's address and port.
    pub saddr: Option<IpAddr>,
    pub sport: Option<u16>,
    /// The service's address and port.
    pub daddr: Option<IpAddr>,
    pub dport: Option<u16>,
    /// held, local, remote, or the number of a state this sgctl does not know.
    pub state: Option<String>,
    pub client_isn: Option<u32>,
    pub server_isn: Option<u32>,
    /// The MSS the client announced (clamped by the listener's).
    pub mss: Option<u16>,
    /// The client's window scale (0 without window scaling).
    pub snd_wscale: Option<u8>,
    /// This node's window scale (0 without window scaling).
    pub rcv_wscale: Option<u8>,
    /// Whether window scaling was negotiated.
    pub wscale: Option<bool>,
    pub sack: Option<bool>,
    pub tstamp: Option<bool>,
    pub ts_recent: Option<u32>,
    pub ts_off: Option<u32>,
    pub ecn: Option<bool>,
    /// Request bytes held (or read before the decision).
    pub bytes: Option<u32>,
    /// The rule that decided (0: the service's default).
    pub rule: Option<u32>,
    /// The peer decided for (0: this node).
    pub peer: Option<u32>,
    pub age_ms: Option<u32>,
    /// Its owner and backup owner among the service's dispatchers (0: none).
    pub owner: Option<u32>,
    pub backup: Option<u32>,
}

impl Conn {
    fn of(attrs: &[ConnAttr]) -> Self {
        let mut c = Self::default();
        for a in attrs {
            match a {
                ConnAttr::Service(v) => c.service = *v,
                ConnAttr::Saddr(v) => c.saddr = Some(*v),
                ConnAttr::Daddr(v) => c.daddr = Some(*v),
                ConnAttr::Sport(v) => c.sport = Some(*v),
                ConnAttr::Dport(v) => c.dport = Some(*v),
                ConnAttr::State(v) => c.state = Some(name_of(CONN_STATES, *v)),
                ConnAttr::ClientIsn(v) => c.client_isn = Some(*v),
                ConnAttr::ServerIsn(v) => c.server_isn = Some(*v),
                ConnAttr::Mss(v) => c.mss = Some(*v),
                ConnAttr::SndWscale(v) => c.snd_wscale = Some(*v),
                ConnAttr::RcvWscale(v) => c.rcv_wscale = Some(*v),
                ConnAttr::Wscale(v) => c.wscale = Some(*v != 0),
                ConnAttr::Sack(v) => c.sack = Some(*v != 0),
                ConnAttr::Tstamp(v) => c.tstamp = Some(*v != 0),
                ConnAttr::TsRecent(v) => c.ts_recent = Some(*v),
                ConnAttr::TsOff(v) => c.ts_off = Some(*v),
                ConnAttr::Ecn(v) => c.ecn = Some(*v != 0),
                ConnAttr::Bytes(v) => c.bytes = Some(*v),
                ConnAttr::Rule(v) => c.rule = Some(*v),
                ConnAttr::Peer(v) => c.peer = Some(*v),
                ConnAttr::AgeMs(v) => c.age_ms = Some(*v),
                ConnAttr::Owner(v) => c.owner = Some(*v),
                ConnAttr::Backup(v) => c.backup = Some(*v),
                // The addresses say the family.
                ConnAttr::AddrFamily(_) | ConnAttr::Other(_) => {}
            }
        }
        c
    }
}

/// An event of the `events` group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// peer-up, peer-down or key-rejected.
    pub event: String,
    pub id: u32,
    pub addr: Option<IpAddr>,
}

impl Event {
    /// The event of a notification; `None` for any other message.
    pub fn of(msg: &SgMessage) -> Option<Self> {
        let event = match msg.cmd {
            SOCKGROUP_CMD_PEER_UP_NTF => "peer-up",
            SOCKGROUP_CMD_PEER_DOWN_NTF => "peer-down",
            SOCKGROUP_CMD_KEY_REJECTED_NTF => "key-rejected",
            _ => return None,
        };
        let Attrs::Peer(attrs) = &msg.attrs else {
            return None;
        };
        let peer = Peer::of(attrs);
        Some(Self {
            event: event.into(),
            id: peer.id,
            addr: peer.addr,
        })
    }

    /// One line: `peer-up id 2 addr 10.0.0.2`.
    pub fn line(&self) -> String {
        let addr = self.addr.map_or_else(|| "-".into(), |a| a.to_string());
        format!("{} id {} addr {}", self.event, self.id, addr)
    }
}

/// What `sgctl cluster show` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// None when this namespace has no node configured.
    pub node: Option<Node>,
    pub peers: Vec<Peer>,
    pub services: Vec<Service>,
    pub rules: Vec<Rule>,
    pub stats: Option<Stats>,
}

// ---- Rendering ----

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), T::to_string)
}

/// `ADDR:PORT`, or `-` without an address (the kernel reports a port, 0,
/// for an unset forwarding address).
fn addr_port(addr: &Option<IpAddr>, port: &Option<u16>) -> String {
    match (addr, port) {
        (Some(a), Some(p)) => SocketAddr::new(*a, *p).to_string(),
        (Some(a), None) => a.to_string(),
        (None, _) => "-".into(),
    }
}

/// The node and its membership, a few lines.
pub fn render_node(n: &Node) -> String {
    let mut out = format!(
        "node {}  ctl {}  fwd {}  heartbeat {} ms\n",
        n.id,
        addr_port(&n.ctl_addr, &n.ctl_port),
        addr_port(&n.fwd_addr, &n.fwd_port),
        opt(&n.hb_interval_ms),
    );
    let (isn, ts) = (
        n.replay_isn_offset.unwrap_or(0),
        n.replay_ts_offset.unwrap_or(0),
    );
    if isn != 0 || ts != 0 {
        let _ = writeln!(
            out,
            "replay offsets: isn {isn:#x}  ts {ts:#x} (replayed connections translated)"
        );
    }
    let members: Vec<String> = n.members.iter().map(u32::to_string).collect();
    let _ = writeln!(
        out,
        "membership generation {}: {}",
        opt(&n.generation),
        if members.is_empty() {
            "-".into()
        } else {
            members.join(" ")
        }
    );
    out
}

/// Peers as a table.
pub fn render_peers(peers: &[Peer], indent: &str) -> String {
    let mut t = Table::new(
        [
            "ID",
            "ADDR",
            "CTL-PORT",
            "STATE",
            "FRAMES-TX",
            "FRAMES-RX",
            "HB-TX",
            "HB-RX",
            "REJECTED",
            "CONNECTS",
            "UPS",
            "DOWNS",
        ]
        .into_iter()
        .chain(HandoffFrames::HEADERS),
    );
    for p in peers {
        let s = p.stats.clone().unwrap_or_default();
        let mut row = vec![
            p.id.to_string(),
            opt(&p.addr),
            opt(&p.ctl_port),
            opt(&p.state),
            s.frames_tx.to_string(),
            s.frames_rx.to_string(),
            s.heartbeats_tx.to_string(),
            s.heartbeats_rx.to_string(),
            s.rejected.to_string(),
            s.connects.to_string(),
            s.ups.to_string(),
            s.downs.to_string(),
        ];
        row.extend(s.handoff.cells());
        t.push(row);
    }
    t.render(indent)
}

/// Services as a table, then their counters as another (when the kernel
/// sent any).
pub fn render_services(services: &[Service], indent: &str) -> String {
    let mut t = Table::new([
        "ID",
        "ADDR",
        "PORT",
        "PROTO",
        "ROLE",
        "HOLD-MS",
        "DISPATCHERS",
    ]);
    for s in services {
        let d: Vec<String> = s.dispatchers.iter().map(u32::to_string).collect();
        t.push(vec![
            s.id.to_string(),
            opt(&s.addr),
            opt(&s.port),
            opt(&s.proto),
            opt(&s.role),
            opt(&s.hold_timeout_ms),
            if d.is_empty() {
                "-".into()
            } else {
                d.join(",")
            },
        ]);
    }
    let mut out = t.render(indent);
    if services.iter().any(|s| s.stats.is_some()) {
        let _ = write!(
            out,
            "\n{indent}counters:\n{}",
            render_service_stats(services, &format!("{indent}  "))
        );
    }
    out
}

/// The services' counters, a row per service.
pub fn render_service_stats(services: &[Service], indent: &str) -> String {
    let mut t = Table::new([
        "ID",
        "HELD",
        "LOCAL",
        "REMOTE",
        "OVER-BYTES",
        "OVER-TIME",
        "MALFORMED",
        "HTTP1",
        "HTTP2",
        "TLS",
        "COOKIE-BYPASS",
        "TFO-BYPASS",
        "HOLD-FULL",
        "ABORTED",
        "DUP",
        "HANDED-OFF",
        "FB-NACK",
        "FB-PEER-DOWN",
        "FB-TIMEOUT",
        "FB-UNSENT",
        "MOVED-DROP",
        "MOVED-FWD",
        "ENDED",
        "MSS-CLAMPED",
        "TO-OWNER",
        "TO-OWNER-DROP",
        "SYNC-TX",
        "SYNC-RX",
        "SYNC-REJECTED",
        "TAKEOVER",
        "VIEW-DROP",
        "TO-BACKUP",
        "TRANSFER-TX",
        "TRANSFER-RX",
        "TRANSFER-REJECTED",
        "END-TX",
        "END-RX",
        "CACHE-HIT",
        "CACHE-FILL",
        "TRANSFER-ACKED",
        "LATE-FWD",
        "STALE",
    ]);
    for s in services {
        let Some(c) = &s.stats else { continue };
        t.push(
            [
                u64::from(s.id),
                c.held,
                c.local,
                c.remote,
                c.over_bytes,
                c.over_time,
                c.malformed,
                c.http1,
                c.http2,
                c.tls,
                c.cookie_bypass,
                c.tfo_bypass,
                c.hold_full,
                c.aborted,
                c.dup,
                c.handed_off,
                c.fallback_nack,
                c.fallback_peer_down,
                c.fallback_timeout,
                c.fallback_unsent,
                c.moved_drop,
                c.moved_fwd,
                c.ended,
                c.mss_clamped,
                c.to_owner,
                c.to_owner_drop,
                c.sync_tx,
                c.sync_rx,
                c.sync_rejected,
                c.takeover,
                c.view_drop,
                c.to_backup,
                c.transfer_tx,
                c.transfer_rx,
                c.transfer_rejected,
                c.end_tx,
                c.end_rx,
                c.cache_hit,
                c.cache_fill,
                c.transfer_acked,
                c.late_fwd,
                c.stale_replaced,
            ]
            .iter()
            .map(u64::to_string)
            .collect(),
        );
    }
    t.render(indent)
}

/// `yes`/`no` of an optional flag, `-` when absent.
fn flag(v: &Option<bool>) -> String {
    v.map_or_else(|| "-".into(), |b| if b { "yes" } else { "no" }.into())
}

/// Connections as a table.
pub fn render_conns(conns: &[Conn], indent: &str) -> String {
    let mut t = Table::new([
        "SERVICE", "CLIENT", "VIP", "STATE", "MSS", "WSCALE", "SACK", "TS", "ECN", "BYTES", "RULE",
        "PEER", "AGE-MS", "OWNER", "BACKUP",
    ]);
    for c in conns {
        let wscale = match (c.wscale, c.snd_wscale, c.rcv_wscale) {
            (Some(false), ..) => "no".into(),
            (_, None, None) => "-".into(),
            (_, s, r) => format!("{}/{}", opt(&s), opt(&r)),
        };
        t.push(vec![
            c.service.to_string(),
            addr_port(&c.saddr, &c.sport),
            addr_port(&c.daddr, &c.dport),
            opt(&c.state),
            opt(&c.mss),
            wscale,
            flag(&c.sack),
            flag(&c.tstamp),
            flag(&c.ecn),
            opt(&c.bytes),
            opt(&c.rule),
            opt(&c.peer),
            opt(&c.age_ms),
            opt(&c.owner),
            opt(&c.backup),
        ]);
    }
    t.render(indent)
}

/// Rules as a table.
pub fn render_rules(rules: &[Rule], indent: &str) -> String {
    let mut t = Table::new([
        "ID", "SERVICE", "PRIO", "MATCH", "TARGET", "MATCHED", "NONE-UP", "PLACED",
    ]);
    for r in rules {
        let m = r.matches.as_ref().map_or_else(
            || "-".into(),
            |m| match &m.value {
                Some(v) => format!("{}:{v}", m.kind),
                None => m.kind.clone(),
            },
        );
        let tg = r.target.as_ref().map_or_else(
            || "-".into(),
            |t| match (t.peer, &t.peers[..]) {
                (_, [_, ..]) => format!(
                    "{}:{}",
                    t.kind,
                    t.peers
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                (Some(p), []) if t.kind == "peer" => format!("{}:{p}", t.kind),
                _ => t.kind.clone(),
            },
        );
        // PLACED: matches per peer of the target, PEER=COUNT (0 is this node).
        let (matched, none_up, placed) = r.stats.as_ref().map_or_else(
            || ("-".into(), "-".into(), "-".into()),
            |s| {
                let placed = s
                    .targets
                    .iter()
                    .map(|c| format!("{}={}", c.peer, c.count))
                    .collect::<Vec<_>>()
                    .join(",");
                (s.matched.to_string(), s.none_up.to_string(), placed)
            },
        );
        t.push(vec![
            r.id.to_string(),
            opt(&r.service),
            opt(&r.prio),
            m,
            tg,
            matched,
            none_up,
            placed,
        ]);
    }
    t.render(indent)
}

/// The namespace's counters as a one-row table.
pub fn render_stats(s: &Stats, indent: &str) -> String {
    let mut t = Table::new(
        [
            "PEERS-UP",
            "ACCEPTED",
            "REFUSED-NONPEER",
            "REJECTED",
            "FRAMES-TX",
            "FRAMES-RX",
            "GENERATION",
        ]
        .into_iter()
        .chain(HandoffFrames::HEADERS)
        .chain(["OUTBOX-FULL", "UNSENT"]),
    );
    let mut row = vec![
        s.peers_up.to_string(),
        s.accepted.to_string(),
        s.refused_nonpeer.to_string(),
        s.rejected.to_string(),
        s.frames_tx.to_string(),
        s.frames_rx.to_string(),
        s.generation.to_string(),
    ];
    row.extend(s.handoff.cells());
    row.extend([s.outbox_full.to_string(), s.unsent.to_string()]);
    t.push(row);
    let f = &s.fwd;
    let mut fwd = Table::new([
        "FWD-TX",
        "TX-FAILED",
        "FWD-RX",
        "RX-NONPEER",
        "RX-REFUSED",
        "RX-REPLAY",
        "RX-UNKNOWN",
        "VERIFIED-TX",
        "VERIFIED-RX",
        "LATE-ACK",
        "STALE-SYN",
    ]);
    fwd.push(
        [
            f.tx,
            f.tx_failed,
            f.rx,
            f.rx_nonpeer,
            f.rx_refused,
            f.rx_replay,
            f.rx_unknown,
            f.verified_tx,
            f.verified_rx,
            f.rx_late_ack,
            f.rx_stale_syn,
        ]
        .iter()
        .map(u64::to_string)
        .collect(),
    );
    let mut udp = Table::new([
        "UDP-FLOWS",
        "UNPINNED",
        "ACTIVE",
        "UDP-LOCAL",
        "UDP-FORWARDED",
    ]);
    udp.push(
        [
            f.udp_flows,
            f.udp_unpinned,
            f.udp_active,
            f.udp_local,
            f.udp_forwarded,
        ]
        .iter()
        .map(u64::to_string)
        .collect(),
    );
    let b = &s.backend;
    let mut be = Table::new([
        "ADOPTED",
        "REFUSED",
        "TERMS",
        "WATCHED",
        "REPLAYS",
        "REPLAY-FAILED",
        "REPLAY-DROPPED",
        "RST-DROPPED",
        "XLATE-CONNS",
        "XLATED-IN",
        "XLATED-OUT",
        "XLATE-DROP",
        "ABORTED",
        "TW-REOPENED",
        "TW-REFUSED",
        "REOWNED",
        "RTO-REVERTED",
        "RTO-PROBED",
    ]);
    be.push(
        [
            b.adopted,
            b.refused,
            b.terms,
            b.watched,
            b.replay_started,
            b.replay_failed,
            b.replay_dropped,
            b.replay_rst_dropped,
            b.xlate_conns,
            b.xlated_in,
            b.xlated_out,
            b.xlate_drop,
            b.aborted,
            b.replay_tw_reopened,
            b.replay_tw_refused,
            b.reowned,
            b.rto_reverted,
            b.rto_probed,
        ]
        .iter()
        .map(u64::to_string)
        .collect(),
    );
    format!(
        "{}{}{}{}",
        t.render(indent),
        fwd.render(indent),
        udp.render(indent),
        be.render(indent)
    )
}

/// The whole overview.
pub fn render_overview(o: &Overview) -> String {
    let mut out = match &o.node {
        Some(n) => render_node(n),
        None => "node: not configured\n".into(),
    };
    let _ = write!(out, "\npeers:\n{}", render_peers(&o.peers, "  "));
    let _ = write!(out, "\nservices:\n{}", render_services(&o.services, "  "));
    let _ = write!(out, "\nrules:\n{}", render_rules(&o.rules, "  "));
    if let Some(s) = &o.stats {
        let _ = write!(out, "\nnamespace counters:\n{}", render_stats(s, "  "));
    }
    out
}

// ---- Running ----

/// The replies of `msgs` in their set, as `T`.
fn collect<T>(msgs: Vec<SgMessage>, of: impl Fn(&Attrs) -> Option<T>) -> Vec<T> {
    msgs.iter().filter_map(|m| of(&m.attrs)).collect()
}

fn peers_of(msgs: Vec<SgMessage>) -> Vec<Peer> {
    collect(msgs, |a| match a {
        Attrs::Peer(a) => Some(Peer::of(a)),
        _ => None,
    })
}

fn services_of(msgs: Vec<SgMessage>) -> Vec<Service> {
    collect(msgs, |a| match a {
        Attrs::Service(a) => Some(Service::of(a)),
        _ => None,
    })
}

fn conns_of(msgs: Vec<SgMessage>) -> Vec<Conn> {
    collect(msgs, |a| match a {
        Attrs::Conn(a) => Some(Conn::of(a)),
        _ => None,
    })
}

fn rules_of(msgs: Vec<SgMessage>) -> Vec<Rule> {
    collect(msgs, |a| match a {
        Attrs::Rule(a) => Some(Rule::of(a)),
        _ => None,
    })
}

fn node_of(msgs: Vec<SgMessage>) -> Option<Node> {
    collect(msgs, |a| match a {
        Attrs::Node(a) => Some(Node::of(a)),
        _ => None,
    })
    .into_iter()
    .next()
}

fn stats_of(msgs: Vec<SgMessage>) -> Option<Stats> {
    collect(msgs, |a| match a {
        Attrs::Stats(a) => Some(Stats::of(a)),
        _ => None,
    })
    .into_iter()
    .next()
}

/// Gets one object (`--id`) or dumps them all.
fn get(c: &mut Client, what: &str, cmd: u8, id: Option<u32>) -> Result<Vec<SgMessage>, Error> {
    match id {
        Some(_) => c.request(what, id_msg(cmd, id)),
        None => c.dump(what, id_msg(cmd, None)),
    }
}

/// The overview: node (none if not configured), peers, services, rules and
/// counters.
fn overview(c: &mut Client) -> Result<Overview, Error> {
    let node = match c.request("node show", id_msg(SOCKGROUP_CMD_NODE_GET, None)) {
        Ok(r) => node_of(r),
        Err(e) if e.errno() == Some(libc::ENOENT) => None,
        Err(e) => return Err(e),
    };
    Ok(Overview {
        node,
        peers: peers_of(get(c, "peer show", SOCKGROUP_CMD_PEER_GET, None)?),
        services: services_of(get(c, "service show", SOCKGROUP_CMD_SERVICE_GET, None)?),
        rules: rules_of(get(c, "rule show", SOCKGROUP_CMD_RULE_GET, None)?),
        stats: stats_of(c.request("stats", id_msg(SOCKGROUP_CMD_STATS_GET, None))?),
    })
}

/// Prints each event as a line (or a JSON object), flushing each, until the
/// socket fails or stdout closes.
fn monitor(c: &mut Client, json: bool, args: &MonitorArgs) -> Result<(), Error> {
    c.subscribe()?;
    if let Some(path) = &args.ready_file {
        crate::serve::write_atomically(path, "")
            .map_err(|e| Error::Msg(format!("writing {}: {e}", path.display())))?;
    }
    let stdout = io::stdout();
    loop {
        let msgs = match c.next_events() {
            Ok(m) => m,
            Err(e) if e.errno() == Some(libc::ENOBUFS) => {
                eprintln!("sgctl: cluster monitor: events lost (ENOBUFS)");
                continue;
            }
            Err(e) => return Err(e),
        };
        for ev in msgs.iter().filter_map(Event::of) {
            let line = if json {
                serde_json::to_string(&ev).map_err(|e| Error::Msg(format!("encoding JSON: {e}")))?
            } else {
                ev.line()
            };
            let mut out = stdout.lock();
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                // The reader went away: that ends the monitor.
                return Ok(());
            }
        }
    }
}

/// Runs `sgctl cluster ...`.  Changes print nothing when they succeed (as
/// ip(8) does); the show commands print tables, or JSON with `--json`.
pub fn run(args: ClusterArgs) -> Result<(), Error> {
    let json = args.json;
    // The key is read before the kernel is asked anything.
    let key = match &args.command {
        ClusterCommand::Peer(PeerCommand::Add(a)) => Some(
            key::read_key_file(&a.key_file, a.insecure_key_file)
                .map_err(|e| e.context("peer add"))?,
        ),
        _ => None,
    };
    let mut c = Client::open()?;
    match args.command {
        ClusterCommand::Node(NodeCommand::Set(a)) => {
            c.request("node set", node_set_msg(&a)).map(drop)
        }
        ClusterCommand::Node(NodeCommand::Show) => {
            let node = node_of(c.request("node show", id_msg(SOCKGROUP_CMD_NODE_GET, None))?)
                .ok_or_else(|| Error::Msg("node show: the kernel sent no node".into()))?;
            output(json, &node, || render_node(&node))
        }
        ClusterCommand::Node(NodeCommand::Del) => c
            .request("node del", id_msg(SOCKGROUP_CMD_NODE_DEL, None))
            .map(drop),
        ClusterCommand::Peer(PeerCommand::Add(a)) => c
            .request("peer add", peer_new_msg(&a, key.expect("read above")))
            .map(drop),
        ClusterCommand::Peer(PeerCommand::Del(a)) => c
            .request("peer del", id_msg(SOCKGROUP_CMD_PEER_DEL, Some(a.id)))
            .map(drop),
        ClusterCommand::Peer(PeerCommand::Show(a)) => {
            let peers = peers_of(get(&mut c, "peer show", SOCKGROUP_CMD_PEER_GET, a.id)?);
            output(json, &peers, || render_peers(&peers, ""))
        }
        ClusterCommand::Service(ServiceCommand::Add(a)) => {
            c.request("service add", service_new_msg(&a)).map(drop)
        }
        ClusterCommand::Service(ServiceCommand::Del(a)) => c
            .request("service del", id_msg(SOCKGROUP_CMD_SERVICE_DEL, Some(a.id)))
            .map(drop),
        ClusterCommand::Service(ServiceCommand::Show(a)) => {
            let services = services_of(get(
                &mut c,
                "service show",
                SOCKGROUP_CMD_SERVICE_GET,
                a.id,
            )?);
            output(json, &services, || render_services(&services, ""))
        }
        ClusterCommand::Rule(RuleCommand::Add(a)) => {
            c.request("rule add", rule_new_msg(&a)).map(drop)
        }
        ClusterCommand::Rule(RuleCommand::Del(a)) => c
            .request("rule del", id_msg(SOCKGROUP_CMD_RULE_DEL, Some(a.id)))
            .map(drop),
        ClusterCommand::Rule(RuleCommand::Show(a)) => {
            let rules = rules_of(get(&mut c, "rule show", SOCKGROUP_CMD_RULE_GET, a.id)?);
            output(json, &rules, || render_rules(&rules, ""))
        }
        ClusterCommand::Show => {
            let o = overview(&mut c)?;
            output(json, &o, || render_overview(&o))
        }
        ClusterCommand::Conns => {
            let conns = conns_of(c.dump("conns", id_msg(SOCKGROUP_CMD_CONN_GET, None))?);
            output(json, &conns, || render_conns(&conns, ""))
        }
        ClusterCommand::Monitor(a) => monitor(&mut c, json, &a),
    }
}
