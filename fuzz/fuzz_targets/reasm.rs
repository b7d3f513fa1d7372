// SPDX-License-Identifier: GPL-2.0

//! Arbitrary segments into the reassembly: no panic, no write outside the
//! buffer, bytes once contiguous never change, the count of placed bytes
//! adds up, and the range list stays within its capacity. (The exact
//! outcome of each segment is checked against a model in
//! tests/reasm_props.rs.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockgroup_logic::reasm::{Added, Reasm, MAX_RANGES};

fuzz_target!(|data: &[u8]| {
    // Header: buffer length / 4 (u8), base sequence number (u32).
    let Some((head, mut ops)) = data.split_first_chunk::<5>() else {
        return;
    };
    let len = usize::from(head[0]) * 4;
    let base = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let mut buf = vec![0u8; len];
    let mut r = Reasm::new(base);
    let mut placed = 0;
    // Each segment: offset from the base (i16), length (u8), its bytes.
    while let Some((op, rest)) = ops.split_first_chunk::<3>() {
        let off = i16::from_be_bytes([op[0], op[1]]);
        let n = usize::from(op[2]).min(rest.len());
        let (seg, rest) = rest.split_at(n);
        ops = rest;
        let before = r.contiguous();
        let prefix = buf[..before].to_vec();
        match r.add(&mut buf, base.wrapping_add(off as u32), seg) {
            Added::New(k) => {
                assert!(k > 0 && k <= seg.len());
                placed += k;
            }
            Added::Beyond => assert!(off.max(0) as usize >= len),
            Added::Duplicate | Added::Fragmented => {}
        }
        assert!(r.contiguous() >= before && r.contiguous() <= len);
        assert_eq!(&buf[..before], &prefix[..]);
        assert_eq!(r.filled(), placed);
        assert!(r.ranges() <= MAX_RANGES);
    }
});
