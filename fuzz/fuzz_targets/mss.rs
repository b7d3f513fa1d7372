// SPDX-License-Identifier: GPL-2.0

//! Arbitrary bytes as a SYN-ACK's TCP header into the MSS clamp: no panic;
//! a refused header is untouched; an accepted one has its MSS at most the
//! limit and the checksum computed from scratch (full field) or its field
//! unchanged (pseudo-header field); a second clamp changes nothing.

#![no_main]

#[path = "tcp_common.rs"]
mod tcp_common;

use libfuzzer_sys::fuzz_target;
use sockgroup_logic::mss::{clamp, Clamp};
use tcp_common::{assert_check, mode_and_pseudo, with_check};

fuzz_target!(|data: &[u8]| {
    // Header: the limit, then bit 0 the field's kind, bit 1 the family.
    let Some((cfg, seg)) = data.split_first_chunk::<3>() else {
        return;
    };
    let max = u16::from_be_bytes([cfg[0], cfg[1]]);
    let (mode, pseudo) = mode_and_pseudo(cfg[2] & 1 != 0, cfg[2] & 2 != 0);
    let mut b = with_check(seg, &pseudo, mode);
    let before = b.clone();
    match clamp(&mut b, max, mode) {
        Err(_) => assert_eq!(b, before),
        Ok(r) => {
            if let Clamp::Lowered { from, to } = r {
                assert!(to == max && from > max);
            }
            assert_check(&b, &before, &pseudo, mode);
            let once = b.clone();
            assert!(!matches!(
                clamp(&mut b, max, mode),
                Ok(Clamp::Lowered { .. })
            ));
            assert_eq!(b, once);
        }
    }
});
