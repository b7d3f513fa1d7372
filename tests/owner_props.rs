// SPDX-License-Identifier: GPL-2.0

//! Property tests of the dispatchers' owner and backup owner
//! (src/dispatch/owner.rs): the scores against their definition and fixed
//! values, agreement, what a node's departure or arrival moves, the shares,
//! and the transitions' TRANSFERs simulated over every node.

mod common;

use common::{tuple, SoftCrc32c};
use proptest::prelude::*;
use sockgroup_logic::frame::{ConnEnd, ConnSync, Family, Placement, Tuple};
use sockgroup_logic::owner::*;
use std::collections::{BTreeMap, BTreeSet};

const C: SoftCrc32c = SoftCrc32c;

fn v4(client: [u8; 4], server: [u8; 4], cport: u16, sport: u16) -> Tuple {
    let mut c = [0u8; 16];
    let mut s = [0u8; 16];
    c[..4].copy_from_slice(&client);
    s[..4].copy_from_slice(&server);
    Tuple {
        family: Family::V4,
        client: c,
        server: s,
        client_port: cport,
        server_port: sport,
    }
}

/// Owner and backup by the definition: sort by score descending, id
/// ascending.
fn reference(ids: &BTreeSet<u32>, t: &Tuple) -> Option<Pair> {
    let mut v: Vec<(u32, u32)> = ids.iter().map(|&id| (score(&C, id, t), id)).collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    v.first().map(|&(_, owner)| Pair {
        owner,
        backup: v.get(1).map(|&(_, id)| id),
    })
}

fn view(generation: u64, ids: &BTreeSet<u32>) -> View {
    View::new(&C, generation, &ids.iter().copied().collect::<Vec<_>>()).unwrap()
}

/// Pseudo-random connections, many of them (the statistical tests).
fn conns(n: usize, seed: u64) -> Vec<Tuple> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let r = next();
            v4(
                [10, (r >> 8) as u8, (r >> 16) as u8, r as u8],
                [192, 0, 2, 1],
                (r >> 24) as u16,
                80,
            )
        })
        .collect()
}

