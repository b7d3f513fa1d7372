// SPDX-License-Identifier: GPL-2.0

//! STAND-IN of H-parser's reassembly (contract item 1 of issue 11's part
//! 2): the same API, so that the hold builds and runs before the real one
//! lands; the lead takes H-parser's file at the merge.

/// At most this many separate filled ranges.
const MAX_RANGES: usize = 16;

/// Reassembles a byte stream from TCP segments into a caller's buffer.
pub struct Reasm {
    base: u32,
    /// Filled ranges `[start, end)` (offsets from `base`), sorted, disjoint, not adjacent.
    ranges: [(usize, usize); MAX_RANGES],
    n: usize,
}

/// What `add` did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Added {
    /// New bytes placed.
    New(usize),
    /// Nothing new.
    Duplicate,
    /// Entirely past the buffer.
    Beyond,
    /// Too many holes.
    Fragmented,
}

impl Reasm {
    /// Empty, the stream starting at sequence `base_seq`.
    pub fn new(base_seq: u32) -> Self {
        Self {
            base: base_seq,
            ranges: [(0, 0); MAX_RANGES],
            n: 0,
        }
    }

    /// Places the part of `data` (at sequence `seq`) that falls in the buffer;
    /// overlaps keep the bytes received first.
    pub fn add(&mut self, buf: &mut [u8], seq: u32, data: &[u8]) -> Added {
        let off = seq.wrapping_sub(self.base) as i32 as i64;
        let (mut start, mut data) = (off, data);
        if start < 0 {
            let skip = (-start) as usize;
            if skip >= data.len() {
                return Added::Duplicate;
            }
            data = &data[skip..];
            start = 0;
        }
        let start = start as usize;
        if start >= buf.len() {
            return if data.is_empty() {
                Added::Duplicate
            } else {
                Added::Beyond
            };
        }
        let end = (start + data.len()).min(buf.len());
        if end <= start {
            return Added::Duplicate;
        }
        // The gaps of [start, end) not yet filled.
        let mut new = 0;
        let mut pos = start;
        let mut gaps = [(0usize, 0usize); MAX_RANGES + 1];
        let mut ng = 0;
        for &(a, b) in &self.ranges[..self.n] {
            if b <= pos {
                continue;
            }
            if a >= end {
                break;
            }
            if a > pos {
                gaps[ng] = (pos, a);
                ng += 1;
            }
            pos = pos.max(b);
        }
        if pos < end {
            gaps[ng] = (pos, end);
            ng += 1;
        }
        if ng == 0 {
            return Added::Duplicate;
        }
        // The new range list: merge [start, end) in.
        let mut out = [(0usize, 0usize); MAX_RANGES + 1];
        let mut k = 0;
        let (mut ms, mut me) = (start, end);
        let mut placed = false;
        for &(a, b) in &self.ranges[..self.n] {
            if b < ms {
                out[k] = (a, b);
                k += 1;
            } else if a > me {
                if !placed {
                    out[k] = (ms, me);
                    k += 1;
                    placed = true;
                }
                out[k] = (a, b);
                k += 1;
            } else {
                ms = ms.min(a);
                me = me.max(b);
            }
        }
        if !placed {
            out[k] = (ms, me);
            k += 1;
        }
        if k > MAX_RANGES {
            return Added::Fragmented;
        }
        for &(a, b) in &gaps[..ng] {
            buf[a..b].copy_from_slice(&data[a - start..b - start]);
            new += b - a;
        }
        self.ranges[..k].copy_from_slice(&out[..k]);
        self.n = k;
        Added::New(new)
    }

    /// Bytes from the base that are all present.
    pub fn contiguous(&self) -> usize {
        match self.ranges[..self.n].first() {
            Some(&(0, b)) => b,
            _ => 0,
        }
    }
}
