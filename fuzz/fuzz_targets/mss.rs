// SPDX-License-Identifier: GPL-2.0

//! Arbitrary bytes as a SYN-ACK's TCP header into the MSS clamp: no panic;
//! a refused header is untouched; an accepted one has its MSS at most the
//! limit and the checksum computed from scratch (full field) or its field
//! unchanged (pseudo-header field); a second clamp changes nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockgroup_logic::mss::{clamp, Clamp};
use sockgroup_logic::xlate::{pseudo_partial, tcp_checksum, CsumMode, Pseudo};

fn check_of(b: &[u8]) -> Option<[u8; 2]> {
    b.get(16..18)?.try_into().ok()
}

fuzz_target!(|data: &[u8]| {
    // Header: the limit, then bit 0 the field's kind, bit 1 the family.
    let Some((cfg, seg)) = data.split_first_chunk::<3>() else {
        return;
    };
    let max = u16::from_be_bytes([cfg[0], cfg[1]]);
    let mode = if cfg[2] & 1 == 0 {
        CsumMode::Full
    } else {
        CsumMode::PseudoOnly
    };
    let pseudo = if cfg[2] & 2 == 0 {
        Pseudo::V4([192, 0, 2, 1], [198, 51, 100, 7])
    } else {
        Pseudo::V6([0x20; 16], [0xfd; 16])
    };
    let mut b = seg.to_vec();
    let len = b.len() as u32;
    if let Some(c) = b.get_mut(16..18) {
        let v = match mode {
            CsumMode::Full => tcp_checksum(&pseudo, seg),
            CsumMode::PseudoOnly => pseudo_partial(&pseudo, len),
        };
        c.copy_from_slice(&v.to_be_bytes());
    }
    let before = b.clone();
    match clamp(&mut b, max, mode) {
        Err(_) => assert_eq!(b, before),
        Ok(r) => {
            if let Clamp::Lowered { from, to } = r {
                assert!(to == max && from > max);
            }
            match mode {
                CsumMode::Full => {
                    assert_eq!(check_of(&b), Some(tcp_checksum(&pseudo, &b).to_be_bytes()))
                }
                CsumMode::PseudoOnly => assert_eq!(check_of(&b), check_of(&before)),
            }
            let once = b.clone();
            assert!(!matches!(clamp(&mut b, max, mode), Ok(Clamp::Lowered { .. })));
            assert_eq!(b, once);
        }
    }
});
