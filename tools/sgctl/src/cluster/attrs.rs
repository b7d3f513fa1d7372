// SPDX-License-Identifier: GPL-2.0

//! The messages of the `sockgroup` generic netlink family, as typed values
//! that netlink-packet-core emits and parses (the attribute sets of
//! `Documentation/netlink/specs/sockgroup.yaml`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, ErrorContext, Nla, NlaBuffer, NlasIterator, Parseable,
    ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use crate::genl_uapi::*;

/// How one attribute's value is laid out (host byte order for integers, as
/// the spec's types without `byte-order` are).
pub trait Value: Sized {
    /// Bytes of the value, without padding.
    fn len(&self) -> usize;
    /// Writes the value into `buf` (exactly [`Value::len`] bytes).
    fn emit(&self, buf: &mut [u8]);
    /// Reads a value from the attribute's payload.
    fn parse(buf: &[u8]) -> Result<Self, DecodeError>;
    /// Whether the attribute is a nest (NLA_F_NESTED is set).
    fn nested() -> bool {
        false
    }
}

macro_rules! int_value {
    ($($ty:ty),*) => {$(
        impl Value for $ty {
            fn len(&self) -> usize {
                std::mem::size_of::<$ty>()
            }
            fn emit(&self, buf: &mut [u8]) {
                buf.copy_from_slice(&self.to_ne_bytes());
            }
            fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
                let bytes = buf.try_into().map_err(|_| {
                    DecodeError::from(format!(
                        "{} bytes for a {}-byte integer",
                        buf.len(),
                        std::mem::size_of::<$ty>()
                    ))
                })?;
                Ok(<$ty>::from_ne_bytes(bytes))
            }
        }
    )*};
}
int_value!(u8, u16, u32, u64);

/// An address attribute: 4 bytes (IPv4) or 16 (IPv6), network order.
impl Value for IpAddr {
    fn len(&self) -> usize {
        match self {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 16,
        }
    }
    fn emit(&self, buf: &mut [u8]) {
        match self {
            IpAddr::V4(a) => buf.copy_from_slice(&a.octets()),
            IpAddr::V6(a) => buf.copy_from_slice(&a.octets()),
        }
    }
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        if let Ok(b) = <[u8; 4]>::try_from(buf) {
            Ok(IpAddr::V4(Ipv4Addr::from(b)))
        } else if let Ok(b) = <[u8; 16]>::try_from(buf) {
            Ok(IpAddr::V6(Ipv6Addr::from(b)))
        } else {
            Err(DecodeError::invalid_ip_address(buf.len()))
        }
    }
}

/// A string attribute (NUL-terminated on the wire).
impl Value for String {
    fn len(&self) -> usize {
        self.len() + 1
    }
    fn emit(&self, buf: &mut [u8]) {
        let (text, nul) = buf.split_at_mut(self.len());
        text.copy_from_slice(self.as_bytes());
        nul[0] = 0;
    }
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let text = buf.strip_suffix(&[0]).unwrap_or(buf);
        String::from_utf8(text.to_vec()).map_err(DecodeError::from)
    }
}

/// A key: the pair's secret.  Its bytes are cleared when it is dropped, and
/// it is never printed (Debug shows its length only).
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    /// The key of these bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

impl Value for Key {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn emit(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0);
    }
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self(buf.to_vec()))
    }
}

/// A nest of attributes of one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nest<T>(pub Vec<T>);

impl<T> Value for Nest<T>
where
    T: Nla + for<'a> Parseable<NlaBuffer<&'a [u8]>>,
{
    fn len(&self) -> usize {
        self.0.as_slice().buffer_len()
    }
    fn emit(&self, buf: &mut [u8]) {
        self.0.as_slice().emit(buf)
    }
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        parse_attrs(buf).map(Nest)
    }
    fn nested() -> bool {
        true
    }
}

/// Every attribute of `buf`, in order.
pub fn parse_attrs<T>(buf: &[u8]) -> Result<Vec<T>, DecodeError>
where
    T: for<'a> Parseable<NlaBuffer<&'a [u8]>>,
{
    NlasIterator::new(buf).map(|nla| T::parse(&nla?)).collect()
}

