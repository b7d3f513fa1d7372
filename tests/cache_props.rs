// SPDX-License-Identifier: GPL-2.0

//! Property tests of the dispatchers' association cache
//! (src/dispatch/cache.rs) against a model: a list from the most to the
//! least recently used, cut at the capacity.

mod common;

use common::tuple;
use proptest::prelude::*;
use sockgroup_logic::cache::{Assoc, Cache, Slot};
use sockgroup_logic::frame::Tuple;

#[derive(Clone, Debug)]
enum Op {
    Get(usize),
    Peek(usize),
    Insert(usize, Assoc),
    Remove(usize),
    FlushNode(u32),
    Clear,
}

fn assoc() -> impl Strategy<Value = Assoc> {
    (1u32..5, 10u32..14).prop_map(|(owner, backend)| Assoc { owner, backend })
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0usize..12;
    prop_oneof![
        3 => k.clone().prop_map(Op::Get),
        1 => k.clone().prop_map(Op::Peek),
        4 => (k.clone(), assoc()).prop_map(|(k, a)| Op::Insert(k, a)),
        1 => k.prop_map(Op::Remove),
        1 => prop_oneof![1u32..5, 10u32..14].prop_map(Op::FlushNode),
        1 => Just(Op::Clear),
    ]
}

/// The model: most recently used first.
struct Model {
    cap: usize,
    v: Vec<(Tuple, Assoc)>,
}

impl Model {
    fn pos(&self, t: &Tuple) -> Option<usize> {
        self.v.iter().position(|(k, _)| k == t)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn matches_the_model(cap in 0usize..8, key: (u64, u64), keys in prop::collection::vec(tuple(), 12), ops in prop::collection::vec(op(), 0..80)) {
        let mut c = Cache::new(vec![Slot::EMPTY; cap], key);
        let mut m = Model { cap, v: Vec::new() };
        prop_assert_eq!(c.capacity(), cap);
        for op in ops {
            match op {
                Op::Get(k) => {
                    let t = keys[k];
                    let want = m.pos(&t).map(|i| {
                        let e = m.v.remove(i);
                        m.v.insert(0, e);
                        e.1
                    });
                    prop_assert_eq!(c.get(&t), want);
                }
                Op::Peek(k) => {
                    let t = keys[k];
                    prop_assert_eq!(c.peek(&t), m.pos(&t).map(|i| m.v[i].1));
                }
                Op::Insert(k, a) => {
                    let t = keys[k];
                    let want = if m.cap == 0 {
                        Some((t, a))
                    } else if let Some(i) = m.pos(&t) {
                        m.v.remove(i);
                        m.v.insert(0, (t, a));
                        None
                    } else {
                        m.v.insert(0, (t, a));
                        (m.v.len() > m.cap).then(|| m.v.pop().unwrap())
                    };
                    prop_assert_eq!(c.insert(t, a), want);
                }
                Op::Remove(k) => {
                    let t = keys[k];
                    let want = m.pos(&t).map(|i| m.v.remove(i).1);
                    prop_assert_eq!(c.remove(&t), want);
                }
                Op::FlushNode(n) => {
                    let before = m.v.len();
                    m.v.retain(|(_, a)| a.owner != n && a.backend != n);
                    prop_assert_eq!(c.flush_node(n), before - m.v.len());
                }
                Op::Clear => {
                    m.v.clear();
                    c.clear();
                }
            }
            prop_assert_eq!(c.len(), m.v.len());
            prop_assert!(c.len() <= cap);
            prop_assert_eq!(c.iter().collect::<Vec<_>>(), m.v.clone());
        }
    }
}

use common::conn_from as conn;

/// A large cache, filled twice over: the capacity holds, the oldest go
/// first, a touched entry survives, and a departed node's entries go.
#[test]
fn capacity_order_and_flush() {
    const N: usize = 1000;
    let mut c = Cache::new(vec![Slot::EMPTY; N].into_boxed_slice(), (1, 2));
    let a = |i: u16| Assoc {
        owner: u32::from(i % 3) + 1,
        backend: 100 + u32::from(i % 2),
    };
    for i in 0..N as u16 {
        assert_eq!(c.insert(conn(i), a(i)), None);
    }
    assert_eq!(c.len(), N);
    // Touch the oldest: it survives the next insertion, the second oldest
    // goes.
    assert_eq!(c.get(&conn(0)), Some(a(0)));
    assert_eq!(c.insert(conn(5000), a(0)), Some((conn(1), a(1))));
    assert_eq!(c.peek(&conn(0)), Some(a(0)));
    for i in 0..N as u16 {
        c.insert(conn(10_000 + i), a(i));
    }
    assert_eq!(c.len(), N);
    assert!((0..N as u16).all(|i| c.peek(&conn(i)).is_none()));
    let owned_by_2 = c.iter().filter(|(_, x)| x.owner == 2).count();
    assert!(owned_by_2 > 300);
    assert_eq!(c.flush_node(2), owned_by_2);
    assert_eq!(c.len(), N - owned_by_2);
    assert!(c.iter().all(|(_, x)| x.owner != 2));
    // Freed slots are reused, without evictions.
    for i in 0..owned_by_2 as u16 {
        assert_eq!(c.insert(conn(20_000 + i), a(1)), None);
    }
    assert_eq!(c.len(), N);
    let served_by_101 = c.iter().filter(|(_, x)| x.backend == 101).count();
    assert!(served_by_101 > 0);
    assert_eq!(c.flush_node(101), served_by_101);
    assert!(c.iter().all(|(_, x)| x.backend != 101));
}

/// Two buckets for fifty keys: every lookup walks a chain.
#[test]
fn chains() {
    let mut c = Cache::new(vec![Slot::EMPTY; 2], (0, 0));
    for i in 0..50 {
        c.insert(
            conn(i),
            Assoc {
                owner: 1,
                backend: u32::from(i),
            },
        );
        assert_eq!(c.len(), usize::from(i.min(1)) + 1);
        assert_eq!(c.peek(&conn(i)).map(|a| a.backend), Some(u32::from(i)));
        if i > 0 {
            assert!(c.peek(&conn(i - 1)).is_some());
        }
    }
    assert_eq!(c.remove(&conn(48)).map(|a| a.backend), Some(48));
    assert_eq!(c.remove(&conn(48)), None);
    assert_eq!(c.iter().map(|(t, _)| t).collect::<Vec<_>>(), [conn(49)]);
}
