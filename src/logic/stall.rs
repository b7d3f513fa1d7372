// SPDX-License-Identifier: GPL-2.0

//! Stall detection of a group's member (stall rescue).
//!
//! A member is *stalled* when its accept queue is not empty and it has not
//! accepted for the group's threshold `stall_ms`. The kernel keeps no
//! count of accepts, so the module samples the queue's oldest connection
//! (its *head*, identified by the child's cookie, never reused) every
//! [`tick_ms`]: `accept()` takes the head, connections join at the tail, so
//! while the same head stays, nothing was accepted. The head leaves by an
//! accept, by the listener's close, or by a rescue (which the tracker is
//! told about): a head that left otherwise was accepted.
//!
//! A rescue empties the queue, so a stalled member that resumes might have
//! nothing left to accept to show it. While its queue is empty, one new
//! connection per [`probe_interval_ms`] is let through to it (a *probe*): if
//! it is accepted, the member serves again; if not, it is rescued like any
//! other after `stall_ms`.

/// What the sampler reads of a member at one tick.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Sample {
    /// Milliseconds, monotonic.
    pub now_ms: u64,
    /// The head's cookie (0: the queue is empty).
    pub head: u64,
    /// Handshakes under way on the member.
    pub handshakes: u32,
    /// A probe was let through since the last sample.
    pub probed: bool,
}

/// What the sampler does next for the member.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    /// Nothing.
    Wait,
    /// Move its waiting connections to serving siblings.
    Rescue,
}

/// One member's detection state, kept between samples.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Tracker {
    /// The head at the last sample or rescue (0: empty).
    pub head: u64,
    /// When `head` was first seen as the head.
    pub since_ms: u64,
    /// When the member became stalled (`None`: serving).
    pub stalled_at: Option<u64>,
    /// A probe was let through and its outcome is not known yet.
    pub probing: bool,
}

impl Tracker {
    /// Takes a sample of a member of a group whose threshold is `stall_ms`.
    pub fn observe(&mut self, s: &Sample, stall_ms: u32) -> Action {
        let probing = self.probing || s.probed;
        if s.head != self.head {
            if self.head != 0 {
                // The head left, and not by a rescue (`rescued` moves the
                // mark): the member accepted.
                self.stalled_at = None;
            }
            self.head = s.head;
            self.since_ms = s.now_ms;
        }
        self.probing = false;
        if self.stalled_at.is_some() && probing {
            if s.head == 0 && s.handshakes == 0 {
                // The probe came and went between two samples: accepted (or
                // its client gave up; then the member is found out again).
                self.stalled_at = None;
            } else if s.head == 0 {
                // Its handshake is still under way.
                self.probing = true;
            }
        }
        if s.head == 0 || s.now_ms.saturating_sub(self.since_ms) < u64::from(stall_ms) {
            return Action::Wait;
        }
        if self.stalled_at.is_none() {
            self.stalled_at = Some(s.now_ms);
        }
        Action::Rescue
    }

    /// A rescue left `head` at the head of the queue (0: it moved every
    /// connection): that is not an accept.
    pub fn rescued(&mut self, head: u64, now_ms: u64) {
        if head != self.head {
            self.head = head;
            // A connection the rescue could not move has waited at least
            // as long as the one before it: it is tried again next time.
            if head == 0 {
                self.since_ms = now_ms;
            }
        }
    }

    /// Whether the member is stalled.
    pub fn is_stalled(&self) -> bool {
        self.stalled_at.is_some()
    }

    /// How long it has been stalled (0: serving).
    pub fn stalled_for(&self, now_ms: u64) -> u64 {
        self.stalled_at.map_or(0, |t| now_ms.saturating_sub(t))
    }
}

/// How often the members of a group of threshold `stall_ms` are sampled:
/// a quarter of it, at least 5 ms and at most 250 ms.
pub fn tick_ms(stall_ms: u32) -> u32 {
    (stall_ms / 4).clamp(5, 250)
}

