// SPDX-License-Identifier: GPL-2.0

//! What the fuzz targets of the TCP header rewrites (`xlate`, `mss`) share.

use sockgroup_logic::xlate::{pseudo_partial, tcp_checksum, CsumMode, Pseudo};

/// The checksum field of a TCP header.
pub fn check_of(b: &[u8]) -> Option<[u8; 2]> {
    b.get(16..18)?.try_into().ok()
}

/// What the checksum field holds (`partial`: the pseudo-header sum only)
/// and the pseudo-header (`v6`: IPv6) of a fuzzed segment.
pub fn mode_and_pseudo(partial: bool, v6: bool) -> (CsumMode, Pseudo) {
    let mode = if partial {
        CsumMode::PseudoOnly
    } else {
        CsumMode::Full
    };
    let pseudo = if v6 {
        Pseudo::V6([0x20; 16], [0xfd; 16])
    } else {
        Pseudo::V4([192, 0, 2, 1], [198, 51, 100, 7])
    };
    (mode, pseudo)
}

/// `seg` with its checksum field (if it has one) set to what `mode` says
/// the field holds under `pseudo`.
pub fn with_check(seg: &[u8], pseudo: &Pseudo, mode: CsumMode) -> Vec<u8> {
    let mut b = seg.to_vec();
    let len = b.len() as u32;
    if let Some(c) = b.get_mut(16..18) {
        let v = match mode {
            CsumMode::Full => tcp_checksum(pseudo, seg),
            CsumMode::PseudoOnly => pseudo_partial(pseudo, len),
        };
        c.copy_from_slice(&v.to_be_bytes());
    }
    b
}

/// Asserts that the checksum field of `b` (rewritten from `before`) is
/// what `mode` wants: the checksum from scratch, or unchanged.
pub fn assert_check(b: &[u8], before: &[u8], pseudo: &Pseudo, mode: CsumMode) {
    match mode {
        CsumMode::Full => assert_eq!(check_of(b), Some(tcp_checksum(pseudo, b).to_be_bytes())),
        CsumMode::PseudoOnly => assert_eq!(check_of(b), check_of(before)),
    }
}
