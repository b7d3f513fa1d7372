// SPDX-License-Identifier: GPL-2.0

//! Property tests of the UDP flow pinning (src/cluster/flows.rs) against a
//! model: a pinned flow keeps its node while it stays active, whatever the
//! choice would be now; a flow idle past the idle time is chosen afresh; a
//! flow is left unpinned only when its probes found live flows only.

use proptest::prelude::*;
use sockgroup_logic::flows::{live_count, pin, pin_to, Pin, Slot, PROBES};
use sockgroup_logic::frame::{Family, Tuple};
use std::collections::HashMap;

const IDLE: u64 = 1000;

fn flow(i: u8) -> Tuple {
    let mut t = Tuple {
        family: Family::V4,
        client: [0; 16],
        server: [0; 16],
        client_port: 1000 + u16::from(i),
        server_port: 53,
    };
    t.client[..4].copy_from_slice(&[10, 0, 0, i]);
    t.server[..4].copy_from_slice(&[10, 9, 9, 9]);
    t
}

#[derive(Clone, Copy, Debug)]
struct Op {
    flow: u8,
    /// Milliseconds since the previous datagram.
    gap: u64,
    /// What the choice would be now.
    choice: u32,
    /// A flow forwarded here by a peer (pinned to this node, 7).
    forced: bool,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0u8..40,
        prop_oneof![3 => 0u64..300, 1 => 900u64..1500],
        1u32..5,
        prop::bool::weighted(0.1),
    )
        .prop_map(|(flow, gap, choice, forced)| Op {
            flow,
            gap,
            choice,
            forced,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn pinned_flows_keep_their_node(
        ops in prop::collection::vec(op(), 1..300),
        size in prop_oneof![Just(16usize), Just(64), Just(256)],
        seed in any::<u32>(),
    ) {
        let mut slots = vec![Slot::EMPTY; size];
        // The model: flow -> (node, last datagram), for pinned flows.
        let mut model: HashMap<u8, (u32, u64)> = HashMap::new();
        let mut now = 0u64;
        for o in ops {
            now += o.gap;
            let key = flow(o.flow);
            let live = model.get(&o.flow).filter(|(_, last)| now - last < IDLE).map(|(n, _)| *n);
            if o.forced {
                if pin_to(&mut slots, seed, &key, now, IDLE, 7) {
                    model.insert(o.flow, (7, now));
                } else {
                    // No room: it was not pinned before either.
                    prop_assert_eq!(live, None);
                    prop_assert!(live_count(&slots, now, IDLE) >= PROBES);
                }
                continue;
            }
            let r = pin(&mut slots, seed, &key, now, IDLE, || o.choice);
            match (live, r) {
                (Some(n), Pin::Known(m)) => prop_assert_eq!(n, m),
                (Some(n), other) => prop_assert!(false, "pinned to {n}, got {other:?}"),
                (None, Pin::Known(m)) => prop_assert!(false, "unpinned flow known as {m}"),
                (None, Pin::New(m)) => prop_assert_eq!(m, o.choice),
                (None, Pin::Unpinned(m)) => {
                    prop_assert_eq!(m, o.choice);
                    prop_assert!(live_count(&slots, now, IDLE) >= PROBES);
                }
            }
            match r {
                Pin::Known(n) | Pin::New(n) => {
                    model.insert(o.flow, (n, now));
                }
                Pin::Unpinned(_) => {
                    model.remove(&o.flow);
                }
            }
        }
    }
}

#[test]
fn a_table_that_is_not_a_power_of_two_pins_nothing() {
    let mut slots = vec![Slot::EMPTY; 12];
    assert_eq!(
        pin(&mut slots, 1, &flow(1), 0, IDLE, || 3),
        Pin::Unpinned(3)
    );
    assert!(!pin_to(&mut slots, 1, &flow(1), 0, IDLE, 3));
    assert_eq!(pin(&mut [], 1, &flow(1), 0, IDLE, || 4), Pin::Unpinned(4));
}

#[test]
fn an_idle_flow_is_chosen_again() {
    let mut slots = vec![Slot::EMPTY; 16];
    assert_eq!(pin(&mut slots, 9, &flow(1), 0, IDLE, || 2), Pin::New(2));
    assert_eq!(
        pin(&mut slots, 9, &flow(1), IDLE - 1, IDLE, || 3),
        Pin::Known(2)
    );
    assert_eq!(
        pin(&mut slots, 9, &flow(1), 2 * IDLE, IDLE, || 3),
        Pin::New(3)
    );
}
