// SPDX-License-Identifier: GPL-2.0

//! Property tests of the front-end's memory of connections that ended
//! with a FIN (src/cluster/linger.rs) against a model: a list from the
//! most to the least recently added, cut at the capacity, each tuple with
//! its back-end and its time.

mod common;

use common::{conn_from, tuple};
use proptest::prelude::*;
use sockgroup_logic::frame::Tuple;
use sockgroup_logic::linger::{Linger, EMPTY, TIME_WAIT_MS};

#[derive(Clone, Debug)]
enum Op {
    Add(usize, u32, u64),
    Peer(usize, u64),
    Forget(usize),
    Expire(u64, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0usize..10;
    prop_oneof![
        4 => (k.clone(), 1u32..4, 0u64..100).prop_map(|(k, p, u)| Op::Add(k, p, u)),
        4 => (k.clone(), 0u64..100).prop_map(|(k, n)| Op::Peer(k, n)),
        1 => k.prop_map(Op::Forget),
        1 => (0u64..100, 0usize..4).prop_map(|(n, b)| Op::Expire(n, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn matches_the_model(cap in 0usize..6, key: (u64, u64), keys in prop::collection::vec(tuple(), 10), ops in prop::collection::vec(op(), 0..80)) {
        let mut l = Linger::new(vec![EMPTY; cap], key);
        // Most recently added first: (tuple, peer, until).
        let mut m: Vec<(Tuple, u32, u64)> = Vec::new();
        let pos = |m: &Vec<(Tuple, u32, u64)>, t: &Tuple| m.iter().position(|e| e.0 == *t);
        prop_assert_eq!(l.capacity(), cap);
        for op in ops {
            match op {
                Op::Add(k, p, u) => {
                    let t = keys[k];
                    let want = if cap == 0 {
                        true
                    } else if let Some(i) = pos(&m, &t) {
                        m.remove(i);
                        m.insert(0, (t, p, u));
                        false
                    } else {
                        m.insert(0, (t, p, u));
                        m.len() > cap && m.pop().is_some()
                    };
                    prop_assert_eq!(l.add(t, p, u), want);
                }
                Op::Peer(k, now) => {
                    let t = keys[k];
                    let want = match pos(&m, &t) {
                        Some(i) if now < m[i].2 => Some(m[i].1),
                        Some(i) => {
                            m.remove(i);
                            None
                        }
                        None => None,
                    };
                    prop_assert_eq!(l.peer(&t, now), want);
                }
                Op::Forget(k) => {
                    if let Some(i) = pos(&m, &keys[k]) {
                        m.remove(i);
                    }
                    l.forget(&keys[k]);
                }
                Op::Expire(now, budget) => {
                    let mut n = 0;
                    while n < budget && m.last().is_some_and(|e| now >= e.2) {
                        m.pop();
                        n += 1;
                    }
                    prop_assert_eq!(l.expire(now, budget), n);
                }
            }
            prop_assert_eq!(l.len(), m.len());
            prop_assert!(l.len() <= cap);
        }
        // Whatever is left answers as the model says.
        for t in &keys {
            let want = pos(&m, t).map(|i| m[i].1);
            prop_assert_eq!(l.peer(t, 0), want.filter(|_| pos(&m, t).is_some_and(|i| m[i].2 > 0)));
        }
    }
}

/// A connection closed at 0 s is answered through the back-end until its
/// TIME_WAIT ends, then no more; a full memory forgets the oldest first.
#[test]
fn time_wait_and_bound() {
    let t = conn_from;
    let mut l = Linger::new(vec![EMPTY; 100].into_boxed_slice(), (7, 8));
    assert!(!l.add(t(1), 2, TIME_WAIT_MS));
    assert_eq!(l.peer(&t(1), 5_000), Some(2));
    assert_eq!(l.peer(&t(1), TIME_WAIT_MS - 1), Some(2));
    assert_eq!(l.peer(&t(1), TIME_WAIT_MS), None);
    assert!(l.is_empty());
    for i in 0..100 {
        assert!(!l.add(t(i), 3, 1000 + u64::from(i)));
    }
    // The 101st forgets the oldest.
    assert!(l.add(t(100), 3, 2000));
    assert_eq!(l.peer(&t(0), 0), None);
    assert_eq!(l.peer(&t(1), 0), Some(3));
    // The sweep's expiry: the oldest first, up to its budget.
    assert_eq!(l.expire(1010, 5), 5);
    assert_eq!(l.expire(1010, 50), 5);
    assert_eq!(l.len(), 90);
    assert_eq!(l.peer(&t(11), 1010), Some(3));
}