/// One attribute set: an enum with a variant per attribute (its type
/// constant and value type), and `Other` for any attribute this sgctl does
/// not know (a newer kernel's), kept as it came.
macro_rules! attr_set {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident($ty:ty) = $kind:ident,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant($ty),)*
            /// An attribute this sgctl does not know.
            Other(DefaultNla),
        }

        impl Nla for $name {
            fn value_len(&self) -> usize {
                match self {
                    $(Self::$variant(v) => Value::len(v),)*
                    Self::Other(nla) => nla.value_len(),
                }
            }
            fn kind(&self) -> u16 {
                match self {
                    $(Self::$variant(_) => $kind,)*
                    Self::Other(nla) => nla.kind(),
                }
            }
            fn emit_value(&self, buf: &mut [u8]) {
                match self {
                    $(Self::$variant(v) => Value::emit(v, buf),)*
                    Self::Other(nla) => nla.emit_value(buf),
                }
            }
            fn is_nested(&self) -> bool {
                match self {
                    $(Self::$variant(_) => <$ty as Value>::nested(),)*
                    Self::Other(nla) => nla.is_nested(),
                }
            }
        }

        impl<'a> Parseable<NlaBuffer<&'a [u8]>> for $name {
            fn parse(buf: &NlaBuffer<&'a [u8]>) -> Result<Self, DecodeError> {
                Ok(match buf.kind() {
                    $($kind => Self::$variant(
                        <$ty as Value>::parse(buf.value())
                            .context(concat!(stringify!($name), "::", stringify!($variant)))?,
                    ),)*
                    _ => Self::Other(DefaultNla::parse(buf)?),
                })
            }
        }
    };
}

attr_set! {
    /// The `node` set.
    NodeAttr {
        Id(u32) = SOCKGROUP_A_NODE_ID,
        CtlAddr(IpAddr) = SOCKGROUP_A_NODE_CTL_ADDR,
        CtlPort(u16) = SOCKGROUP_A_NODE_CTL_PORT,
        FwdAddr(IpAddr) = SOCKGROUP_A_NODE_FWD_ADDR,
        FwdPort(u16) = SOCKGROUP_A_NODE_FWD_PORT,
        HbInterval(u32) = SOCKGROUP_A_NODE_HB_INTERVAL,
        Generation(u64) = SOCKGROUP_A_NODE_GENERATION,
        /// One id of the membership (multi-attr).
        Member(u32) = SOCKGROUP_A_NODE_MEMBERS,
        ReplayIsnOffset(u32) = SOCKGROUP_A_NODE_REPLAY_ISN_OFFSET,
        ReplayTsOffset(u32) = SOCKGROUP_A_NODE_REPLAY_TS_OFFSET,
    }
}

attr_set! {
    /// The `peer-stats` set.
    PeerStatsAttr {
        FramesTx(u64) = SOCKGROUP_A_PEER_STATS_FRAMES_TX,
        FramesRx(u64) = SOCKGROUP_A_PEER_STATS_FRAMES_RX,
        HeartbeatsTx(u64) = SOCKGROUP_A_PEER_STATS_HEARTBEATS_TX,
        HeartbeatsRx(u64) = SOCKGROUP_A_PEER_STATS_HEARTBEATS_RX,
        Rejected(u64) = SOCKGROUP_A_PEER_STATS_REJECTED,
        Connects(u64) = SOCKGROUP_A_PEER_STATS_CONNECTS,
        Ups(u64) = SOCKGROUP_A_PEER_STATS_UPS,
        Downs(u64) = SOCKGROUP_A_PEER_STATS_DOWNS,
        HandoffReqTx(u64) = SOCKGROUP_A_PEER_STATS_HANDOFF_REQ_TX,
        HandoffReqRx(u64) = SOCKGROUP_A_PEER_STATS_HANDOFF_REQ_RX,
        HandoffAckTx(u64) = SOCKGROUP_A_PEER_STATS_HANDOFF_ACK_TX,
        HandoffAckRx(u64) = SOCKGROUP_A_PEER_STATS_HANDOFF_ACK_RX,
        HandoffNackTx(u64) = SOCKGROUP_A_PEER_STATS_HANDOFF_NACK_TX,
        HandoffNackRx(u64) = SOCKGROUP_A_PEER_STATS_HANDOFF_NACK_RX,
        TermTx(u64) = SOCKGROUP_A_PEER_STATS_TERM_TX,
        TermRx(u64) = SOCKGROUP_A_PEER_STATS_TERM_RX,
    }
}