#[test]
fn crc32c_vectors() {
    // The check value and RFC 3720's appendix B.4.
    assert_eq!(crc32c(&C, b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(&C, &[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&C, &[0xffu8; 32]), 0x62A8_AB43);
    let asc: Vec<u8> = (0..32).collect();
    assert_eq!(crc32c(&C, &asc), 0x46DD_794E);
}

#[test]
fn scores_are_fixed() {
    // Computed apart (Python, from the layout in the module's docs): a
    // change of the layout, the CRC or the finalizer moves every
    // connection of a mixed-version cluster, and fails here.
    let t4 = v4([10, 0, 0, 1], [10, 0, 0, 100], 40000, 80);
    let got: Vec<u32> = (1..=3).map(|id| score(&C, id, &t4)).collect();
    assert_eq!(got, [0x3824_bbaa, 0xe935_5ba5, 0x2f07_171f]);
    let mut c = [0u8; 16];
    let mut s = [0u8; 16];
    c[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    s[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    c[15] = 1;
    s[15] = 0x64;
    let t6 = Tuple {
        family: Family::V6,
        client: c,
        server: s,
        client_port: 40000,
        server_port: 443,
    };
    let got: Vec<u32> = (1..=3).map(|id| score(&C, id, &t6)).collect();
    assert_eq!(got, [0x11d9_2e5d, 0x5a43_8cb5, 0x97d5_162f]);
    let v = View::new(&C, 7, &[3, 1, 2]).unwrap();
    assert_eq!(
        v.pair(&C, &t4),
        Some(Pair {
            owner: 2,
            backup: Some(1)
        })
    );
    assert_eq!(
        v.pair(&C, &t6),
        Some(Pair {
            owner: 3,
            backup: Some(2)
        })
    );
    assert_eq!(score_input(0x0102_0304, &t4)[..5], [1, 2, 3, 4, 4]);
}

#[test]
fn view_bounds() {
    let ids: Vec<u32> = (1..=MAX_DISPATCHERS as u32).collect();
    let v = View::new(&C, 1, &ids).unwrap();
    assert_eq!(v.len(), MAX_DISPATCHERS);
    // Duplicates count once.
    let mut twice = ids.clone();
    twice.extend(&ids);
    assert_eq!(View::new(&C, 1, &twice), Ok(v));
    let mut over = ids.clone();
    over.push(1000);
    assert_eq!(View::new(&C, 1, &over), Err(TooMany));
    // From the membership: its generation, its dispatchers.
    let mut m = sockgroup_logic::membership::Membership::new(4);
    use sockgroup_logic::membership::Change::Up;
    m.apply(&[Up(1), Up(2), Up(3), Up(50)]).unwrap();
    let mv = View::of_membership(&C, &m, |id| id < 10).unwrap();
    assert_eq!(
        (mv.ids(), mv.generation()),
        (&[1, 2, 3, 4][..], m.generation())
    );
    assert_eq!(mv, View::new(&C, m.generation(), &[4, 3, 2, 1]).unwrap());
    // 0 is no node.
    assert_eq!(View::new(&C, 1, &[0, 2, 0, 1]).unwrap().ids(), [1, 2]);
    let e = View::empty(3);
    assert!(e.is_empty() && e.generation() == 3);
    assert_eq!(e.pair(&C, &v4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), None);
    let one = View::new(&C, 1, &[9]).unwrap();
    assert_eq!(
        one.pair(&C, &v4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)),
        Some(Pair {
            owner: 9,
            backup: None
        })
    );
}

/// Each of N dispatchers owns about 1/N of the connections; a bare CRC
/// (no finalizer) would not (see the module's docs), which this shows too.
#[test]
fn shares_are_even() {
    let ts = conns(40_000, 0x5eed);
    for n in 2..=MAX_DISPATCHERS as u32 {
        let ids: BTreeSet<u32> = (1..=n).map(|i| i * 7 + 3).collect();
        let v = view(1, &ids);
        let mut owned = BTreeMap::<u32, usize>::new();
        let mut backed = BTreeMap::<u32, usize>::new();
        for t in &ts {
            let p = v.pair(&C, t).unwrap();
            *owned.entry(p.owner).or_default() += 1;
            *backed.entry(p.backup.unwrap()).or_default() += 1;
            assert_ne!(Some(p.owner), p.backup);
        }
        let want = ts.len() as f64 / f64::from(n);
        for id in &ids {
            for (what, m) in [("owner", &owned), ("backup", &backed)] {
                let got = *m.get(id).unwrap_or(&0) as f64;
                assert!(
                    (got - want).abs() < 0.15 * want,
                    "{what} share of {id} among {n}: {got} of {}, want {want}",
                    ts.len()
                );
            }
        }
    }
    // The bare CRC over three dispatchers: one of them gets about half.
    let mut bare = BTreeMap::<u32, usize>::new();
    for t in &ts {
        let best = (1..=3u32)
            .max_by_key(|&id| (crc32c(&C, &score_input(id, t)), std::cmp::Reverse(id)))
            .unwrap();
        *bare.entry(best).or_default() += 1;
    }
    let max = *bare.values().max().unwrap() as f64 / ts.len() as f64;
    assert!(max > 0.45, "bare CRC shares {bare:?}");
}

/// A fourth dispatcher joining three takes about 1/4 of the ownership,
/// and only for itself (the scale-out test, on the host).
#[test]
fn join_moves_about_one_nth() {
    let ts = conns(40_000, 0xfeed);
    for (before, joiner) in [(vec![1u32, 2, 3], 4u32), (vec![10, 20], 30), (vec![5], 6)] {
        let mut ids: BTreeSet<u32> = before.iter().copied().collect();
        let old = view(1, &ids);
        ids.insert(joiner);
        let new = view(2, &ids);
        let mut moved = 0usize;
        for t in &ts {
            let tr = transition(&C, &old, &new, t);
            if tr.owner_changed() {
                moved += 1;
                assert_eq!(tr.new.unwrap().owner, joiner);
            }
        }
        let got = moved as f64 / ts.len() as f64;
        let want = 1.0 / ids.len() as f64;
        assert!(
            (got - want).abs() < 0.1 * want,
            "{before:?} + {joiner}: moved {got}, want {want}"
        );
    }
}

fn ids_strategy() -> impl Strategy<Value = BTreeSet<u32>> {
    prop::collection::btree_set(1u32..64, 1..=MAX_DISPATCHERS)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The view's fast scores are the definition's.
    #[test]
    fn pair_is_the_definition(ids in ids_strategy(), t in tuple()) {
        let v = view(1, &ids);
        prop_assert_eq!(v.pair(&C, &t), reference(&ids, &t));
        for (id, s) in v.scores(&C, &t) {
            prop_assert_eq!(s, score(&C, id, &t));
        }
    }

    /// Every node with the same view agrees, whatever order it learnt the
    /// ids in and whatever its generation.
    #[test]
    fn same_view_same_pair(ids in ids_strategy(), seed: u64, g1: u64, g2: u64, ts in prop::collection::vec(tuple(), 1..20)) {
        let mut shuffled: Vec<u32> = ids.iter().copied().collect();
        let n = shuffled.len();
        for i in 0..n {
            shuffled.swap(i, (seed.rotate_left(i as u32) as usize) % n);
        }
        shuffled.extend(ids.iter().take(2));
        let a = view(g1, &ids);
        let b = View::new(&C, g2, &shuffled).unwrap();
        prop_assert_eq!(a.ids(), b.ids());
        for t in &ts {
            prop_assert_eq!(a.pair(&C, t), b.pair(&C, t));
        }
    }

    /// A departure moves the ownership only of the connections the node
    /// owned, to their backups; and the backup only of the connections it
    /// owned or backed up.
    #[test]
    fn departure_moves_only_its_own(ids in prop::collection::btree_set(1u32..64, 2..=MAX_DISPATCHERS), pick in any::<prop::sample::Index>(), ts in prop::collection::vec(tuple(), 1..40)) {
        let gone = *pick.get(&ids.iter().copied().collect::<Vec<_>>());
        let old = view(1, &ids);
        let mut rest = ids.clone();
        rest.remove(&gone);
        let new = view(2, &rest);
        for t in &ts {
            let tr = transition(&C, &old, &new, t);
            let (o, n) = (tr.old.unwrap(), tr.new.unwrap());
            prop_assert_eq!(tr.owner_changed(), o.owner == gone);
            if o.owner == gone {
                prop_assert_eq!(Some(n.owner), o.backup);
                prop_assert!(tr.plan(n.owner).takeover);
            }
            if tr.backup_changed() {
                prop_assert!(o.holds(gone));
            }
            prop_assert!(!tr.lost());
        }
    }

    /// An arrival takes ownership only for itself, and changes a backup
    /// only where it becomes owner or backup.
    #[test]
    fn arrival_takes_only_for_itself(ids in ids_strategy().prop_filter("room", |s| s.len() < MAX_DISPATCHERS), joiner in 64u32..128, ts in prop::collection::vec(tuple(), 1..40)) {
        let old = view(1, &ids);
        let mut more = ids.clone();
        more.insert(joiner);
        let new = view(2, &more);
        for t in &ts {
            let tr = transition(&C, &old, &new, t);
            let n = tr.new.unwrap();
            if tr.owner_changed() {
                prop_assert_eq!(n.owner, joiner);
                // The old owner hands over and forwards until the ack.
                let o = tr.old.unwrap();
                prop_assert_eq!(tr.sender, Some(o.owner));
                prop_assert_eq!(tr.interim, Some(o.owner));
                prop_assert_eq!(tr.to[0], Some(joiner));
            }
            if tr.backup_changed() {
                prop_assert!(n.holds(joiner));
            }
        }
    }

    /// Every node applies its plan of a transition: afterwards the new
    /// owner and backup hold the entry whenever an old holder survived,
    /// each got it at most once, and nobody else keeps it (but the interim
    /// forwarder until the ack).
    #[test]
    fn plans_hand_every_entry_on(
        old_ids in ids_strategy(),
        downs in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        ups in prop::collection::btree_set(1u32..80, 0..4),
        t in tuple(),
    ) {
        let old = view(1, &old_ids);
        let mut new_ids = old_ids.clone();
        let list: Vec<u32> = old_ids.iter().copied().collect();
        for d in &downs {
            new_ids.remove(d.get(&list));
        }
        for u in &ups {
            if new_ids.len() < MAX_DISPATCHERS {
                new_ids.insert(*u);
            }
        }
        let new = view(2, &new_ids);
        let tr = transition(&C, &old, &new, &t);
        let all: BTreeSet<u32> = old_ids.union(&new_ids).copied().collect();
        // Who holds the entry before: the old pair, those still up.
        let mut held: BTreeSet<u32> = all.iter().copied().filter(|&id| tr.old.unwrap().holds(id) && new_ids.contains(&id)).collect();
        let mut received = BTreeMap::<u32, usize>::new();
        let mut interim = BTreeSet::new();
        for &me in all.iter().filter(|id| new_ids.contains(id)) {
            let p = tr.plan(me);
            for to in p.send.iter().flatten() {
                *received.entry(*to).or_default() += 1;
            }
            if p.interim {
                // It forwards meanwhile: it keeps the entry.
                prop_assert!(matches!(p.release, Release::Keep | Release::FreeOnAck));
                interim.insert(me);
            }
            match p.release {
                Release::Keep => prop_assert!(held.contains(&me) && p.role != Role::Other),
                Release::Free => { held.remove(&me); }
                Release::FreeOnAck => prop_assert!(p.interim),
                Release::Nothing => prop_assert!(!held.contains(&me)),
            }
        }
        prop_assert!(received.values().all(|&n| n == 1));
        for id in received.keys() {
            prop_assert!(!held.contains(id));
            held.insert(*id);
        }
        // The interim forwarder keeps it until the ack, then frees it
        // unless it is a new holder.
        for id in &interim {
            if !tr.new.unwrap().holds(*id) {
                held.remove(id);
            }
        }
        let want: BTreeSet<u32> = match (tr.lost(), tr.new) {
            (false, Some(n)) => [Some(n.owner), n.backup].into_iter().flatten().collect(),
            _ => BTreeSet::new(),
        };
        prop_assert_eq!(&held, &want);
        prop_assert_eq!(tr.lost(), !old_ids.iter().any(|&id| tr.old.unwrap().holds(id) && new_ids.contains(&id)));
        // Someone forwards unless the entry is lost or nobody is up.
        if !tr.lost() && tr.new.is_some() {
            prop_assert!(tr.interim.is_some());
        }
    }
}

fn sync(t: Tuple, p: Pair) -> ConnSync {
    ConnSync {
        tuple: t,
        owner: p.owner,
        backup: p.backup_id(),
        backend: 100,
        generation: 1,
        service: 1,
        client_isn: 2,
        server_isn: 3,
        placement: Placement::Forwarded,
    }
}

/// The receiver's checks of CONN_SYNC and TRANSFER entries: only what the
/// owner sends its backup, only entries for the receiver, only from the
/// dispatchers of its view.
#[test]
fn received_entries_are_checked() {
    let v = View::new(&C, 1, &[1, 2, 3]).unwrap();
    let t = v4([10, 0, 0, 1], [10, 0, 0, 100], 40000, 80);
    let p = v.pair(&C, &t).unwrap();
    let (o, b) = (p.owner, p.backup.unwrap());
    let other = 6 - o - b;
    let s = sync(t, p);
    assert!(agrees(&C, &v, &s));
    assert_eq!(check_sync(&v, &s, o, b), Ok(()));
    assert_eq!(check_sync(&v, &s, b, o), Err(Refused::NotFromOwner));
    assert_eq!(check_sync(&v, &s, o, other), Err(Refused::NotForMe));
    assert_eq!(check_sync(&v, &s, 9, b), Err(Refused::NotDispatcher));
    assert_eq!(check_sync(&v, &s, b, b), Err(Refused::Inconsistent));
    let same = ConnSync { backup: o, ..s };
    assert_eq!(check_sync(&v, &same, o, b), Err(Refused::Inconsistent));
    // The back-end's: from the owner that names itself, to the back-end
    // it names, of a moved connection.
    assert_eq!(check_reown(&v, &s, o, 100), Ok(()));
    assert_eq!(check_reown(&v, &s, b, 100), Err(Refused::NotFromOwner));
    assert_eq!(check_reown(&v, &s, o, 7), Err(Refused::NotForMe));
    let foreign = ConnSync { owner: 9, ..s };
    assert_eq!(
        check_reown(&v, &foreign, 9, 100),
        Err(Refused::NotDispatcher)
    );
    let pending = ConnSync {
        placement: Placement::Pending,
        ..s
    };
    assert_eq!(
        check_reown(&v, &pending, o, 100),
        Err(Refused::Inconsistent)
    );
    // A hint for the association cache: from the owner of a moved
    // connection, to any other dispatcher.
    assert_eq!(check_hint(&v, &s, o, other), Ok(()));
    assert_eq!(check_hint(&v, &s, o, b), Ok(()));
    assert_eq!(check_hint(&v, &s, b, other), Err(Refused::NotFromOwner));
    assert_eq!(
        check_hint(&v, &foreign, 9, other),
        Err(Refused::NotDispatcher)
    );
    assert_eq!(
        check_hint(&v, &pending, o, other),
        Err(Refused::Inconsistent)
    );
    let nowhere = ConnSync { backend: 0, ..s };
    assert_eq!(
        check_hint(&v, &nowhere, o, other),
        Err(Refused::Inconsistent)
    );
    // TRANSFER entries come from any surviving holder.
    assert_eq!(check_entry(&v, &s, other, o), Ok(Role::Owner));
    assert_eq!(check_entry(&v, &s, o, b), Ok(Role::Backup));
    assert_eq!(check_entry(&v, &s, o, other), Err(Refused::NotForMe));
    assert_eq!(check_entry(&v, &s, 9, b), Err(Refused::NotDispatcher));
    // A view that disagrees: stored all the same, but seen.
    let swapped = ConnSync {
        owner: b,
        backup: o,
        ..s
    };
    assert!(!agrees(&C, &v, &swapped));
    assert_eq!(check_sync(&v, &swapped, b, o), Ok(()));
    // An owner alone: no backup, 0 on the wire.
    let alone = View::new(&C, 1, &[o]).unwrap();
    let pa = alone.pair(&C, &t).unwrap();
    assert_eq!(pa.backup_id(), NO_NODE);
    assert!(agrees(&C, &alone, &sync(t, pa)));
}

proptest! {
    /// A backup's records after a change of view: the owner's departure
    /// makes the backup the owner, which takes over exactly the forwarded
    /// connections; a departure of another node keeps the record if the
    /// backup still is one; a node that is neither any more drops it.
    #[test]
    fn records_follow_the_view(
        ids in prop::collection::btree_set(1u32..64, 2..=MAX_DISPATCHERS),
        pick in any::<prop::sample::Index>(),
        t in tuple(),
        placement in prop::sample::select(vec![Placement::Forwarded, Placement::Pending, Placement::Local]),
    ) {
        let old = view(1, &ids);
        let p = old.pair(&C, &t).unwrap();
        let me = p.backup.unwrap();
        let s = ConnSync { placement, ..sync(t, p) };
        // Nothing changed: kept.
        prop_assert_eq!(record_fate(&C, &old, &s, me), Fate::Keep);
        let gone = *ids.iter().nth(pick.index(ids.len())).unwrap();
        let mut rest = ids.clone();
        rest.remove(&gone);
        let new = view(2, &rest);
        let fate = record_fate(&C, &new, &s, me);
        if gone == p.owner {
            // The backup always owns it next (the second score).
            prop_assert_eq!(new.pair(&C, &t).map(|q| q.owner), Some(me));
            let want = if placement == Placement::Forwarded { Fate::TakeOver } else { Fate::Drop };
            prop_assert_eq!(fate, want);
        } else if gone == me {
            prop_assert_eq!(fate, Fate::Drop);
        } else {
            // A third node went: the pair is the same.
            prop_assert_eq!(fate, Fate::Keep);
        }
        // Any other node than the backup never takes it over.
        for &id in rest.iter().filter(|&&id| id != me) {
            prop_assert_ne!(record_fate(&C, &new, &s, id), Fate::TakeOver);
        }
    }
}

proptest! {
    /// A dispatcher that joins: the owner of a moved connection hands it
    /// over only to the joiner when the joiner owns it now (TRANSFER to the
    /// joiner alone: the old owner is its backup; the entry passes the
    /// joiner's check), re-syncs when the joiner became the backup, and
    /// keeps it otherwise.
    #[test]
    fn a_join_hands_over_to_the_joiner(
        ids in ids_strategy().prop_filter("room", |s| s.len() < MAX_DISPATCHERS),
        joiner in 64u32..128,
        t in tuple(),
    ) {
        let p = view(1, &ids).pair(&C, &t).unwrap();
        let mut all = ids.clone();
        all.insert(joiner);
        let new = view(2, &all);
        let q = new.pair(&C, &t).unwrap();
        let h = handover(&C, &new, p.owner, p.backup_id(), &t);
        if q.owner == joiner {
            prop_assert_eq!(q.backup, Some(p.owner));
            prop_assert_eq!(h, Handover::Transfer { pair: q, to: [Some(joiner), None] });
            // It passes the joiner's check; the same entry from the owner
            // it names (no lower rank than that owner), with another
            // placement, or with the pair swapped, is refused.
            let s = sync(t, q);
            prop_assert_eq!(check_transfer(&C, &new, &s, p.owner, joiner), Ok(Role::Owner));
            prop_assert_eq!(check_transfer(&C, &new, &s, joiner, p.owner), Err(Refused::Inconsistent));
            let local = ConnSync { placement: Placement::Local, ..s };
            prop_assert_eq!(check_transfer(&C, &new, &local, p.owner, joiner), Err(Refused::Inconsistent));
            let swapped = ConnSync { owner: p.owner, backup: joiner, ..s };
            prop_assert_eq!(check_transfer(&C, &new, &swapped, joiner, p.owner), Err(Refused::Inconsistent));
        } else if q.backup == Some(joiner) {
            prop_assert_eq!(h, Handover::Resync(joiner));
        } else {
            prop_assert_eq!(h, Handover::Keep);
        }
        // The unchanged view changes nothing.
        prop_assert_eq!(handover(&C, &view(1, &ids), p.owner, p.backup_id(), &t), Handover::Keep);
    }

    /// After a TRANSFER_ACK: when one dispatcher joins, the old owner of
    /// a connection the joiner owns now is its backup and keeps its entry;
    /// when two join and both outrank it, it is neither and lets the entry
    /// go, unless the new owner is the connection's back-end (its TERM
    /// still comes to the old owner).
    #[test]
    fn acked_keeps_only_the_backup(
        ids in prop::collection::btree_set(1u32..64, 1..=MAX_DISPATCHERS - 2),
        a in 64u32..96,
        b in 96u32..128,
        backend in 1u32..128,
        t in tuple(),
    ) {
        let old = reference(&ids, &t).unwrap().owner;
        let mut one = ids.clone();
        one.insert(a);
        let p1 = view(2, &one).pair(&C, &t).unwrap();
        if p1.owner == a {
            prop_assert_eq!(p1.backup, Some(old));
            prop_assert_eq!(acked(Some(p1), old, a, backend), Acked::Keep);
        }
        let mut two = one.clone();
        two.insert(b);
        let p2 = view(3, &two).pair(&C, &t).unwrap();
        let outranked = p2.owner != old && p2.backup.is_some_and(|x| x != old);
        let want = if outranked && backend != p2.owner { Acked::Linger } else { Acked::Keep };
        prop_assert_eq!(acked(Some(p2), old, p2.owner, backend), want);
        // The same as the transition's plan for the sender (the old
        // owner, still up): free on the TRANSFER_ACK or keep.
        let plan = transition(&C, &view(1, &ids), &view(3, &two), &t).plan(old);
        if backend != p2.owner {
            let want = match plan.release {
                Release::FreeOnAck => Acked::Linger,
                _ => Acked::Keep,
            };
            prop_assert_eq!(acked(Some(p2), old, p2.owner, backend), want);
        }
        // An empty view (every dispatcher gone): nothing to back up.
        prop_assert_eq!(acked(None, old, p2.owner, backend), if backend == p2.owner { Acked::Keep } else { Acked::Linger });
    }

    /// Whatever each node's view (any subsets of the dispatchers, as
    /// while memberships change), a segment forwarded from owner to backup
    /// (`to_backup`) visits each node at most once, and each hop goes to a
    /// node of a lower rank for the tuple: the forwarding ends.
    #[test]
    fn to_backup_chains_end(
        ids in prop::collection::btree_set(1u32..64, 1..=MAX_DISPATCHERS),
        masks in prop::collection::vec(any::<u16>(), MAX_DISPATCHERS),
        start in any::<prop::sample::Index>(),
        t in tuple(),
    ) {
        let nodes: Vec<u32> = ids.iter().copied().collect();
        // Node i's view: the nodes its mask selects.
        let views: BTreeMap<u32, View> = nodes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let sel: BTreeSet<u32> = nodes
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| masks[i] & (1 << j) != 0)
                    .map(|(_, &m)| m)
                    .collect();
                (n, view(1, &sel))
            })
            .collect();
        let rank = |n: u32| reference(&ids, &t).map(|_| {
            let mut v: Vec<(u32, u32)> = ids.iter().map(|&id| (score(&C, id, &t), id)).collect();
            v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            v.iter().position(|&(_, id)| id == n).unwrap()
        }).unwrap();
        let mut at = nodes[start.index(nodes.len())];
        let mut seen = BTreeSet::new();
        while let Some(next) = to_backup(views[&at].pair(&C, &t), at) {
            prop_assert!(seen.insert(at));
            prop_assert!(rank(next) > rank(at));
            prop_assert!(views.contains_key(&next));
            at = next;
        }
        prop_assert!(seen.len() < nodes.len());
    }
}

proptest! {
    /// A CONN_END ends the record of its own connection alone: the same
    /// tuple and client ISN, from the node the record came from or from the
    /// connection's owner. One for an earlier connection on the tuple (the
    /// client reused its port; another ISN) ends nothing, and neither does
    /// one from a third node.
    #[test]
    fn conn_end_ends_its_own_connection_alone(
        t in tuple(),
        other in tuple(),
        isn: u32,
        other_isn: u32,
        (owner, from, third) in (1u32..50, 1u32..50, 50u32..100),
    ) {
        let s = ConnSync { owner, client_isn: isn, ..sync(t, Pair { owner, backup: None }) };
        let end = ConnEnd { tuple: t, client_isn: isn };
        prop_assert!(ends(&s, from, from, &end));
        prop_assert!(ends(&s, from, owner, &end));
        prop_assert!(!ends(&s, from, third, &end));
        let late = ConnEnd { tuple: t, client_isn: other_isn };
        prop_assert_eq!(ends(&s, from, from, &late), other_isn == isn);
        let elsewhere = ConnEnd { tuple: other, client_isn: isn };
        prop_assert_eq!(ends(&s, from, from, &elsewhere), other == t);
    }
}
