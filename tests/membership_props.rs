// SPDX-License-Identifier: GPL-2.0

//! Property tests of liveness, backoff and the membership set
//! (src/cluster/membership.rs) against their definitions.

use proptest::prelude::*;
use sockgroup_logic::membership::*;
use std::collections::BTreeSet;

proptest! {
    #[test]
    fn down_after_three_silent_intervals(start in 0u64..1 << 40, interval in 1u32..10_000, beats in prop::collection::vec(0u64..5000, 0..20), probe in 0u64..100_000) {
        let mut l = Liveness::new(start, interval);
        let mut last = start;
        for b in beats {
            let prev = last;
            last += b;
            // Down once 3 full intervals passed since the last frame.
            prop_assert_eq!(l.is_down(last), b >= 3 * u64::from(interval));
            prop_assert_eq!(l.last_heard_ms(), prev);
            l.heard(last);
            prop_assert_eq!(l.last_heard_ms(), last);
        }
        let now = last + probe;
        prop_assert_eq!(l.is_down(now), probe >= 3 * u64::from(interval));
        prop_assert_eq!(l.deadline_ms(), last + 3 * u64::from(interval));
        // A clock that goes back changes nothing.
        l.heard(last.saturating_sub(1));
        prop_assert_eq!(l.last_heard_ms(), last);
    }

    #[test]
    fn backoff_doubles_to_the_cap(n in 1usize..30, reset_at in 0usize..30) {
        let mut b = Backoff::new();
        let mut want = BACKOFF_INITIAL_MS;
        for i in 0..n {
            if i == reset_at {
                b.reset();
                want = BACKOFF_INITIAL_MS;
            }
            prop_assert_eq!(b.peek_ms(), want);
            prop_assert_eq!(b.next_delay_ms(), want);
            want = (want * 2).min(BACKOFF_MAX_MS);
        }
    }

    #[test]
    fn membership_matches_a_set(self_id in 1u32..100, batches in prop::collection::vec(prop::collection::vec((any::<bool>(), 1u32..100), 0..6), 0..40)) {
        let mut m = Membership::new(self_id);
        let mut model = BTreeSet::from([self_id]);
        let mut generation = m.generation();
        for batch in batches {
            let changes: Vec<Change> = batch
                .iter()
                .map(|&(up, id)| if up { Change::Up(id) } else { Change::Down(id) })
                .collect();
            let mut next = model.clone();
            for &(up, id) in &batch {
                if up {
                    next.insert(id);
                } else {
                    next.remove(&id);
                }
            }
            let moved = m.apply(&changes).unwrap();
            prop_assert_eq!(moved, next != model);
            if moved {
                generation += 1;
            }
            model = next;
            prop_assert_eq!(m.generation(), generation);
            prop_assert_eq!(m.ids(), &model.iter().copied().collect::<Vec<_>>()[..]);
            prop_assert_eq!(m.len(), model.len());
            for id in 0..101 {
                prop_assert_eq!(m.contains(id), model.contains(&id));
            }
        }
    }
}

#[test]
fn membership_bound_is_all_or_nothing() {
    let mut m = Membership::new(1);
    let ups: Vec<Change> = (2..=MAX_MEMBERS as u32).map(Change::Up).collect();
    assert_eq!(m.apply(&ups), Ok(true));
    assert_eq!(m.len(), MAX_MEMBERS);
    let before = m;
    // One more does not fit, even with a down earlier in the same batch
    // undone by the up that follows it.
    assert_eq!(m.apply(&[Change::Up(1000)]), Err(Full));
    assert_eq!(m, before);
    assert_eq!(
        m.apply(&[Change::Down(5), Change::Up(1000), Change::Up(1001)]),
        Err(Full)
    );
    assert_eq!(m, before);
    // A down then an up fits.
    assert_eq!(m.apply(&[Change::Down(5), Change::Up(1000)]), Ok(true));
    assert!(m.contains(1000) && !m.contains(5));
    assert_eq!(m.generation(), before.generation() + 1);
    // No change, no new generation.
    assert_eq!(m.apply(&[Change::Up(1000), Change::Down(77777)]), Ok(false));
    assert_eq!(m.generation(), before.generation() + 1);
}

#[test]
fn liveness_zero_interval() {
    let l = Liveness::new(10, 0);
    assert_eq!(l.interval_ms(), 1);
    assert!(!l.is_down(12));
    assert!(l.is_down(13));
    let l = Liveness::new(u64::MAX - 1, u32::MAX);
    assert_eq!(l.deadline_ms(), u64::MAX);
}

proptest! {
    /// The back-end's wait for an orphaned connection: at least 5 s, and
    /// longer than the time every other node needs to see the front-end
    /// down (its missed intervals, an interval apart) plus an interval for
    /// the takeover's message; never shorter at a longer interval.
    #[test]
    fn orphan_wait_covers_the_takeover(a in 0u32..600_000, b in 0u32..600_000) {
        let w = orphan_wait_ms(a);
        prop_assert!(w >= ORPHAN_MIN_MS);
        prop_assert!(w > (MISSED_INTERVALS + 1) * u64::from(a));
        if a <= b {
            prop_assert!(w <= orphan_wait_ms(b));
        }
    }
}

#[test]
fn orphan_wait_at_the_default_interval_is_5_s() {
    assert_eq!(orphan_wait_ms(DEFAULT_HB_INTERVAL_MS), 5000);
    assert_eq!(orphan_wait_ms(2000), 10_000);
}