attr_set! {
    /// The `peer` set.
    PeerAttr {
        Id(u32) = SOCKGROUP_A_PEER_ID,
        Addr(IpAddr) = SOCKGROUP_A_PEER_ADDR,
        CtlPort(u16) = SOCKGROUP_A_PEER_CTL_PORT,
        Key(Key) = SOCKGROUP_A_PEER_KEY,
        State(u32) = SOCKGROUP_A_PEER_STATE,
        Stats(Nest<PeerStatsAttr>) = SOCKGROUP_A_PEER_STATS,
    }
}

attr_set! {
    /// The `service` set.
    ServiceAttr {
        Id(u32) = SOCKGROUP_A_SERVICE_ID,
        Addr(IpAddr) = SOCKGROUP_A_SERVICE_ADDR,
        Port(u16) = SOCKGROUP_A_SERVICE_PORT,
        Proto(u8) = SOCKGROUP_A_SERVICE_PROTO,
        Role(u32) = SOCKGROUP_A_SERVICE_ROLE,
        HoldTimeout(u32) = SOCKGROUP_A_SERVICE_HOLD_TIMEOUT,
        Stats(Nest<ServiceStatsAttr>) = SOCKGROUP_A_SERVICE_STATS,
        Dispatchers(u32) = SOCKGROUP_A_SERVICE_DISPATCHERS,
    }
}

attr_set! {
    /// The `service-stats` set.
    ServiceStatsAttr {
        Held(u64) = SOCKGROUP_A_SERVICE_STATS_HELD,
        Local(u64) = SOCKGROUP_A_SERVICE_STATS_LOCAL,
        Remote(u64) = SOCKGROUP_A_SERVICE_STATS_REMOTE,
        OverBytes(u64) = SOCKGROUP_A_SERVICE_STATS_OVER_BYTES,
        OverTime(u64) = SOCKGROUP_A_SERVICE_STATS_OVER_TIME,
        Malformed(u64) = SOCKGROUP_A_SERVICE_STATS_MALFORMED,
        Http1(u64) = SOCKGROUP_A_SERVICE_STATS_HTTP1,
        Http2(u64) = SOCKGROUP_A_SERVICE_STATS_HTTP2,
        Tls(u64) = SOCKGROUP_A_SERVICE_STATS_TLS,
        CookieBypass(u64) = SOCKGROUP_A_SERVICE_STATS_COOKIE_BYPASS,
        TfoBypass(u64) = SOCKGROUP_A_SERVICE_STATS_TFO_BYPASS,
        HoldFull(u64) = SOCKGROUP_A_SERVICE_STATS_HOLD_FULL,
        Aborted(u64) = SOCKGROUP_A_SERVICE_STATS_ABORTED,
        Dup(u64) = SOCKGROUP_A_SERVICE_STATS_DUP,
        HandedOff(u64) = SOCKGROUP_A_SERVICE_STATS_HANDED_OFF,
        FallbackNack(u64) = SOCKGROUP_A_SERVICE_STATS_FALLBACK_NACK,
        FallbackPeerDown(u64) = SOCKGROUP_A_SERVICE_STATS_FALLBACK_PEER_DOWN,
        FallbackTimeout(u64) = SOCKGROUP_A_SERVICE_STATS_FALLBACK_TIMEOUT,
        FallbackUnsent(u64) = SOCKGROUP_A_SERVICE_STATS_FALLBACK_UNSENT,
        MovedDrop(u64) = SOCKGROUP_A_SERVICE_STATS_MOVED_DROP,
        MovedFwd(u64) = SOCKGROUP_A_SERVICE_STATS_MOVED_FWD,
        Ended(u64) = SOCKGROUP_A_SERVICE_STATS_ENDED,
        MssClamped(u64) = SOCKGROUP_A_SERVICE_STATS_MSS_CLAMPED,
        ToOwner(u64) = SOCKGROUP_A_SERVICE_STATS_TO_OWNER,
        ToOwnerDrop(u64) = SOCKGROUP_A_SERVICE_STATS_TO_OWNER_DROP,
        SyncTx(u64) = SOCKGROUP_A_SERVICE_STATS_SYNC_TX,
        SyncRx(u64) = SOCKGROUP_A_SERVICE_STATS_SYNC_RX,
        SyncRejected(u64) = SOCKGROUP_A_SERVICE_STATS_SYNC_REJECTED,
        Takeover(u64) = SOCKGROUP_A_SERVICE_STATS_TAKEOVER,
        ViewDrop(u64) = SOCKGROUP_A_SERVICE_STATS_VIEW_DROP,
        ToBackup(u64) = SOCKGROUP_A_SERVICE_STATS_TO_BACKUP,
        TransferTx(u64) = SOCKGROUP_A_SERVICE_STATS_TRANSFER_TX,
        TransferRx(u64) = SOCKGROUP_A_SERVICE_STATS_TRANSFER_RX,
        TransferRejected(u64) = SOCKGROUP_A_SERVICE_STATS_TRANSFER_REJECTED,
        EndTx(u64) = SOCKGROUP_A_SERVICE_STATS_END_TX,
        EndRx(u64) = SOCKGROUP_A_SERVICE_STATS_END_RX,
        CacheHit(u64) = SOCKGROUP_A_SERVICE_STATS_CACHE_HIT,
        CacheFill(u64) = SOCKGROUP_A_SERVICE_STATS_CACHE_FILL,
        TransferAcked(u64) = SOCKGROUP_A_SERVICE_STATS_TRANSFER_ACKED,
        LateFwd(u64) = SOCKGROUP_A_SERVICE_STATS_LATE_FWD,
        StaleReplaced(u64) = SOCKGROUP_A_SERVICE_STATS_STALE_REPLACED,
    }
}

