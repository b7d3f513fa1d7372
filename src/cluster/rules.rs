// SPDX-License-Identifier: GPL-2.0

//! A service's rules, compiled for the packet path, and their counters.
//!
//! [`ServiceRules::build`] (control path, config mutex held) takes the
//! service's rules from the configuration, ordered by increasing prio then
//! id; [`ServiceRules::decide`] (packet path: no allocation, no sleep, no
//! lock) tries them in that order against the parsed first request, and the
//! first that matches places the connection: locally, on its peer, or on
//! the peer of its set that the rendezvous hash of the request's identifier
//! chooses among those up (`crate::logic::select`). No rule matched: the
//! service's default, local (rule id 0).
//!
//! Each service of the configuration keeps its compiled rules in an
//! `Arc<ServiceRules>` that the hold's snapshots share: a rule that comes
//! or goes recompiles its own service's rules only
//! (`Config::insert_rule`, `Config::remove_rule`).
//!
//! The counters ([`RuleStats`]) are created with the rule (rule-new) and
//! shared, by reference count, between the configuration and every
//! compiled form: they survive the recompilation of their service's rules,
//! and rule-get reads them from the configuration.

use super::Config;
use crate::logic::{
    request::Parse,
    select::{choose, match_parse, Choice, MatchKind, TargetRef, MAX_TARGETS},
};
use core::{
    ops::Range,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};
use kernel::{alloc::KVVec, prelude::*, sync::Arc};

/// Where a decision places a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Verdict {
    /// This node serves it.
    Local,
    /// Peer N should (part 2: would) serve it.
    Peer(u32),
}

/// A rule's counters: atomics, bumped on the packet path.
pub(crate) struct RuleStats {
    matched: AtomicU64,
    none_up: AtomicU64,
    chosen: [AtomicU64; MAX_TARGETS],
}

impl RuleStats {
    /// Zeroed counters, shared from now on (control path).
    pub(crate) fn new() -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                matched: AtomicU64::new(0),
                none_up: AtomicU64::new(0),
                chosen: core::array::from_fn(|_| AtomicU64::new(0)),
            },
            GFP_KERNEL,
        )?)
    }

    /// Requests the rule matched.
    pub(crate) fn matched(&self) -> u64 {
        self.matched.load(Relaxed)
    }

    /// Matches whose target had no candidate up (served locally).
    pub(crate) fn none_up(&self) -> u64 {
        self.none_up.load(Relaxed)
    }

    /// Matches that went to the target at index `i` of the rule's target
    /// list (local and peer targets: index 0).
    pub(crate) fn chosen(&self, i: usize) -> u64 {
        self.chosen.get(i).map_or(0, |c| c.load(Relaxed))
    }
}

/// A compiled rule's target.
enum Target {
    /// This node.
    Local,
    /// One node (0: this node).
    Peer(u32),
    /// The set, by rendezvous hash of the identifier; `n` of `peers` used.
    Hash { peers: [u32; MAX_TARGETS], n: usize },
}

/// One compiled rule.
struct Compiled {
    id: u32,
    prio: u32,
    kind: MatchKind,
    /// Its match value: `values[value]` of its service.
    value: Range<usize>,
    target: Target,
    stats: Arc<RuleStats>,
}

impl Compiled {
    /// The node this matched rule places `ident` on (its counters move).
    fn place(&self, ident: &[u8], self_id: u32, up: &[u32]) -> Verdict {
        let s = &self.stats;
        s.matched.fetch_add(1, Relaxed);
        let target = match &self.target {
            Target::Local => TargetRef::Local,
            Target::Peer(p) => TargetRef::Peer(*p),
            Target::Hash { peers, n } => TargetRef::Hash(&peers[..*n]),
        };
        match choose(target, ident, self_id, up) {
            Choice::Node { index, node } => {
                if let Some(c) = s.chosen.get(index) {
                    c.fetch_add(1, Relaxed);
                }
                if node == self_id {
                    Verdict::Local
                } else {
                    Verdict::Peer(node)
                }
            }
            Choice::NoneUp => {
                s.none_up.fetch_add(1, Relaxed);
                Verdict::Local
            }
        }
    }
}

/// One service's rules, compiled; immutable; counters are atomics inside.
pub(crate) struct ServiceRules {
    /// By increasing prio, then id.
    rules: KVec<Compiled>,
    /// The rules' match values end to end: one allocation for them all
    /// (a service may have all 1024 rules of the node).
    values: KVVec<u8>,
}

