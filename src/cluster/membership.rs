// SPDX-License-Identifier: GPL-2.0

//! Who is up: peer liveness from heartbeats, the reconnect backoff, and the
//! membership set with its generation.
//!
//! Times are milliseconds on a monotonic clock the caller reads (the
//! module: `jiffies` converted); nothing here reads a clock or allocates.

/// A peer that sent nothing for this many intervals is down.
pub const MISSED_INTERVALS: u64 = 3;
/// The heartbeat interval when none is configured, in ms.
pub const DEFAULT_HB_INTERVAL_MS: u32 = 200;
/// The first reconnect delay, in ms.
pub const BACKOFF_INITIAL_MS: u32 = 100;
/// The longest reconnect delay, in ms.
pub const BACKOFF_MAX_MS: u32 = 5000;
/// The most nodes in a membership, self included.
pub const MAX_MEMBERS: usize = 64;
/// The shortest wait of a back-end for an orphaned connection's
/// confirmation ([`orphan_wait_ms`]), in ms.
pub const ORPHAN_MIN_MS: u64 = 5000;

/// How long a back-end waits for a connection adopted from a front-end
/// whose channel went down, before it confirmed the connection, to be
/// confirmed (a segment forwarded by the dispatcher that took it over, or
/// that dispatcher's CONN_SYNC) before it kills it, at a heartbeat
/// interval of `interval_ms`: the other nodes see the front-end down
/// [`MISSED_INTERVALS`] intervals after its last frame, each at its own
/// time (up to an interval apart), then the takeover's message goes; one
/// more interval of slack, and at least [`ORPHAN_MIN_MS`].
pub fn orphan_wait_ms(interval_ms: u32) -> u64 {
    ((MISSED_INTERVALS + 2) * u64::from(interval_ms.max(1))).max(ORPHAN_MIN_MS)
}

/// When a peer was last heard from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Liveness {
    last_heard_ms: u64,
    interval_ms: u32,
}

impl Liveness {
    /// A peer heard from at `now_ms` (channel up), expected to send every
    /// `interval_ms` (0 counts as 1).
    pub fn new(now_ms: u64, interval_ms: u32) -> Self {
        Liveness {
            last_heard_ms: now_ms,
            interval_ms: interval_ms.max(1),
        }
    }

    /// Records a frame received at `now_ms` (a clock that went back is
    /// ignored).
    pub fn heard(&mut self, now_ms: u64) {
        self.last_heard_ms = self.last_heard_ms.max(now_ms);
    }

    /// The interval the peer is expected to keep.
    pub fn interval_ms(&self) -> u32 {
        self.interval_ms
    }

    /// Changes the expected interval (0 counts as 1).
    pub fn set_interval(&mut self, interval_ms: u32) {
        self.interval_ms = interval_ms.max(1);
    }

    /// When the last frame was received.
    pub fn last_heard_ms(&self) -> u64 {
        self.last_heard_ms
    }

    /// The time at which the peer is down if nothing comes before.
    pub fn deadline_ms(&self) -> u64 {
        self.last_heard_ms
            .saturating_add(MISSED_INTERVALS * u64::from(self.interval_ms))
    }

    /// Whether the peer missed [`MISSED_INTERVALS`] intervals by `now_ms`.
    pub fn is_down(&self, now_ms: u64) -> bool {
        now_ms >= self.deadline_ms()
    }
}

/// Reconnect delays: 100 ms, doubling to 5 s; back to 100 ms after a
/// success.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Backoff {
    next_ms: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// The first delay is [`BACKOFF_INITIAL_MS`].
    pub const fn new() -> Self {
        Backoff {
            next_ms: BACKOFF_INITIAL_MS,
        }
    }

    /// The delay before the next attempt; the one after it doubles, up to
    /// [`BACKOFF_MAX_MS`].
    pub fn next_delay_ms(&mut self) -> u32 {
        let d = self.next_ms;
        self.next_ms = d.saturating_mul(2).min(BACKOFF_MAX_MS);
        d
    }

    /// What [`Self::next_delay_ms`] will return, without using it.
    pub fn peek_ms(&self) -> u32 {
        self.next_ms
    }

    /// A connection succeeded.
    pub fn reset(&mut self) {
        self.next_ms = BACKOFF_INITIAL_MS;
    }
}

/// One change to a membership.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Change {
    /// The node is up.
    Up(u32),
    /// The node is down.
    Down(u32),
}

/// A change would put more than [`MAX_MEMBERS`] nodes in the membership.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Full;

/// The nodes up, self included, sorted, with a generation that grows at
/// every change.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Membership {
    ids: [u32; MAX_MEMBERS],
    len: usize,
    generation: u64,
}

impl Membership {
    /// Only `self_id`, generation 1.
    pub fn new(self_id: u32) -> Self {
        let mut ids = [0u32; MAX_MEMBERS];
        ids[0] = self_id;
        Membership {
            ids,
            len: 1,
            generation: 1,
        }
    }

    /// The ids up, ascending.
    pub fn ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }

    /// The generation: it grows by one at every [`Self::apply`] that
    /// changes the set.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether `id` is up.
    pub fn contains(&self, id: u32) -> bool {
        self.ids().binary_search(&id).is_ok()
    }

    /// How many nodes are up.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no node is up (never after [`Self::new`], unless self was
    /// taken down).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn set(&mut self, id: u32, up: bool) -> Result<bool, Full> {
        match (self.ids().binary_search(&id), up) {
            (Ok(_), true) | (Err(_), false) => Ok(false),
            (Ok(i), false) => {
                self.ids.copy_within(i + 1..self.len, i);
                self.len -= 1;
                Ok(true)
            }
            (Err(i), true) => {
                if self.len == MAX_MEMBERS {
                    return Err(Full);
                }
                self.ids.copy_within(i..self.len, i + 1);
                self.ids[i] = id;
                self.len += 1;
                Ok(true)
            }
        }
    }

    /// Applies `changes` in order, all or none: returns whether the set,
    /// and so the generation, moved (changes that cancel out move
    /// nothing); on [`Full`] nothing changed.
    pub fn apply(&mut self, changes: &[Change]) -> Result<bool, Full> {
        let mut next = *self;
        for c in changes {
            match *c {
                Change::Up(id) => next.set(id, true)?,
                Change::Down(id) => next.set(id, false)?,
            };
        }
        let moved = next.ids() != self.ids();
        if moved {
            next.generation = self.generation.wrapping_add(1);
            *self = next;
        }
        Ok(moved)
    }
}
