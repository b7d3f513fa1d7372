// SPDX-License-Identifier: GPL-2.0

//! Arbitrary bytes as a TCP header into the option walker and the
//! translation: no panic; the walker's options lie in the header, in
//! order; a refused header is untouched; an accepted one has the checksum
//! computed from scratch (full field) or its field unchanged (pseudo-header
//! field), and the inverse offsets give the original bytes back.

#![no_main]

#[path = "tcp_common.rs"]
mod tcp_common;

use libfuzzer_sys::fuzz_target;
use sockgroup_logic::xlate::{header_len, translate, Dir, Offsets, Options, TCP_OPTS_MAX};
use tcp_common::{assert_check, mode_and_pseudo, with_check};

fuzz_target!(|data: &[u8]| {
    // Header: bit 0 the direction, bit 1 the field's kind, bit 2 the
    // family; then the sequence and timestamp offsets.
    let Some((cfg, seg)) = data.split_first_chunk::<9>() else {
        return;
    };
    let dir = if cfg[0] & 1 == 0 {
        Dir::ToBackend
    } else {
        Dir::ToClient
    };
    let (mode, pseudo) = mode_and_pseudo(cfg[0] & 2 != 0, cfg[0] & 4 != 0);
    let off = Offsets {
        seq: u32::from_be_bytes([cfg[1], cfg[2], cfg[3], cfg[4]]),
        ts: u32::from_be_bytes([cfg[5], cfg[6], cfg[7], cfg[8]]),
    };

    if let Ok(opts) = Options::new(seg) {
        let hl = header_len(seg).unwrap();
        let (mut n, mut last) = (0, 19);
        for o in opts.flatten() {
            assert!(o.len >= 2 && o.at > last && o.at + o.len <= hl);
            last = o.at;
            n += 1;
        }
        assert!(n <= TCP_OPTS_MAX / 2);
    }

    let mut b = with_check(seg, &pseudo, mode);
    let before = b.clone();
    match translate(&mut b, dir, off, mode) {
        Err(_) => assert_eq!(b, before),
        Ok(_) => {
            assert_check(&b, &before, &pseudo, mode);
            translate(&mut b, dir, off.inverse(), mode).unwrap();
            assert_eq!(b, before);
        }
    }
});