attr_set! {
    /// The `match` set.
    MatchAttr {
        Type(u32) = SOCKGROUP_A_MATCH_TYPE,
        Value(String) = SOCKGROUP_A_MATCH_VALUE,
    }
}

attr_set! {
    /// The `target` set.
    TargetAttr {
        Type(u32) = SOCKGROUP_A_TARGET_TYPE,
        Peer(u32) = SOCKGROUP_A_TARGET_PEER,
        /// One peer of a hash target (multi-attr).
        Peers(u32) = SOCKGROUP_A_TARGET_PEERS,
    }
}

attr_set! {
    /// The `target-stats` set.
    TargetStatsAttr {
        Peer(u32) = SOCKGROUP_A_TARGET_STATS_PEER,
        Count(u64) = SOCKGROUP_A_TARGET_STATS_COUNT,
    }
}

attr_set! {
    /// The `rule-stats` set.
    RuleStatsAttr {
        Matched(u64) = SOCKGROUP_A_RULE_STATS_MATCHED,
        NoneUp(u64) = SOCKGROUP_A_RULE_STATS_NONE_UP,
        /// One target's count (multi-attr).
        Target(Nest<TargetStatsAttr>) = SOCKGROUP_A_RULE_STATS_TARGET,
    }
}

attr_set! {
    /// The `rule` set.
    RuleAttr {
        Id(u32) = SOCKGROUP_A_RULE_ID,
        Service(u32) = SOCKGROUP_A_RULE_SERVICE,
        Prio(u32) = SOCKGROUP_A_RULE_PRIO,
        Match(Nest<MatchAttr>) = SOCKGROUP_A_RULE_MATCH,
        Target(Nest<TargetAttr>) = SOCKGROUP_A_RULE_TARGET,
        Stats(Nest<RuleStatsAttr>) = SOCKGROUP_A_RULE_STATS,
    }
}

