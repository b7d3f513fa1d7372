// SPDX-License-Identifier: GPL-2.0

//! Property tests of the segment reassembly (src/cluster/reasm.rs): against
//! a byte-per-byte model, a shuffled stream with duplicates and overlaps
//! comes out whole, sequence numbers wrap, and the request parser reads
//! the reassembled prefix.

use proptest::prelude::*;
use sockgroup_logic::reasm::*;
use sockgroup_logic::request::{parse, Parse};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Segments refused as Fragmented over all cases of `matches_the_model`.
static FRAGMENTED: AtomicUsize = AtomicUsize::new(0);

/// Untouched buffer bytes.
const FILL: u8 = 0xee;

/// The model: each byte of the buffer, present or not.
struct Model(Vec<Option<u8>>);

impl Model {
    fn runs(v: &[Option<u8>]) -> usize {
        (0..v.len())
            .filter(|&i| v[i].is_some() && (i == 0 || v[i - 1].is_none()))
            .count()
    }

    /// What `add` must do with `data` at offset `off` from the base.
    fn add(&mut self, off: i64, data: &[u8]) -> Added {
        let (start, data) = if off < 0 {
            match data.get(off.unsigned_abs() as usize..) {
                Some(d) => (0, d),
                None => return Added::Duplicate,
            }
        } else {
            (off as usize, data)
        };
        if data.is_empty() {
            return Added::Duplicate;
        }
        if start >= self.0.len() {
            return Added::Beyond;
        }
        let mut next = self.0.clone();
        let mut placed = 0;
        for (i, &b) in data.iter().enumerate() {
            match next.get_mut(start + i) {
                Some(slot @ None) => {
                    *slot = Some(b);
                    placed += 1;
                }
                Some(Some(_)) => {}
                None => break,
            }
        }
        if Self::runs(&next) > MAX_RANGES {
            return Added::Fragmented;
        }
        self.0 = next;
        if placed == 0 {
            Added::Duplicate
        } else {
            Added::New(placed)
        }
    }

    fn contiguous(&self) -> usize {
        self.0.iter().take_while(|b| b.is_some()).count()
    }
}

