// SPDX-License-Identifier: GPL-2.0

//! Arbitrary bytes as a TCP header into the option walker and the
//! translation: no panic; the walker's options lie in the header, in
//! order; a refused header is untouched; an accepted one has the checksum
//! computed from scratch (full field) or its field unchanged (pseudo-header
//! field), and the inverse offsets give the original bytes back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockgroup_logic::xlate::{
    header_len, pseudo_partial, tcp_checksum, translate, CsumMode, Dir, Offsets, Options, Pseudo,
    TCP_OPTS_MAX,
};

fn check_of(b: &[u8]) -> Option<[u8; 2]> {
    b.get(16..18)?.try_into().ok()
}

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
    let mode = if cfg[0] & 2 == 0 {
        CsumMode::Full
    } else {
        CsumMode::PseudoOnly
    };
    let pseudo = if cfg[0] & 4 == 0 {
        Pseudo::V4([192, 0, 2, 1], [198, 51, 100, 7])
    } else {
        Pseudo::V6([0x20; 16], [0xfd; 16])
    };
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
    match translate(&mut b, dir, off, mode) {
        Err(_) => assert_eq!(b, before),
        Ok(_) => {
            match mode {
                CsumMode::Full => {
                    assert_eq!(check_of(&b), Some(tcp_checksum(&pseudo, &b).to_be_bytes()))
                }
                CsumMode::PseudoOnly => assert_eq!(check_of(&b), check_of(&before)),
            }
            translate(&mut b, dir, off.inverse(), mode).unwrap();
            assert_eq!(b, before);
        }
    }
});