attr_set! {
    /// The `stats` set.
    StatsAttr {
        PeersUp(u32) = SOCKGROUP_A_STATS_PEERS_UP,
        Accepted(u64) = SOCKGROUP_A_STATS_ACCEPTED,
        RefusedNonpeer(u64) = SOCKGROUP_A_STATS_REFUSED_NONPEER,
        Rejected(u64) = SOCKGROUP_A_STATS_REJECTED,
        FramesTx(u64) = SOCKGROUP_A_STATS_FRAMES_TX,
        FramesRx(u64) = SOCKGROUP_A_STATS_FRAMES_RX,
        Generation(u64) = SOCKGROUP_A_STATS_GENERATION,
        HandoffReqTx(u64) = SOCKGROUP_A_STATS_HANDOFF_REQ_TX,
        HandoffReqRx(u64) = SOCKGROUP_A_STATS_HANDOFF_REQ_RX,
        HandoffAckTx(u64) = SOCKGROUP_A_STATS_HANDOFF_ACK_TX,
        HandoffAckRx(u64) = SOCKGROUP_A_STATS_HANDOFF_ACK_RX,
        HandoffNackTx(u64) = SOCKGROUP_A_STATS_HANDOFF_NACK_TX,
        HandoffNackRx(u64) = SOCKGROUP_A_STATS_HANDOFF_NACK_RX,
        TermTx(u64) = SOCKGROUP_A_STATS_TERM_TX,
        TermRx(u64) = SOCKGROUP_A_STATS_TERM_RX,
        OutboxFull(u64) = SOCKGROUP_A_STATS_OUTBOX_FULL,
        Unsent(u64) = SOCKGROUP_A_STATS_UNSENT,
        Fwd(Nest<FwdStatsAttr>) = SOCKGROUP_A_STATS_FWD,
        Backend(Nest<BackendStatsAttr>) = SOCKGROUP_A_STATS_BACKEND,
    }
}

attr_set! {
    /// The `backend-stats` set: the back-end's counters.
    BackendStatsAttr {
        Adopted(u64) = SOCKGROUP_A_BACKEND_STATS_ADOPTED,
        Refused(u64) = SOCKGROUP_A_BACKEND_STATS_REFUSED,
        Terms(u64) = SOCKGROUP_A_BACKEND_STATS_TERMS,
        Watched(u64) = SOCKGROUP_A_BACKEND_STATS_WATCHED,
        ReplayStarted(u64) = SOCKGROUP_A_BACKEND_STATS_REPLAY_STARTED,
        ReplayFailed(u64) = SOCKGROUP_A_BACKEND_STATS_REPLAY_FAILED,
        ReplayDropped(u64) = SOCKGROUP_A_BACKEND_STATS_REPLAY_DROPPED,
        ReplayRstDropped(u64) = SOCKGROUP_A_BACKEND_STATS_REPLAY_RST_DROPPED,
        XlateConns(u64) = SOCKGROUP_A_BACKEND_STATS_XLATE_CONNS,
        XlatedIn(u64) = SOCKGROUP_A_BACKEND_STATS_XLATED_IN,
        XlatedOut(u64) = SOCKGROUP_A_BACKEND_STATS_XLATED_OUT,
        XlateDrop(u64) = SOCKGROUP_A_BACKEND_STATS_XLATE_DROP,
        Aborted(u64) = SOCKGROUP_A_BACKEND_STATS_ABORTED,
        ReplayTwReopened(u64) = SOCKGROUP_A_BACKEND_STATS_REPLAY_TW_REOPENED,
        ReplayTwRefused(u64) = SOCKGROUP_A_BACKEND_STATS_REPLAY_TW_REFUSED,
        Reowned(u64) = SOCKGROUP_A_BACKEND_STATS_REOWNED,
        RtoReverted(u64) = SOCKGROUP_A_BACKEND_STATS_RTO_REVERTED,
        RtoProbed(u64) = SOCKGROUP_A_BACKEND_STATS_RTO_PROBED,
    }
}

