// SPDX-License-Identifier: GPL-2.0

//! Property tests of a dispatcher's decision for a client's segment
//! (src/dispatch/steer.rs): whichever dispatcher the network hands a
//! segment to, it reaches the connection's back-end (or its owner's stack)
//! in at most one hop through the owner, new connections are decided by
//! their owner only, and FIN or RST ends them.

mod common;

use common::{placement, tuple, SoftCrc32c};
use proptest::prelude::*;
use sockgroup_logic::cache::Assoc;
use sockgroup_logic::frame::Placement;
use sockgroup_logic::owner::View;
use sockgroup_logic::steer::*;
use std::collections::BTreeSet;

fn seg(syn: bool, ack: bool, fin: bool, rst: bool, seq: u32) -> Seg {
    Seg {
        syn,
        ack,
        fin,
        rst,
        seq,
    }
}

/// One dispatcher's knowledge of the connection.
#[derive(Clone, Copy, Debug)]
struct Node {
    held: Option<Held>,
    cached: Option<Assoc>,
}

#[test]
fn no_dispatcher_no_steering() {
    let s = seg(true, false, false, false, 1);
    let d = steer(1, None, s, None, None, false);
    assert_eq!(d.action, Action::Local);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn segments_reach_their_server(
        ids in prop::collection::btree_set(1u32..40, 1..8),
        t in tuple(),
        place in placement(),
        backend in 100u32..104,
        isn: u32,
        caches in prop::collection::vec(any::<bool>(), 8),
        (syn, ack, fin, rst) in any::<(bool, bool, bool, bool)>(),
        grace: bool,
    ) {
        let v = View::new(&SoftCrc32c, 1, &ids.iter().copied().collect::<Vec<_>>()).unwrap();
        let pair = v.pair(&SoftCrc32c, &t).unwrap();
        let owner = pair.owner;
        let backend = if place == Placement::Local { owner } else { backend };
        let entry = |forwarding| Held { backend, placement: place, client_isn: isn, forwarding };
        let assoc = Assoc { owner, backend };
        let node = |id: u32, i: usize| Node {
            held: match pair.role(id) {
                sockgroup_logic::owner::Role::Owner => Some(entry(true)),
                sockgroup_logic::owner::Role::Backup => Some(entry(false)),
                sockgroup_logic::owner::Role::Other => None,
            },
            // Caches learn where a connection is served once it is
            // decided, never a pending one.
            cached: (caches[i] && place != Placement::Pending).then_some(assoc),
        };
        // A segment of the established connection (a SYN: its
        // retransmission, same ISN).
        let s = seg(syn, ack, fin, rst, isn);
        for (i, &d) in ids.iter().enumerate() {
            let n = node(d, i);
            let mut dec = steer(d, Some(pair), s, n.held, n.cached, grace);
            let mut at = d;
            if let Action::Owner(o) = dec.action {
                prop_assert_eq!(o, owner);
                prop_assert_ne!(d, owner);
                let on = node(owner, ids.iter().position(|&x| x == owner).unwrap());
                dec = steer(owner, Some(pair), s, on.held, on.cached, grace);
                at = owner;
            }
            let want = match place {
                Placement::Forwarded => Action::Backend(backend),
                Placement::Pending | Placement::Local => {
                    // Only the owner's stack has it; the cache knows only
                    // where it is served (the owner).
                    if at == owner { Action::Local } else { Action::Backend(owner) }
                }
            };
            prop_assert_eq!(dec.action, want, "at {} from {}", at, d);
            prop_assert_eq!(dec.end, fin || rst);
        }
        // A new connection on the tuple (no entry, no cache; or another
        // ISN): the owner decides it, the others send it there.
        let s = seg(true, false, false, false, isn.wrapping_add(1));
        for (i, &d) in ids.iter().enumerate() {
            for n in [Node { held: None, cached: None }, node(d, i)] {
                let dec = steer(d, Some(pair), s, n.held, n.cached, grace);
                let want = if d == owner { Action::Decide } else { Action::Owner(owner) };
                prop_assert_eq!(dec.action, want);
                prop_assert!(!dec.end);
            }
        }
    }

    /// What nobody knows: the owner drops it within the grace (its
    /// TRANSFER may be on its way), else lets its stack reset it; the
    /// others send it to the owner. Neither ends anything.
    #[test]
    fn unknown_segments(ids in prop::collection::btree_set(1u32..40, 1..8), t in tuple(), fin: bool, rst: bool, grace: bool) {
        let v = View::new(&SoftCrc32c, 1, &ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>()).unwrap();
        let pair = v.pair(&SoftCrc32c, &t).unwrap();
        for &d in &ids {
            let dec = steer(d, Some(pair), seg(false, true, fin, rst, 5), None, None, grace);
            let want = match (d == pair.owner, grace) {
                (false, _) => Action::Owner(pair.owner),
                (true, true) => Action::Drop,
                (true, false) => Action::Unknown,
            };
            prop_assert_eq!(dec.action, want);
            prop_assert_eq!(dec.end, (fin || rst) && d != pair.owner);
        }
    }
}

/// The interim forwarder (an old owner until its TRANSFER is
/// acknowledged) keeps serving what its own stack has; a backup sends it to
/// the owner; a forwarded connection goes to its back-end from either.
#[test]
fn interim_and_backup_entries() {
    let pair = Some(sockgroup_logic::owner::Pair {
        owner: 2,
        backup: Some(1),
    });
    let s = seg(false, true, false, false, 9);
    for place in [Placement::Pending, Placement::Local] {
        let h = |forwarding| Held {
            backend: 1,
            placement: place,
            client_isn: 3,
            forwarding,
        };
        assert_eq!(
            steer(1, pair, s, Some(h(true)), None, false).action,
            Action::Local
        );
        assert_eq!(
            steer(1, pair, s, Some(h(false)), None, false).action,
            Action::Owner(2)
        );
    }
    let fwd = Held {
        backend: 7,
        placement: Placement::Forwarded,
        client_isn: 3,
        forwarding: false,
    };
    assert_eq!(
        steer(1, pair, s, Some(fwd), None, true).action,
        Action::Backend(7)
    );
    // This node is the back-end: into its stack.
    let here = Held { backend: 1, ..fwd };
    assert_eq!(
        steer(1, pair, s, Some(here), None, false).action,
        Action::Local
    );
    let a = Assoc {
        owner: 2,
        backend: 1,
    };
    assert_eq!(
        steer(1, pair, s, None, Some(a), false).action,
        Action::Local
    );
    // The entry wins over a stale cache line.
    let stale = Assoc {
        owner: 2,
        backend: 8,
    };
    assert_eq!(
        steer(1, pair, s, Some(fwd), Some(stale), false).action,
        Action::Backend(7)
    );
}
