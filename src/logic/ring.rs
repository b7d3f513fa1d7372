// SPDX-License-Identifier: GPL-2.0

//! Which member of a service group takes a new connection.
//!
//! A group is a ring of listeners.  A SYN arrives for one member (the
//! *addressed* one).  If it can take the connection, it does; otherwise the
//! connection goes to a sibling chosen by the group's policy, or, when no
//! member can take it, to the kernel's own overflow handling.

/// How a group picks the sibling that takes an overflowing connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Policy {
    /// Walk the ring from the addressed member: the next member that can
    /// take the connection does.
    Ring,
    /// Master/standby: the first member in list order that can take it.
    Primary,
}

/// A member's load, as read from its listening socket.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Load {
    /// Whether the socket is listening at all.
    pub listening: bool,
    /// Connections waiting in the accept queue (`sk_ack_backlog`).
    pub accept_queue: u32,
    /// Handshakes under way (`inet_csk_reqsk_queue_len`).
    pub handshakes: u32,
    /// The accept queue's limit (`sk_max_ack_backlog`).
    pub limit: u32,
    /// A SYN handed to this member now would be answered with a SYN cookie
    /// (`tcp_conn_request`: its request queue is over `limit`,
    /// `inet_csk_reqsk_queue_is_full`).  A steered connection's cookie ACK
    /// is looked up on the addressed listener, not on this one, and is lost:
    /// such a member can keep its own connections but take no sibling's.
    pub cookie: bool,
    /// Stalled (stall rescue): its accept queue is not being served, so it
    /// takes no new connection, not even one addressed to it.
    pub stalled: bool,
}

impl Load {
    /// Whether one more connection could be lost on this member (or it is
    /// stalled).
    ///
    /// The kernel admits a final ACK while `accept_queue <= limit`
    /// (`sk_acceptq_is_full` tests `>`), so the queue holds `limit + 1`.
    /// Each handshake under way will take one place when it completes; a
    /// SYN admitted now is safe only if all of them, and it, still fit:
    /// `accept_queue + handshakes + 1 <= limit + 1`.  A member that is not
    /// listening can take nothing.
    pub fn is_full(&self) -> bool {
        !self.listening
            || self.stalled
            || u64::from(self.accept_queue) + u64::from(self.handshakes) > u64::from(self.limit)
    }

    /// Whether this member can take a connection addressed to a sibling.
    pub fn takes_redirect(&self) -> bool {
        !self.is_full() && !self.cookie
    }
}

/// Where a new connection goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Choice {
    /// The addressed member takes it: nothing to do.
    Addressed,
    /// The member at this index (in ring order) takes it instead.
    Redirect(usize),
    /// Every member is full: the kernel's own overflow handling.
    AllFull,
}