attr_set! {
    /// The `fwd-stats` set: the forwarding data plane's counters.
    FwdStatsAttr {
        Tx(u64) = SOCKGROUP_A_FWD_STATS_TX,
        TxFailed(u64) = SOCKGROUP_A_FWD_STATS_TX_FAILED,
        Rx(u64) = SOCKGROUP_A_FWD_STATS_RX,
        RxNonpeer(u64) = SOCKGROUP_A_FWD_STATS_RX_NONPEER,
        RxRefused(u64) = SOCKGROUP_A_FWD_STATS_RX_REFUSED,
        RxReplay(u64) = SOCKGROUP_A_FWD_STATS_RX_REPLAY,
        RxUnknown(u64) = SOCKGROUP_A_FWD_STATS_RX_UNKNOWN,
        UdpFlows(u64) = SOCKGROUP_A_FWD_STATS_UDP_FLOWS,
        UdpUnpinned(u64) = SOCKGROUP_A_FWD_STATS_UDP_UNPINNED,
        UdpLocal(u64) = SOCKGROUP_A_FWD_STATS_UDP_LOCAL,
        UdpForwarded(u64) = SOCKGROUP_A_FWD_STATS_UDP_FORWARDED,
        UdpActive(u64) = SOCKGROUP_A_FWD_STATS_UDP_ACTIVE,
        VerifiedTx(u64) = SOCKGROUP_A_FWD_STATS_VERIFIED_TX,
        VerifiedRx(u64) = SOCKGROUP_A_FWD_STATS_VERIFIED_RX,
        RxLateAck(u64) = SOCKGROUP_A_FWD_STATS_RX_LATE_ACK,
        RxStaleSyn(u64) = SOCKGROUP_A_FWD_STATS_RX_STALE_SYN,
    }
}

attr_set! {
    /// The `conn` set: a connection of a service, held or decided.
    ConnAttr {
        Service(u32) = SOCKGROUP_A_CONN_SERVICE,
        AddrFamily(u16) = SOCKGROUP_A_CONN_ADDR_FAMILY,
        Saddr(IpAddr) = SOCKGROUP_A_CONN_SADDR,
        Daddr(IpAddr) = SOCKGROUP_A_CONN_DADDR,
        Sport(u16) = SOCKGROUP_A_CONN_SPORT,
        Dport(u16) = SOCKGROUP_A_CONN_DPORT,
        State(u32) = SOCKGROUP_A_CONN_STATE,
        ClientIsn(u32) = SOCKGROUP_A_CONN_CLIENT_ISN,
        ServerIsn(u32) = SOCKGROUP_A_CONN_SERVER_ISN,
        Mss(u16) = SOCKGROUP_A_CONN_MSS,
        SndWscale(u8) = SOCKGROUP_A_CONN_SND_WSCALE,
        RcvWscale(u8) = SOCKGROUP_A_CONN_RCV_WSCALE,
        Wscale(u8) = SOCKGROUP_A_CONN_WSCALE,
        Sack(u8) = SOCKGROUP_A_CONN_SACK,
        Tstamp(u8) = SOCKGROUP_A_CONN_TSTAMP,
        TsRecent(u32) = SOCKGROUP_A_CONN_TS_RECENT,
        TsOff(u32) = SOCKGROUP_A_CONN_TS_OFF,
        Ecn(u8) = SOCKGROUP_A_CONN_ECN,
        Bytes(u32) = SOCKGROUP_A_CONN_BYTES,
        Rule(u32) = SOCKGROUP_A_CONN_RULE,
        Peer(u32) = SOCKGROUP_A_CONN_PEER,
        AgeMs(u32) = SOCKGROUP_A_CONN_AGE_MS,
        Owner(u32) = SOCKGROUP_A_CONN_OWNER,
        Backup(u32) = SOCKGROUP_A_CONN_BACKUP,
    }
}

/// The attributes of a message, in the set its command uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attrs {
    /// node-set, node-get, node-del.
    Node(Vec<NodeAttr>),
    /// peer-new, peer-del, peer-get and the three notifications.
    Peer(Vec<PeerAttr>),
    /// service-new, service-del, service-get.
    Service(Vec<ServiceAttr>),
    /// rule-new, rule-del, rule-get.
    Rule(Vec<RuleAttr>),
    /// stats-get.
    Stats(Vec<StatsAttr>),
    /// conn-get (dump).
    Conn(Vec<ConnAttr>),
}

/// A message of the family: its command and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgMessage {
    /// `SOCKGROUP_CMD_*`.
    pub cmd: u8,
    /// The attributes, of the command's set.
    pub attrs: Attrs,
}