impl ServiceRules {
    /// Control path (config mutex held, GFP_KERNEL). Rule-new validated
    /// every rule: one that does not compile all the same (a match type
    /// this code does not know) is left out, never matched.
    pub(crate) fn build(cfg: &Config, service: u32) -> Result<Self> {
        Self::from_rules(cfg.rules.iter().filter(|r| r.service == service))
    }

    /// [`Self::from_rules`], shared (control path, GFP_KERNEL).
    pub(crate) fn shared<'a>(
        of: impl Iterator<Item = &'a super::Rule> + Clone,
    ) -> Result<Arc<Self>> {
        Ok(Arc::new(Self::from_rules(of)?, GFP_KERNEL)?)
    }

    /// The compiled form of `of`, the rules of one service in any order
    /// (control path, GFP_KERNEL).
    pub(crate) fn from_rules<'a>(
        of: impl Iterator<Item = &'a super::Rule> + Clone,
    ) -> Result<Self> {
        let (n, len) = of
            .clone()
            .fold((0, 0), |(n, len), r| (n + 1, len + r.match_value.len()));
        let mut rules = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut values = KVVec::with_capacity(len, GFP_KERNEL)?;
        for r in of {
            let Some(kind) = MatchKind::from_u32(r.match_type) else {
                continue;
            };
            let target = match r.target {
                super::RuleTarget::Local => Target::Local,
                super::RuleTarget::Peer(p) => Target::Peer(p),
                super::RuleTarget::Hash(ref list) => {
                    let mut peers = [0; MAX_TARGETS];
                    // Element by element: an out-of-line copy_from_slice
                    // ends in a panic call objtool does not know as noreturn.
                    let mut n = 0;
                    for (slot, &p) in peers.iter_mut().zip(list.iter()) {
                        *slot = p;
                        n += 1;
                    }
                    Target::Hash { peers, n }
                }
            };
            let start = values.len();
            // Within the capacities reserved above: neither allocates.
            values.extend_from_slice(&r.match_value, GFP_KERNEL)?;
            rules.push(
                Compiled {
                    id: r.id,
                    prio: r.prio,
                    kind,
                    value: start..values.len(),
                    target,
                    stats: r.stats.clone(),
                },
                GFP_KERNEL,
            )?;
        }
        rules.sort_unstable_by_key(|r| (r.prio, r.id));
        Ok(Self { rules, values })
    }

    /// Packet path: no allocation, no sleep. `up`: sorted ids of nodes up
    /// (self included; this node counts as up in any case). Returns the
    /// verdict and the id of the rule that matched (0: the default).
    pub(crate) fn decide(&self, req: &Parse<'_>, self_id: u32, up: &[u32]) -> (Verdict, u32) {
        for r in self.rules.iter() {
            // Always within `values` (`from_rules`).
            let value = self.values.get(r.value.clone()).unwrap_or(&[]);
            let Some(ident) = match_parse(r.kind, value, req) else {
                continue;
            };
            return (r.place(ident, self_id, up), r.id);
        }
        (Verdict::Local, 0)
    }

    /// Packet path, for a UDP service's new flow: the first rule that
    /// matches anything (`any`; the others read a request, which a
    /// datagram is not) places it, with `ident` (the flow) as the
    /// identifier of a hash target. None: this node (the default).
    pub(crate) fn decide_flow(&self, ident: &[u8], self_id: u32, up: &[u32]) -> Verdict {
        let Some(r) = self.rules.iter().find(|r| r.kind == MatchKind::Any) else {
            return Verdict::Local;
        };
        r.place(ident, self_id, up)
    }

    /// The ids of the rules, in the order they are tried (the KUnit suite
    /// compares recompiled rules with those built from scratch).
    #[allow(dead_code)]
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.rules.iter().map(|r| r.id)
    }

    /// The counters of rule `rule_id`, if it is one of this service's.
    /// (They are also the configuration's: rule-get reads them there.)
    #[allow(dead_code)]
    pub(crate) fn rule_stats(&self, rule_id: u32) -> Option<&RuleStats> {
        self.rules
            .iter()
            .find(|r| r.id == rule_id)
            .map(|r| &*r.stats)
    }
}