/// Chooses the member that takes a connection addressed to member `addressed`.
///
/// `load(i)` gives the load of member `i` of `len` members (ring order, the
/// order in which the group was made).  It is called at most once per member.
/// An `addressed` index out of range is treated as a member that is full.
/// The addressed member keeps a connection it has room for; a sibling takes
/// one only if it has room and would not answer with a SYN cookie.
pub fn choose(
    policy: Policy,
    len: usize,
    addressed: usize,
    mut load: impl FnMut(usize) -> Load,
) -> Choice {
    if addressed < len && !load(addressed).is_full() {
        return Choice::Addressed;
    }
    let start = match policy {
        Policy::Ring if addressed < len => addressed + 1,
        Policy::Ring | Policy::Primary => 0,
    };
    // `start <= len`, so one subtraction wraps (and no division can panic).
    (0..len)
        .map(|step| match start + step {
            i if i >= len => i - len,
            i => i,
        })
        .filter(|&i| i != addressed)
        .find(|&i| load(i).takes_redirect())
        .map_or(Choice::AllFull, Choice::Redirect)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free() -> Load {
        Load {
            listening: true,
            accept_queue: 0,
            handshakes: 0,
            limit: 4,
            cookie: false,
            stalled: false,
        }
    }

    fn full() -> Load {
        Load {
            listening: true,
            accept_queue: 5,
            handshakes: 0,
            limit: 4,
            cookie: false,
            stalled: false,
        }
    }

    fn pick(policy: Policy, loads: &[Load], addressed: usize) -> Choice {
        choose(policy, loads.len(), addressed, |i| loads[i])
    }

    #[test]
    fn full_counts_the_handshakes_under_way() {
        let mut l = Load {
            listening: true,
            accept_queue: 3,
            handshakes: 1,
            limit: 4,
            cookie: false,
            stalled: false,
        };
        assert!(
            !l.is_full(),
            "3 queued + 1 pending + this one fit in limit+1 = 5"
        );
        l.handshakes = 2;
        assert!(l.is_full(), "3 + 2 + 1 = 6 places needed, 5 exist");
        l = Load {
            listening: true,
            accept_queue: 4,
            handshakes: 0,
            limit: 4,
            cookie: false,
            stalled: false,
        };
        assert!(!l.is_full(), "the kernel still admits a fifth at limit 4");
        l.accept_queue = 5;
        assert!(l.is_full());
        assert!(Load {
            listening: false,
            ..free()
        }
        .is_full());
        let huge = Load {
            listening: true,
            accept_queue: u32::MAX,
            handshakes: u32::MAX,
            limit: u32::MAX,
            cookie: false,
            stalled: false,
        };
        assert!(huge.is_full(), "no overflow in the sum");
    }

    #[test]
    fn addressed_member_with_room_keeps_the_connection() {
        assert_eq!(
            pick(Policy::Ring, &[full(), free(), full()], 1),
            Choice::Addressed
        );
        assert_eq!(
            pick(Policy::Primary, &[full(), free(), full()], 1),
            Choice::Addressed
        );
    }

    #[test]
    fn ring_walks_forward_and_wraps() {
        assert_eq!(
            pick(Policy::Ring, &[free(), full(), full(), free()], 1),
            Choice::Redirect(3)
        );
        assert_eq!(
            pick(Policy::Ring, &[free(), full(), full(), full()], 2),
            Choice::Redirect(0)
        );
    }

    #[test]
    fn primary_takes_the_first_in_list_order() {
        assert_eq!(
            pick(Policy::Primary, &[free(), full(), full(), free()], 2),
            Choice::Redirect(0)
        );
        assert_eq!(
            pick(Policy::Primary, &[full(), full(), free(), full()], 3),
            Choice::Redirect(2)
        );
    }

    #[test]
    fn all_full_or_empty() {
        assert_eq!(pick(Policy::Ring, &[full(), full()], 0), Choice::AllFull);
        assert_eq!(pick(Policy::Primary, &[full(), full()], 1), Choice::AllFull);
        assert_eq!(pick(Policy::Ring, &[], 0), Choice::AllFull);
        assert_eq!(pick(Policy::Ring, &[free()], 3), Choice::Redirect(0));
    }

    #[test]
    fn a_sibling_that_would_answer_with_a_cookie_is_skipped() {
        let cookie = Load {
            cookie: true,
            stalled: false,
            ..free()
        };
        assert_eq!(
            pick(Policy::Ring, &[full(), cookie, free()], 0),
            Choice::Redirect(2)
        );
        assert_eq!(pick(Policy::Primary, &[cookie, full()], 1), Choice::AllFull);
        // Its own connections are the kernel's business.
        assert_eq!(pick(Policy::Ring, &[cookie, free()], 0), Choice::Addressed);
    }

    #[test]
    fn a_member_not_listening_is_skipped() {
        let gone = Load {
            listening: false,
            ..free()
        };
        assert_eq!(
            pick(Policy::Ring, &[full(), gone, free()], 0),
            Choice::Redirect(2)
        );
    }
}