fn base_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (u32::MAX - 3000)..=u32::MAX, Just(0u32)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn matches_the_model(
        base in base_strategy(),
        len in 0usize..300,
        segs in prop::collection::vec((-60i64..360, prop::collection::vec(any::<u8>(), 0..70)), 0..80),
        // Cases of short segments only, so that the range list fills up.
        short in any::<bool>(),
    ) {
        let mut buf = vec![FILL; len];
        let mut r = Reasm::new(base);
        let mut m = Model(vec![None; len]);
        let mut fragmented = 0;
        for (off, mut data) in segs {
            if short {
                data.truncate(3);
            }
            let seq = base.wrapping_add(off as u32);
            let want = m.add(off, &data);
            prop_assert_eq!(r.add(&mut buf, seq, &data), want);
            fragmented += usize::from(want == Added::Fragmented);
            for (i, (&b, &mb)) in buf.iter().zip(&m.0).enumerate() {
                prop_assert_eq!(b, mb.unwrap_or(FILL), "byte {}", i);
            }
            prop_assert_eq!(r.contiguous(), m.contiguous());
            prop_assert_eq!(r.filled(), m.0.iter().flatten().count());
            prop_assert_eq!(r.ranges(), Model::runs(&m.0));
            prop_assert!(r.ranges() <= MAX_RANGES);
        }
        FRAGMENTED.fetch_add(fragmented, Ordering::Relaxed);
    }

    #[test]
    fn shuffled_duplicated_overlapping_segments_give_the_stream(
        base in base_strategy(),
        stream in prop::collection::vec(any::<u8>(), 1..2000),
        short in 0usize..100,
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        extra in prop::collection::vec((any::<prop::sample::Index>(), 1usize..300), 0..20),
        keys in prop::collection::vec(any::<u32>(), 100),
    ) {
        // The buffer may be shorter than the stream: the rest is beyond.
        let len = stream.len().saturating_sub(short).max(1);
        // Segments that tile the stream, then duplicates and overlaps.
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(stream.len())).collect();
        bounds.extend([0, stream.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        for (at, n) in &extra {
            let s = at.index(stream.len());
            segs.push((s, (s + n).min(stream.len())));
        }
        let mut order: Vec<usize> = (0..segs.len()).collect();
        order.sort_by_key(|&i| keys[i % keys.len()].wrapping_mul(i as u32 + 1));

        let mut buf = vec![FILL; len];
        let mut r = Reasm::new(base);
        let mut last = 0;
        let mut placed = 0;
        // A segment refused as Fragmented comes again later, as a
        // retransmission would; one that touches a filled range always fits.
        let mut queue: std::collections::VecDeque<usize> = order.into();
        let mut stalled = 0;
        while let Some(i) = queue.pop_front() {
            let (s, e) = segs[i];
            let seq = base.wrapping_add(s as u32);
            match r.add(&mut buf, seq, &stream[s..e]) {
                Added::New(n) => {
                    placed += n;
                    stalled = 0;
                }
                Added::Fragmented => {
                    queue.push_back(i);
                    stalled += 1;
                    prop_assert!(stalled <= queue.len(), "no segment fits");
                }
                Added::Beyond => prop_assert!(s >= len),
                Added::Duplicate => {}
            }
            let c = r.contiguous();
            prop_assert!(c >= last, "contiguous went back");
            prop_assert_eq!(&buf[..c], &stream[..c]);
            last = c;
        }
        prop_assert_eq!(r.contiguous(), len);
        prop_assert_eq!(placed, len);
        prop_assert_eq!(&buf[..], &stream[..len]);
        prop_assert_eq!(r.ranges(), 1);
    }

    #[test]
    fn the_parser_reads_the_reassembled_prefix(
        base in base_strategy(),
        path in "/[a-z0-9/]{0,60}",
        body in prop::collection::vec(any::<u8>(), 0..200),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        keys in prop::collection::vec(any::<u32>(), 30),
    ) {
        let head = format!("POST {path} HTTP/1.1\r\nHost: a.example\r\nContent-Length: {}\r\n\r\n", body.len());
        let mut stream = head.clone().into_bytes();
        stream.extend_from_slice(&body);
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(stream.len())).collect();
        bounds.extend([0, stream.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        segs.sort_by_key(|&(s, _)| keys[s % keys.len()]);
        let mut buf = vec![0; stream.len()];
        let mut r = Reasm::new(base);
        for (s, e) in segs {
            prop_assert_eq!(r.add(&mut buf, base.wrapping_add(s as u32), &stream[s..e]), Added::New(e - s));
            let c = r.contiguous();
            match parse(&buf[..c]) {
                Parse::Complete(req) => {
                    prop_assert!(c >= head.len());
                    prop_assert_eq!(req.header_len(), head.len());
                    prop_assert_eq!(req.path(), Some(path.as_bytes()));
                }
                Parse::Incomplete => prop_assert!(c < head.len()),
                Parse::Malformed => prop_assert!(false, "malformed at {}", c),
            }
        }
    }
}

#[test]
fn sequence_numbers_wrap() {
    let base = u32::MAX - 5;
    let mut buf = [0u8; 16];
    let mut r = Reasm::new(base);
    // 10 bytes from the base across 2^32, then 6 more after the wrap.
    assert_eq!(r.add(&mut buf, 4, b"klmnop"), Added::New(6));
    assert_eq!(r.contiguous(), 0);
    assert_eq!(r.add(&mut buf, base, b"abcdefghij"), Added::New(10));
    assert_eq!(r.contiguous(), 16);
    assert_eq!(&buf, b"abcdefghijklmnop");
    // Past the end, still ahead: beyond; 2^31 or more ahead is behind.
    let mut r = Reasm::new(base);
    assert_eq!(r.add(&mut buf, base.wrapping_add(16), b"x"), Added::Beyond);
    assert_eq!(
        r.add(&mut buf, base.wrapping_add(1 << 31), b"x"),
        Added::Duplicate
    );
    assert_eq!(
        r.add(&mut buf, base.wrapping_add((1 << 31) - 1), b"x"),
        Added::Beyond
    );
    // A segment that starts 3 bytes before the base (the SYN's sequence
    // number and before): its bytes from the base are placed.
    assert_eq!(
        r.add(&mut buf, base.wrapping_sub(3), b"123ABCD"),
        Added::New(4)
    );
    assert_eq!((r.contiguous(), &buf[..4]), (4, &b"ABCD"[..]));
    assert_eq!(
        r.add(&mut buf, base.wrapping_sub(3), b"123"),
        Added::Duplicate
    );
    assert_eq!(r.add(&mut buf, base, b""), Added::Duplicate);
}

#[test]
fn too_many_holes_is_fragmented_and_changes_nothing() {
    let mut buf = [0u8; 64];
    let mut r = Reasm::new(1000);
    for i in 0..MAX_RANGES as u32 {
        assert_eq!(r.add(&mut buf, 1001 + 2 * i, b"x"), Added::New(1));
    }
    assert_eq!(r.ranges(), MAX_RANGES);
    let before = (r, buf);
    assert_eq!(r.add(&mut buf, 1001 + 40, b"y"), Added::Fragmented);
    assert_eq!((r, buf), before);
    // Filling a hole merges two ranges: that fits.
    assert_eq!(r.add(&mut buf, 1002, b"z"), Added::New(1));
    assert_eq!(r.ranges(), MAX_RANGES - 1);
    assert_eq!(r.add(&mut buf, 1001 + 40, b"y"), Added::New(1));
    // The first bytes received stay.
    assert_eq!(r.add(&mut buf, 1000, b"abc"), Added::New(1));
    assert_eq!(&buf[..3], b"axz");
    assert_eq!(r.contiguous(), 4);
}

#[test]
fn the_model_test_reaches_the_capacity() {
    // Run on its own, the property finds Fragmented cases (or this test
    // could pass without checking them).
    matches_the_model();
    assert!(FRAGMENTED.load(Ordering::Relaxed) > 0);
}