impl SgMessage {
    /// A message of `cmd` with these attributes; panics if they are not of
    /// the command's set (a bug of the caller).
    pub fn new(cmd: u8, attrs: Attrs) -> Self {
        let msg = Self { cmd, attrs };
        assert_eq!(
            std::mem::discriminant(&msg.attrs),
            std::mem::discriminant(&empty_attrs(cmd).expect("a known command")),
            "attributes of another set than command {cmd}'s"
        );
        msg
    }
}

/// The empty attribute list of `cmd`'s set, or `None` for an unknown command.
fn empty_attrs(cmd: u8) -> Option<Attrs> {
    Some(match cmd {
        SOCKGROUP_CMD_NODE_SET | SOCKGROUP_CMD_NODE_GET | SOCKGROUP_CMD_NODE_DEL => {
            Attrs::Node(Vec::new())
        }
        SOCKGROUP_CMD_PEER_NEW
        | SOCKGROUP_CMD_PEER_DEL
        | SOCKGROUP_CMD_PEER_GET
        | SOCKGROUP_CMD_PEER_UP_NTF
        | SOCKGROUP_CMD_PEER_DOWN_NTF
        | SOCKGROUP_CMD_KEY_REJECTED_NTF => Attrs::Peer(Vec::new()),
        SOCKGROUP_CMD_SERVICE_NEW | SOCKGROUP_CMD_SERVICE_DEL | SOCKGROUP_CMD_SERVICE_GET => {
            Attrs::Service(Vec::new())
        }
        SOCKGROUP_CMD_RULE_NEW | SOCKGROUP_CMD_RULE_DEL | SOCKGROUP_CMD_RULE_GET => {
            Attrs::Rule(Vec::new())
        }
        SOCKGROUP_CMD_STATS_GET => Attrs::Stats(Vec::new()),
        SOCKGROUP_CMD_CONN_GET => Attrs::Conn(Vec::new()),
        _ => return None,
    })
}

impl GenlFamily for SgMessage {
    fn family_name() -> &'static str {
        SOCKGROUP_FAMILY_NAME
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        SOCKGROUP_FAMILY_VERSION
    }
}

impl Emitable for SgMessage {
    fn buffer_len(&self) -> usize {
        match &self.attrs {
            Attrs::Node(a) => a.as_slice().buffer_len(),
            Attrs::Peer(a) => a.as_slice().buffer_len(),
            Attrs::Service(a) => a.as_slice().buffer_len(),
            Attrs::Rule(a) => a.as_slice().buffer_len(),
            Attrs::Stats(a) => a.as_slice().buffer_len(),
            Attrs::Conn(a) => a.as_slice().buffer_len(),
        }
    }
    fn emit(&self, buf: &mut [u8]) {
        match &self.attrs {
            Attrs::Node(a) => a.as_slice().emit(buf),
            Attrs::Peer(a) => a.as_slice().emit(buf),
            Attrs::Service(a) => a.as_slice().emit(buf),
            Attrs::Rule(a) => a.as_slice().emit(buf),
            Attrs::Stats(a) => a.as_slice().emit(buf),
            Attrs::Conn(a) => a.as_slice().emit(buf),
        }
    }
}

impl ParseableParametrized<[u8], GenlHeader> for SgMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let attrs = match empty_attrs(header.cmd) {
            Some(Attrs::Node(_)) => Attrs::Node(parse_attrs(buf)?),
            Some(Attrs::Peer(_)) => Attrs::Peer(parse_attrs(buf)?),
            Some(Attrs::Service(_)) => Attrs::Service(parse_attrs(buf)?),
            Some(Attrs::Rule(_)) => Attrs::Rule(parse_attrs(buf)?),
            Some(Attrs::Stats(_)) => Attrs::Stats(parse_attrs(buf)?),
            Some(Attrs::Conn(_)) => Attrs::Conn(parse_attrs(buf)?),
            None => {
                return Err(DecodeError::from(format!(
                    "unknown sockgroup command {}",
                    header.cmd
                )))
            }
        };
        Ok(Self {
            cmd: header.cmd,
            attrs,
        })
    }
}
