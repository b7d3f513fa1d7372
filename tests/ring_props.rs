// SPDX-License-Identifier: GPL-2.0

//! Property tests of the ring choice against its definition.

use proptest::prelude::*;
use sockgroup_logic::ring::{choose, Choice, Load, Policy};

fn load() -> impl Strategy<Value = Load> {
    (
        any::<bool>(),
        0u32..6,
        0u32..4,
        0u32..5,
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(listening, accept_queue, handshakes, limit, cookie, stalled)| Load {
                listening,
                accept_queue,
                handshakes,
                limit,
                cookie,
                stalled,
            },
        )
}

proptest! {
    #[test]
    fn choice_matches_definition(
        loads in prop::collection::vec(load(), 0..12),
        addressed in 0usize..14,
        primary in any::<bool>(),
    ) {
        let policy = if primary { Policy::Primary } else { Policy::Ring };
        let mut calls = vec![0u32; loads.len()];
        let got = choose(policy, loads.len(), addressed, |i| {
            calls[i] += 1;
            loads[i]
        });
        prop_assert!(calls.iter().all(|&c| c <= 1), "each member's load read at most once");
        let n = loads.len();
        let has_room = |i: usize| !loads[i].is_full();
        // A sibling takes a connection only if it has room and would not
        // answer it with a SYN cookie.
        let takes = |i: usize| has_room(i) && !loads[i].cookie;
        match got {
            Choice::Addressed => prop_assert!(addressed < n && has_room(addressed)),
            Choice::Redirect(i) => {
                prop_assert!(i < n && i != addressed && takes(i));
                prop_assert!(addressed >= n || !has_room(addressed));
                // Every member passed over before `i` is full.
                let start = if policy == Policy::Ring && addressed < n { addressed + 1 } else { 0 };
                let mut j = start % n;
                while j != i {
                    prop_assert!(j == addressed || !takes(j), "skipped member {} could take it", j);
                    j = (j + 1) % n;
                }
            }
            Choice::AllFull => {
                prop_assert!(addressed >= n || !has_room(addressed));
                prop_assert!((0..n).all(|i| i == addressed || !takes(i)));
            }
        }
    }

    /// A stalled member takes nothing: neither a connection addressed to
    /// it nor a sibling's.
    #[test]
    fn stalled_member_is_never_chosen(
        loads in prop::collection::vec(load(), 1..12),
        addressed in 0usize..12,
        primary in any::<bool>(),
    ) {
        let policy = if primary { Policy::Primary } else { Policy::Ring };
        match choose(policy, loads.len(), addressed, |i| loads[i]) {
            Choice::Addressed => prop_assert!(!loads[addressed].stalled),
            Choice::Redirect(i) => prop_assert!(!loads[i].stalled),
            Choice::AllFull => {}
        }
    }

    /// A member whose request queue is over its limit (the kernel would
    /// answer a SYN with a cookie) is full: the definition of "full" alone
    /// already keeps steered SYNs away from it.
    #[test]
    fn request_queue_over_its_limit_is_full(l in load()) {
        if l.handshakes > l.limit {
            prop_assert!(l.is_full());
            prop_assert!(!l.takes_redirect());
        }
    }
}
