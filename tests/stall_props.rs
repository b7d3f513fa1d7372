// SPDX-License-Identifier: GPL-2.0

//! Property tests of stall detection against a model accept queue.

use proptest::prelude::*;
use sockgroup_logic::stall::{tick_ms, Action, Sample, Tracker};
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug)]
enum Event {
    /// A connection joins the queue.
    Arrive,
    /// The application accepts one (if any).
    Accept,
    /// Time passes; the sampler runs (and rescues when told to).
    Tick,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![3 => Just(Event::Arrive), 2 => Just(Event::Accept), 4 => Just(Event::Tick)]
}

proptest! {
    #[test]
    fn detection_matches_the_definition(
        events in prop::collection::vec(event(), 0..200),
        stall_ms in 10u32..400,
    ) {
        let tick = u64::from(tick_ms(stall_ms));
        let mut queue: VecDeque<(u64, u64)> = VecDeque::new(); // (cookie, arrival)
        let mut next_cookie = 1u64;
        let mut now = 0u64;
        let mut t = Tracker::default();
        let mut accepted_since_sample = false;
        let mut head_at_sample = 0u64;
        // When the current head was first seen at a sample.
        let mut first_seen: Option<(u64, u64)> = None;
        for e in events {
            match e {
                Event::Arrive => {
                    queue.push_back((next_cookie, now));
                    next_cookie += 1;
                }
                Event::Accept => {
                    if queue.pop_front().is_some() {
                        accepted_since_sample = true;
                    }
                }
                Event::Tick => {
                    now += tick;
                    let head = queue.front().map_or(0, |c| c.0);
                    if first_seen.map(|f| f.0) != Some(head) {
                        first_seen = Some((head, now));
                    }
                    let action = t.observe(&Sample { now_ms: now, head, handshakes: 0, probed: false }, stall_ms);
                    if accepted_since_sample && head_at_sample != 0 {
                        prop_assert!(!t.is_stalled(), "an accept since the last sample ends a stall");
                    }
                    let waited = first_seen.map_or(0, |f| now - f.1);
                    match action {
                        Action::Rescue => {
                            prop_assert!(head != 0);
                            // It has been the head at every sample for the threshold.
                            prop_assert!(waited >= u64::from(stall_ms));
                            prop_assert!(t.is_stalled());
                            queue.clear();
                            t.rescued(0, now);
                        }
                        Action::Wait => {
                            prop_assert!(head == 0 || waited < u64::from(stall_ms));
                        }
                    }
                    accepted_since_sample = false;
                    head_at_sample = queue.front().map_or(0, |c| c.0);
                    if head_at_sample == 0 {
                        first_seen = None;
                    }
                }
            }
        }
    }
}
