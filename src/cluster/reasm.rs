// SPDX-License-Identifier: GPL-2.0

//! Reassembly of the first bytes of a TCP stream from segments that arrive
//! out of order, duplicated, overlapping or retransmitted.
//!
//! A [`Reasm`] is the bookkeeping for one caller-owned buffer: the stream's
//! first sequence number (the client's ISN + 1) and the ranges of the
//! buffer filled so far, at most [`MAX_RANGES`] of them (sorted, disjoint,
//! never adjacent: touching ranges merge). [`Reasm::add`] copies the part
//! of a segment that falls in the buffer and is not there yet, so where
//! segments overlap the bytes received first stay (what the client sent
//! first is what the parser read; a retransmission with other bytes does
//! not change a decision already made). A segment that would leave more
//! than [`MAX_RANGES`] separate ranges is refused whole
//! ([`Added::Fragmented`]) and changes nothing. Sequence numbers compare
//! in serial arithmetic (RFC 1982): a segment up to 2^31 - 1 bytes after
//! the base is ahead of it, any other is behind it (and its bytes before
//! the base are dropped). Pure: no allocation, no panic, O(len + ranges)
//! per segment.
//!
//! The caller passes the same buffer to every [`Reasm::add`] and reads
//! `buf[..contiguous()]`, the bytes from the base that are all present.

/// The most separate filled ranges (so at most as many holes).
pub const MAX_RANGES: usize = 16;

/// Sequence numbers at most this far after the base are ahead of it.
const WINDOW: usize = (1 << 31) - 1;

/// What [`Reasm::add`] did with a segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Added {
    /// This many bytes were new and placed (the segment may also have run
    /// past the buffer's end: that part is not kept).
    New(usize),
    /// Nothing new: no data, every byte already present, or all of it before
    /// the base.
    Duplicate,
    /// The segment starts at or past the buffer's end: nothing placed.
    Beyond,
    /// Placing it would leave more than [`MAX_RANGES`] ranges: nothing placed.
    Fragmented,
}

/// The reassembly state of one stream into one buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Reasm {
    /// The sequence number of the buffer's first byte.
    base: u32,
    /// Filled `[start, end)` offsets from `base`; the first `n` are used.
    ranges: [(u32, u32); MAX_RANGES],
    n: u8,
}

impl Reasm {
    /// Nothing received yet of a stream whose first byte has sequence
    /// number `base_seq` (the client's ISN + 1).
    pub fn new(base_seq: u32) -> Self {
        Reasm {
            base: base_seq,
            ranges: [(0, 0); MAX_RANGES],
            n: 0,
        }
    }

    /// The sequence number of the buffer's first byte.
    pub fn base(&self) -> u32 {
        self.base
    }

    fn used(&self) -> &[(u32, u32)] {
        &self.ranges[..usize::from(self.n).min(MAX_RANGES)]
    }

    /// Copies the part of `data` (at TCP sequence `seq`, wrapping arithmetic) that falls in
    /// [base, base + buf.len()) into `buf`; overlaps keep the first bytes received.
    pub fn add(&mut self, buf: &mut [u8], seq: u32, data: &[u8]) -> Added {
        let cap = buf.len().min(WINDOW);
        let off = seq.wrapping_sub(self.base) as usize;
        let (start, data) = if off <= WINDOW {
            (off, data)
        } else {
            // Behind the base by 2^32 - off: drop those bytes.
            let behind = seq.wrapping_sub(self.base).wrapping_neg() as usize;
            match data.get(behind..) {
                Some(rest) => (0, rest),
                None => return Added::Duplicate,
            }
        };
        if data.is_empty() {
            return Added::Duplicate;
        }
        if start >= cap {
            return Added::Beyond;
        }
        let end = start + data.len().min(cap - start);

        // The ranges that overlap or touch [start, end) merge with it.
        let used = self.used();
        let first = used
            .iter()
            .position(|&(_, e)| e as usize >= start)
            .unwrap_or(used.len());
        let last = first
            + used[first..]
                .iter()
                .take_while(|&&(s, _)| s as usize <= end)
                .count();
        let n = used.len() + 1 - (last - first);
        if n > MAX_RANGES {
            return Added::Fragmented;
        }

        // Copy the gaps between them; bytes already present stay.
        let mut placed = 0;
        let mut copy = |from: usize, to: usize| {
            if from < to {
                buf[from..to].copy_from_slice(&data[from - start..to - start]);
                placed += to - from;
            }
        };
        let mut at = start;
        for &(s, e) in &used[first..last] {
            copy(at, (s as usize).min(end));
            at = at.max(e as usize);
        }
        copy(at, end);
        if placed == 0 {
            return Added::Duplicate;
        }

        let merged = match (
            used.get(first),
            last.checked_sub(1).and_then(|l| used.get(l)),
        ) {
            (Some(&(s, _)), Some(&(_, e))) if last > first => {
                (s.min(start as u32), e.max(end as u32))
            }
            _ => (start as u32, end as u32),
        };
        let old = usize::from(self.n);
        // Replace ranges[first..last] by `merged`, shifting the rest.
        self.ranges.copy_within(last..old, first + 1);
        self.ranges[first] = merged;
        self.n = n as u8;
        Added::New(placed)
    }

    /// Bytes from the base that are all present.
    pub fn contiguous(&self) -> usize {
        match self.used().first() {
            Some(&(0, e)) => e as usize,
            _ => 0,
        }
    }

    /// Bytes present in all.
    pub fn filled(&self) -> usize {
        self.used().iter().map(|&(s, e)| (e - s) as usize).sum()
    }

    /// Separate filled ranges.
    pub fn ranges(&self) -> usize {
        self.used().len()
    }
}