/// How often a stalled member whose queue is empty gets a probe: the
/// threshold, at least one second (a probe to a member that is still
/// stalled waits about the threshold before it is rescued).
pub fn probe_interval_ms(stall_ms: u32) -> u32 {
    stall_ms.max(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now_ms: u64, head: u64) -> Sample {
        Sample {
            now_ms,
            head,
            ..Default::default()
        }
    }

    #[test]
    fn same_head_for_the_threshold_is_a_stall() {
        let mut t = Tracker::default();
        assert_eq!(t.observe(&at(0, 7), 100), Action::Wait);
        assert_eq!(t.observe(&at(99, 7), 100), Action::Wait);
        assert!(!t.is_stalled());
        assert_eq!(t.observe(&at(100, 7), 100), Action::Rescue);
        assert!(t.is_stalled());
        assert_eq!(t.stalled_for(130), 30);
    }

    #[test]
    fn an_accept_ends_the_stall_at_once() {
        let mut t = Tracker::default();
        t.observe(&at(0, 7), 100);
        t.observe(&at(200, 7), 100);
        assert!(t.is_stalled());
        // The head left, not by a rescue: accepted.
        assert_eq!(t.observe(&at(210, 8), 100), Action::Wait);
        assert!(!t.is_stalled());
        assert_eq!(t.since_ms, 210);
    }

    #[test]
    fn a_rescue_is_not_an_accept() {
        let mut t = Tracker::default();
        t.observe(&at(0, 7), 100);
        assert_eq!(t.observe(&at(150, 7), 100), Action::Rescue);
        t.rescued(0, 150);
        assert_eq!(t.observe(&at(160, 0), 100), Action::Wait);
        assert!(t.is_stalled());
        // A connection the rescue could not move is tried again.
        let mut u = Tracker::default();
        u.observe(&at(0, 7), 100);
        u.observe(&at(150, 7), 100);
        u.rescued(9, 150);
        assert_eq!(u.observe(&at(160, 9), 100), Action::Rescue);
    }

    #[test]
    fn a_new_arrival_waits_the_threshold_even_when_stalled() {
        let mut t = Tracker::default();
        t.observe(&at(0, 7), 100);
        t.observe(&at(100, 7), 100);
        t.rescued(0, 100);
        assert_eq!(t.observe(&at(300, 5), 100), Action::Wait);
        assert!(t.is_stalled());
        assert_eq!(t.observe(&at(399, 5), 100), Action::Wait);
        assert_eq!(t.observe(&at(400, 5), 100), Action::Rescue);
        // Accepted once it arrived: serving.
        t.rescued(0, 400);
        t.observe(&at(500, 6), 100);
        assert_eq!(t.observe(&at(510, 0), 100), Action::Wait);
        assert!(!t.is_stalled());
    }

    #[test]
    fn a_probe_that_came_and_went_is_an_accept() {
        let mut t = Tracker::default();
        t.observe(&at(0, 7), 100);
        t.observe(&at(100, 7), 100);
        t.rescued(0, 100);
        let mut s = at(200, 0);
        s.probed = true;
        s.handshakes = 1;
        t.observe(&s, 100);
        assert!(t.is_stalled() && t.probing);
        t.observe(&at(210, 0), 100);
        assert!(!t.is_stalled());
    }

    #[test]
    fn empty_queue_never_stalls() {
        let mut t = Tracker::default();
        for now in (0..10_000).step_by(50) {
            assert_eq!(t.observe(&at(now, 0), 100), Action::Wait);
        }
        assert!(!t.is_stalled());
    }

    #[test]
    fn ticks_and_probes_are_bounded() {
        assert_eq!(tick_ms(10), 5);
        assert_eq!(tick_ms(200), 50);
        assert_eq!(tick_ms(60_000), 250);
        assert_eq!(probe_interval_ms(200), 1000);
        assert_eq!(probe_interval_ms(5000), 5000);
    }
}
