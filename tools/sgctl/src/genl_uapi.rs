// SPDX-License-Identifier: GPL-2.0

//! Mirror of `include/uapi/linux/sockgroup_genl.h`, the constants of the
//! `sockgroup` generic netlink family (generated from
//! `Documentation/netlink/specs/sockgroup.yaml`).
//!
//! The names are the header's.  A unit test parses the header and checks that
//! every constant here has its value there and that the header has no
//! constant missing here, so the two cannot drift apart.

/// Defines each constant and lists them all in [`ALL`] (name, value).
macro_rules! uapi {
    ($($name:ident: $ty:ty = $value:expr;)*) => {
        $(
            #[allow(dead_code)]
            pub const $name: $ty = $value;
        )*
        /// Every enum constant of the header, by name, for the drift check.
        #[cfg(test)]
        pub const ALL: &[(&str, u64)] = &[$((stringify!($name), $name as u64)),*];
    };
}

/// `SOCKGROUP_FAMILY_NAME`.
pub const SOCKGROUP_FAMILY_NAME: &str = "sockgroup";
/// `SOCKGROUP_MCGRP_EVENTS`.
pub const SOCKGROUP_MCGRP_EVENTS: &str = "events";

uapi! {
    SOCKGROUP_FAMILY_VERSION: u8 = 1;

    SOCKGROUP_ROLE_FRONTEND: u32 = 0;
    SOCKGROUP_ROLE_BACKEND: u32 = 1;
    SOCKGROUP_ROLE_BOTH: u32 = 2;

    SOCKGROUP_PROTO_TCP: u8 = 6;
    SOCKGROUP_PROTO_UDP: u8 = 17;

    SOCKGROUP_PEER_STATE_DOWN: u32 = 0;
    SOCKGROUP_PEER_STATE_CONNECTING: u32 = 1;
    SOCKGROUP_PEER_STATE_UP: u32 = 2;

    SOCKGROUP_MATCH_TYPE_ANY: u32 = 0;
    SOCKGROUP_MATCH_TYPE_PATH_PREFIX: u32 = 1;
    SOCKGROUP_MATCH_TYPE_HOST: u32 = 2;
    SOCKGROUP_MATCH_TYPE_COOKIE: u32 = 3;
    SOCKGROUP_MATCH_TYPE_SNI: u32 = 4;
    SOCKGROUP_MATCH_TYPE_HOST_SUFFIX: u32 = 5;
    SOCKGROUP_MATCH_TYPE_COOKIE_VALUE: u32 = 6;
    SOCKGROUP_MATCH_TYPE_SESSION_ID: u32 = 7;

    SOCKGROUP_TARGET_TYPE_LOCAL: u32 = 0;
    SOCKGROUP_TARGET_TYPE_PEER: u32 = 1;
    SOCKGROUP_TARGET_TYPE_HASH: u32 = 2;

    SOCKGROUP_CONN_STATE_HELD: u32 = 0;
    SOCKGROUP_CONN_STATE_LOCAL: u32 = 1;
    SOCKGROUP_CONN_STATE_REMOTE: u32 = 2;
    SOCKGROUP_CONN_STATE_HANDING_OFF: u32 = 3;
    SOCKGROUP_CONN_STATE_MOVED: u32 = 4;
    SOCKGROUP_CONN_STATE_SYNCED: u32 = 5;

    SOCKGROUP_A_NODE_ID: u16 = 1;
    SOCKGROUP_A_NODE_CTL_ADDR: u16 = 2;
    SOCKGROUP_A_NODE_CTL_PORT: u16 = 3;
    SOCKGROUP_A_NODE_FWD_ADDR: u16 = 4;
    SOCKGROUP_A_NODE_FWD_PORT: u16 = 5;
    SOCKGROUP_A_NODE_HB_INTERVAL: u16 = 6;
    SOCKGROUP_A_NODE_GENERATION: u16 = 7;
    SOCKGROUP_A_NODE_MEMBERS: u16 = 8;
    SOCKGROUP_A_NODE_REPLAY_ISN_OFFSET: u16 = 9;
    SOCKGROUP_A_NODE_REPLAY_TS_OFFSET: u16 = 10;
    SOCKGROUP_A_NODE_MAX: u16 = 10;

    SOCKGROUP_A_PEER_STATS_FRAMES_TX: u16 = 1;
    SOCKGROUP_A_PEER_STATS_FRAMES_RX: u16 = 2;
    SOCKGROUP_A_PEER_STATS_HEARTBEATS_TX: u16 = 3;
    SOCKGROUP_A_PEER_STATS_HEARTBEATS_RX: u16 = 4;
    SOCKGROUP_A_PEER_STATS_REJECTED: u16 = 5;
    SOCKGROUP_A_PEER_STATS_CONNECTS: u16 = 6;
    SOCKGROUP_A_PEER_STATS_UPS: u16 = 7;
    SOCKGROUP_A_PEER_STATS_DOWNS: u16 = 8;
    SOCKGROUP_A_PEER_STATS_HANDOFF_REQ_TX: u16 = 9;
    SOCKGROUP_A_PEER_STATS_HANDOFF_REQ_RX: u16 = 10;
    SOCKGROUP_A_PEER_STATS_HANDOFF_ACK_TX: u16 = 11;
    SOCKGROUP_A_PEER_STATS_HANDOFF_ACK_RX: u16 = 12;
    SOCKGROUP_A_PEER_STATS_HANDOFF_NACK_TX: u16 = 13;
    SOCKGROUP_A_PEER_STATS_HANDOFF_NACK_RX: u16 = 14;
    SOCKGROUP_A_PEER_STATS_TERM_TX: u16 = 15;
    SOCKGROUP_A_PEER_STATS_TERM_RX: u16 = 16;
    SOCKGROUP_A_PEER_STATS_MAX: u16 = 16;

    SOCKGROUP_A_PEER_ID: u16 = 1;
    SOCKGROUP_A_PEER_ADDR: u16 = 2;
    SOCKGROUP_A_PEER_CTL_PORT: u16 = 3;
    SOCKGROUP_A_PEER_KEY: u16 = 4;
    SOCKGROUP_A_PEER_STATE: u16 = 5;
    SOCKGROUP_A_PEER_STATS: u16 = 6;
    SOCKGROUP_A_PEER_MAX: u16 = 6;

    SOCKGROUP_A_SERVICE_STATS_HELD: u16 = 1;
    SOCKGROUP_A_SERVICE_STATS_LOCAL: u16 = 2;
    SOCKGROUP_A_SERVICE_STATS_REMOTE: u16 = 3;
    SOCKGROUP_A_SERVICE_STATS_OVER_BYTES: u16 = 4;
    SOCKGROUP_A_SERVICE_STATS_OVER_TIME: u16 = 5;
    SOCKGROUP_A_SERVICE_STATS_MALFORMED: u16 = 6;
    SOCKGROUP_A_SERVICE_STATS_HTTP1: u16 = 7;
    SOCKGROUP_A_SERVICE_STATS_HTTP2: u16 = 8;
    SOCKGROUP_A_SERVICE_STATS_TLS: u16 = 9;
    SOCKGROUP_A_SERVICE_STATS_COOKIE_BYPASS: u16 = 10;
    SOCKGROUP_A_SERVICE_STATS_TFO_BYPASS: u16 = 11;
    SOCKGROUP_A_SERVICE_STATS_HOLD_FULL: u16 = 12;
    SOCKGROUP_A_SERVICE_STATS_ABORTED: u16 = 13;
    SOCKGROUP_A_SERVICE_STATS_DUP: u16 = 14;
    SOCKGROUP_A_SERVICE_STATS_HANDED_OFF: u16 = 15;
    SOCKGROUP_A_SERVICE_STATS_FALLBACK_NACK: u16 = 16;
    SOCKGROUP_A_SERVICE_STATS_FALLBACK_PEER_DOWN: u16 = 17;
    SOCKGROUP_A_SERVICE_STATS_FALLBACK_TIMEOUT: u16 = 18;
    SOCKGROUP_A_SERVICE_STATS_FALLBACK_UNSENT: u16 = 19;
    SOCKGROUP_A_SERVICE_STATS_MOVED_DROP: u16 = 20;
    SOCKGROUP_A_SERVICE_STATS_MOVED_FWD: u16 = 21;
    SOCKGROUP_A_SERVICE_STATS_ENDED: u16 = 22;
    SOCKGROUP_A_SERVICE_STATS_MSS_CLAMPED: u16 = 23;
    SOCKGROUP_A_SERVICE_STATS_TO_OWNER: u16 = 24;
    SOCKGROUP_A_SERVICE_STATS_TO_OWNER_DROP: u16 = 25;
    SOCKGROUP_A_SERVICE_STATS_SYNC_TX: u16 = 26;
    SOCKGROUP_A_SERVICE_STATS_SYNC_RX: u16 = 27;
    SOCKGROUP_A_SERVICE_STATS_SYNC_REJECTED: u16 = 28;
    SOCKGROUP_A_SERVICE_STATS_TAKEOVER: u16 = 29;
    SOCKGROUP_A_SERVICE_STATS_VIEW_DROP: u16 = 30;
    SOCKGROUP_A_SERVICE_STATS_TO_BACKUP: u16 = 31;
    SOCKGROUP_A_SERVICE_STATS_TRANSFER_TX: u16 = 32;
    SOCKGROUP_A_SERVICE_STATS_TRANSFER_RX: u16 = 33;
    SOCKGROUP_A_SERVICE_STATS_TRANSFER_REJECTED: u16 = 34;
    SOCKGROUP_A_SERVICE_STATS_END_TX: u16 = 35;
    SOCKGROUP_A_SERVICE_STATS_END_RX: u16 = 36;
    SOCKGROUP_A_SERVICE_STATS_CACHE_HIT: u16 = 37;
    SOCKGROUP_A_SERVICE_STATS_CACHE_FILL: u16 = 38;
    SOCKGROUP_A_SERVICE_STATS_TRANSFER_ACKED: u16 = 39;
    SOCKGROUP_A_SERVICE_STATS_LATE_FWD: u16 = 40;
    SOCKGROUP_A_SERVICE_STATS_STALE_REPLACED: u16 = 41;
    SOCKGROUP_A_SERVICE_STATS_MAX: u16 = 41;

    SOCKGROUP_A_SERVICE_ID: u16 = 1;
    SOCKGROUP_A_SERVICE_ADDR: u16 = 2;
    SOCKGROUP_A_SERVICE_PORT: u16 = 3;
    SOCKGROUP_A_SERVICE_PROTO: u16 = 4;
    SOCKGROUP_A_SERVICE_ROLE: u16 = 5;
    SOCKGROUP_A_SERVICE_HOLD_TIMEOUT: u16 = 6;
    SOCKGROUP_A_SERVICE_STATS: u16 = 7;
    SOCKGROUP_A_SERVICE_DISPATCHERS: u16 = 8;
    SOCKGROUP_A_SERVICE_MAX: u16 = 8;

    SOCKGROUP_A_MATCH_TYPE: u16 = 1;
    SOCKGROUP_A_MATCH_VALUE: u16 = 2;
    SOCKGROUP_A_MATCH_MAX: u16 = 2;

    SOCKGROUP_A_TARGET_TYPE: u16 = 1;
    SOCKGROUP_A_TARGET_PEER: u16 = 2;
    SOCKGROUP_A_TARGET_PEERS: u16 = 3;
    SOCKGROUP_A_TARGET_MAX: u16 = 3;

    SOCKGROUP_A_TARGET_STATS_PEER: u16 = 1;
    SOCKGROUP_A_TARGET_STATS_COUNT: u16 = 2;
    SOCKGROUP_A_TARGET_STATS_MAX: u16 = 2;

    SOCKGROUP_A_RULE_STATS_MATCHED: u16 = 1;
    SOCKGROUP_A_RULE_STATS_NONE_UP: u16 = 2;
    SOCKGROUP_A_RULE_STATS_TARGET: u16 = 3;
    SOCKGROUP_A_RULE_STATS_MAX: u16 = 3;

    SOCKGROUP_A_RULE_ID: u16 = 1;
    SOCKGROUP_A_RULE_SERVICE: u16 = 2;
    SOCKGROUP_A_RULE_PRIO: u16 = 3;
    SOCKGROUP_A_RULE_MATCH: u16 = 4;
    SOCKGROUP_A_RULE_TARGET: u16 = 5;
    SOCKGROUP_A_RULE_STATS: u16 = 6;
    SOCKGROUP_A_RULE_MAX: u16 = 6;

    SOCKGROUP_A_CONN_SERVICE: u16 = 1;
    SOCKGROUP_A_CONN_ADDR_FAMILY: u16 = 2;
    SOCKGROUP_A_CONN_SADDR: u16 = 3;
    SOCKGROUP_A_CONN_DADDR: u16 = 4;
    SOCKGROUP_A_CONN_SPORT: u16 = 5;
    SOCKGROUP_A_CONN_DPORT: u16 = 6;
    SOCKGROUP_A_CONN_STATE: u16 = 7;
    SOCKGROUP_A_CONN_CLIENT_ISN: u16 = 8;
    SOCKGROUP_A_CONN_SERVER_ISN: u16 = 9;
    SOCKGROUP_A_CONN_MSS: u16 = 10;
    SOCKGROUP_A_CONN_SND_WSCALE: u16 = 11;
    SOCKGROUP_A_CONN_RCV_WSCALE: u16 = 12;
    SOCKGROUP_A_CONN_WSCALE: u16 = 13;
    SOCKGROUP_A_CONN_SACK: u16 = 14;
    SOCKGROUP_A_CONN_TSTAMP: u16 = 15;
    SOCKGROUP_A_CONN_TS_RECENT: u16 = 16;
    SOCKGROUP_A_CONN_TS_OFF: u16 = 17;
    SOCKGROUP_A_CONN_ECN: u16 = 18;
    SOCKGROUP_A_CONN_BYTES: u16 = 19;
    SOCKGROUP_A_CONN_RULE: u16 = 20;
    SOCKGROUP_A_CONN_PEER: u16 = 21;
    SOCKGROUP_A_CONN_AGE_MS: u16 = 22;
    SOCKGROUP_A_CONN_OWNER: u16 = 23;
    SOCKGROUP_A_CONN_BACKUP: u16 = 24;
    SOCKGROUP_A_CONN_MAX: u16 = 24;

    SOCKGROUP_A_STATS_PEERS_UP: u16 = 1;
    SOCKGROUP_A_STATS_ACCEPTED: u16 = 2;
    SOCKGROUP_A_STATS_REFUSED_NONPEER: u16 = 3;
    SOCKGROUP_A_STATS_REJECTED: u16 = 4;
    SOCKGROUP_A_STATS_FRAMES_TX: u16 = 5;
    SOCKGROUP_A_STATS_FRAMES_RX: u16 = 6;
    SOCKGROUP_A_STATS_GENERATION: u16 = 7;
    SOCKGROUP_A_STATS_HANDOFF_REQ_TX: u16 = 8;
    SOCKGROUP_A_STATS_HANDOFF_REQ_RX: u16 = 9;
    SOCKGROUP_A_STATS_HANDOFF_ACK_TX: u16 = 10;
    SOCKGROUP_A_STATS_HANDOFF_ACK_RX: u16 = 11;
    SOCKGROUP_A_STATS_HANDOFF_NACK_TX: u16 = 12;
    SOCKGROUP_A_STATS_HANDOFF_NACK_RX: u16 = 13;
    SOCKGROUP_A_STATS_TERM_TX: u16 = 14;
    SOCKGROUP_A_STATS_TERM_RX: u16 = 15;
    SOCKGROUP_A_STATS_OUTBOX_FULL: u16 = 16;
    SOCKGROUP_A_STATS_UNSENT: u16 = 17;
    SOCKGROUP_A_STATS_FWD: u16 = 18;
    SOCKGROUP_A_STATS_BACKEND: u16 = 19;
    SOCKGROUP_A_STATS_MAX: u16 = 19;

    SOCKGROUP_A_FWD_STATS_TX: u16 = 1;
    SOCKGROUP_A_FWD_STATS_TX_FAILED: u16 = 2;
    SOCKGROUP_A_FWD_STATS_RX: u16 = 3;
    SOCKGROUP_A_FWD_STATS_RX_NONPEER: u16 = 4;
    SOCKGROUP_A_FWD_STATS_RX_REFUSED: u16 = 5;
    SOCKGROUP_A_FWD_STATS_RX_REPLAY: u16 = 6;
    SOCKGROUP_A_FWD_STATS_RX_UNKNOWN: u16 = 7;
    SOCKGROUP_A_FWD_STATS_UDP_FLOWS: u16 = 8;
    SOCKGROUP_A_FWD_STATS_UDP_UNPINNED: u16 = 9;
    SOCKGROUP_A_FWD_STATS_UDP_LOCAL: u16 = 10;
    SOCKGROUP_A_FWD_STATS_UDP_FORWARDED: u16 = 11;
    SOCKGROUP_A_FWD_STATS_UDP_ACTIVE: u16 = 12;
    SOCKGROUP_A_FWD_STATS_VERIFIED_TX: u16 = 13;
    SOCKGROUP_A_FWD_STATS_VERIFIED_RX: u16 = 14;
    SOCKGROUP_A_FWD_STATS_RX_LATE_ACK: u16 = 15;
    SOCKGROUP_A_FWD_STATS_RX_STALE_SYN: u16 = 16;
    SOCKGROUP_A_FWD_STATS_MAX: u16 = 16;

    SOCKGROUP_A_BACKEND_STATS_ADOPTED: u16 = 1;
    SOCKGROUP_A_BACKEND_STATS_REFUSED: u16 = 2;
    SOCKGROUP_A_BACKEND_STATS_TERMS: u16 = 3;
    SOCKGROUP_A_BACKEND_STATS_WATCHED: u16 = 4;
    SOCKGROUP_A_BACKEND_STATS_REPLAY_STARTED: u16 = 5;
    SOCKGROUP_A_BACKEND_STATS_REPLAY_FAILED: u16 = 6;
    SOCKGROUP_A_BACKEND_STATS_REPLAY_DROPPED: u16 = 7;
    SOCKGROUP_A_BACKEND_STATS_REPLAY_RST_DROPPED: u16 = 8;
    SOCKGROUP_A_BACKEND_STATS_XLATE_CONNS: u16 = 9;
    SOCKGROUP_A_BACKEND_STATS_XLATED_IN: u16 = 10;
    SOCKGROUP_A_BACKEND_STATS_XLATED_OUT: u16 = 11;
    SOCKGROUP_A_BACKEND_STATS_XLATE_DROP: u16 = 12;
    SOCKGROUP_A_BACKEND_STATS_ABORTED: u16 = 13;
    SOCKGROUP_A_BACKEND_STATS_REPLAY_TW_REOPENED: u16 = 14;
    SOCKGROUP_A_BACKEND_STATS_REPLAY_TW_REFUSED: u16 = 15;
    SOCKGROUP_A_BACKEND_STATS_REOWNED: u16 = 16;
    SOCKGROUP_A_BACKEND_STATS_RTO_REVERTED: u16 = 17;
    SOCKGROUP_A_BACKEND_STATS_RTO_PROBED: u16 = 18;
    SOCKGROUP_A_BACKEND_STATS_MAX: u16 = 18;

    SOCKGROUP_CMD_NODE_SET: u8 = 1;
    SOCKGROUP_CMD_NODE_GET: u8 = 2;
    SOCKGROUP_CMD_NODE_DEL: u8 = 3;
    SOCKGROUP_CMD_PEER_NEW: u8 = 4;
    SOCKGROUP_CMD_PEER_DEL: u8 = 5;
    SOCKGROUP_CMD_PEER_GET: u8 = 6;
    SOCKGROUP_CMD_SERVICE_NEW: u8 = 7;
    SOCKGROUP_CMD_SERVICE_DEL: u8 = 8;
    SOCKGROUP_CMD_SERVICE_GET: u8 = 9;
    SOCKGROUP_CMD_RULE_NEW: u8 = 10;
    SOCKGROUP_CMD_RULE_DEL: u8 = 11;
    SOCKGROUP_CMD_RULE_GET: u8 = 12;
    SOCKGROUP_CMD_STATS_GET: u8 = 13;
    SOCKGROUP_CMD_PEER_UP_NTF: u8 = 14;
    SOCKGROUP_CMD_PEER_DOWN_NTF: u8 = 15;
    SOCKGROUP_CMD_KEY_REJECTED_NTF: u8 = 16;
    SOCKGROUP_CMD_CONN_GET: u8 = 17;
    SOCKGROUP_CMD_MAX: u8 = 17;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The header, as committed.
    const HEADER: &str = include_str!("../../../include/uapi/linux/sockgroup_genl.h");

    /// The constants of `text` (a uapi header of ynl-gen-c.py's style): the
    /// entries of every enum, numbered as C numbers them (explicit `= N`,
    /// else one more than the entry before; `(__X - 1)` for the `_MAX`
    /// ones), without the `__..._MAX` sentinels; and the numeric `#define`s.
    fn header_constants(text: &str) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let mut all = BTreeMap::new();
        let mut in_enum = false;
        let mut next = 0u64;
        for line in text.lines().map(str::trim) {
            if line.starts_with("enum ") && line.ends_with('{') {
                (in_enum, next) = (true, 0);
                continue;
            }
            if in_enum && line.starts_with('}') {
                in_enum = false;
                continue;
            }
            if let Some(rest) = line.strip_prefix("#define ") {
                let mut words = rest.split_whitespace();
                let (name, value) = (words.next().unwrap(), words.next().unwrap_or(""));
                if let Ok(v) = value.parse() {
                    out.insert(name.to_owned(), v);
                }
                continue;
            }
            if !in_enum || line.is_empty() || line.starts_with("/*") || line.starts_with('*') {
                continue;
            }
            let entry = line.trim_end_matches(',');
            let (name, value) = match entry.split_once('=') {
                None => (entry.trim(), next),
                Some((name, expr)) => {
                    let expr = expr.trim().trim_start_matches('(').trim_end_matches(')');
                    let value = match expr.split_once(" - ") {
                        Some((sym, n)) => all[sym.trim()] - n.trim().parse::<u64>().unwrap(),
                        None => expr.parse().unwrap_or_else(|_| panic!("{line}")),
                    };
                    (name.trim(), value)
                }
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "not an enum entry: {line}"
            );
            all.insert(name.to_owned(), value);
            if !name.starts_with("__") {
                out.insert(name.to_owned(), value);
            }
            next = value + 1;
        }
        out
    }

    #[test]
    fn the_mirror_matches_the_header() {
        let header = header_constants(HEADER);
        let ours: BTreeMap<String, u64> = ALL.iter().map(|&(n, v)| (n.to_owned(), v)).collect();
        assert_eq!(ours.len(), ALL.len(), "a name listed twice");
        for (name, value) in &header {
            assert_eq!(ours.get(name), Some(value), "{name} of the header");
        }
        for (name, value) in &ours {
            assert_eq!(header.get(name), Some(value), "{name} of genl_uapi.rs");
        }
        assert!(HEADER.contains(&format!(
            "#define SOCKGROUP_FAMILY_NAME\t\t\"{SOCKGROUP_FAMILY_NAME}\""
        )));
        assert!(HEADER.contains(&format!(
            "#define SOCKGROUP_MCGRP_EVENTS\t\"{SOCKGROUP_MCGRP_EVENTS}\""
        )));
    }

    #[test]
    fn the_header_parser_numbers_like_c() {
        let text = "enum x {\n\tA,\n\tB = 6,\n\tC,\n\n\t__D_MAX,\n\tD_MAX = (__D_MAX - 1)\n};\n\
                    #define V\t3\n#define S \"s\"\n";
        let got = header_constants(text);
        let want: BTreeMap<String, u64> = [("A", 0), ("B", 6), ("C", 7), ("D_MAX", 7), ("V", 3)]
            .iter()
            .map(|&(n, v)| (n.to_owned(), v))
            .collect();
        assert_eq!(got, want);
    }
}
