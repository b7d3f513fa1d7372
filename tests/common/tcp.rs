// SPDX-License-Identifier: GPL-2.0

//! TCP segments for the tests of the header rewrites (`xlate`, `mss`):
//! generated headers with options, and the checksum from scratch.

use super::fold;
use proptest::prelude::*;
use sockgroup_logic::xlate::{Offsets, Pseudo};

/// The TCP checksum from scratch, written apart from the library: the
/// pseudo-header's bytes (RFC 793, RFC 8200 section 8.1) and the segment
/// with its checksum field zeroed, summed as 16-bit words in a u64.
pub fn reference_checksum(pseudo: &Pseudo, seg: &[u8]) -> u16 {
    let mut bytes = Vec::new();
    match pseudo {
        Pseudo::V4(s, d) => {
            bytes.extend_from_slice(s);
            bytes.extend_from_slice(d);
            bytes.extend_from_slice(&[0, 6]);
            bytes.extend_from_slice(&(seg.len() as u16).to_be_bytes());
        }
        Pseudo::V6(s, d) => {
            bytes.extend_from_slice(s);
            bytes.extend_from_slice(d);
            bytes.extend_from_slice(&(seg.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, 6]);
        }
    }
    let mut s = seg.to_vec();
    s[16] = 0;
    s[17] = 0;
    bytes.extend_from_slice(&s);
    !fold(&bytes)
}

/// What a device does with a `CHECKSUM_PARTIAL` segment whose field holds
/// the pseudo-header sum: the complement of the sum over the segment.
pub fn finish_partial(seg: &[u8]) -> u16 {
    !fold(seg)
}

pub fn check_of(seg: &[u8]) -> u16 {
    u16::from_be_bytes([seg[16], seg[17]])
}

pub fn set_check(seg: &mut [u8], c: u16) {
    seg[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Sets the checksum field to the checksum from scratch.
pub fn fill_check(seg: &mut [u8], pseudo: &Pseudo) {
    let c = reference_checksum(pseudo, seg);
    set_check(seg, c);
}

pub fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// An option of a generated header.
#[derive(Clone, Debug)]
pub enum GenOpt {
    Nop,
    Mss(u16),
    Ws(u8),
    SackPerm,
    Ts(u32, u32),
    Sack(Vec<(u32, u32)>),
    Other(u8, Vec<u8>),
}

impl GenOpt {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            GenOpt::Nop => vec![1],
            GenOpt::Mss(m) => [&[2, 4][..], &m.to_be_bytes()].concat(),
            GenOpt::Ws(s) => vec![3, 3, *s],
            GenOpt::SackPerm => vec![4, 2],
            GenOpt::Ts(v, e) => [&[8, 10][..], &v.to_be_bytes(), &e.to_be_bytes()].concat(),
            GenOpt::Sack(blocks) => {
                let mut b = vec![5, 2 + 8 * blocks.len() as u8];
                for (l, r) in blocks {
                    b.extend_from_slice(&l.to_be_bytes());
                    b.extend_from_slice(&r.to_be_bytes());
                }
                b
            }
            GenOpt::Other(k, v) => [&[*k, 2 + v.len() as u8][..], v].concat(),
        }
    }
}

pub fn opt_strategy() -> impl Strategy<Value = GenOpt> {
    prop_oneof![
        3 => Just(GenOpt::Nop),
        1 => any::<u16>().prop_map(GenOpt::Mss),
        1 => (0u8..15).prop_map(GenOpt::Ws),
        1 => Just(GenOpt::SackPerm),
        3 => (seq_strategy(), seq_strategy()).prop_map(|(v, e)| GenOpt::Ts(v, e)),
        3 => prop::collection::vec((seq_strategy(), seq_strategy()), 1..=4).prop_map(GenOpt::Sack),
        1 => (9u8..=254, prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(k, v)| GenOpt::Other(k, v)),
    ]
}

/// Numbers near the wrap and anywhere.
pub fn seq_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        (u32::MAX - 100)..=u32::MAX,
        0u32..100,
        ((1u32 << 31) - 50)..((1u32 << 31) + 50),
    ]
}

pub fn offsets_strategy() -> impl Strategy<Value = Offsets> {
    (seq_strategy(), seq_strategy()).prop_map(|(seq, ts)| Offsets { seq, ts })
}

pub fn pseudo_strategy() -> impl Strategy<Value = Pseudo> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, d)| Pseudo::V4(s, d)),
        (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(s, d)| Pseudo::V6(s, d)),
    ]
}

/// A generated segment: header (with its options, padded with EOL and
/// zeros to a multiple of 4, at most 40 bytes) and payload.
#[derive(Clone, Debug)]
pub struct Seg {
    pub bytes: Vec<u8>,
    pub opts: Vec<GenOpt>,
}

pub fn seg_strategy() -> impl Strategy<Value = Seg> {
    (
        any::<[u8; 12]>(),
        any::<u8>(),
        any::<[u8; 4]>(),
        prop::collection::vec(opt_strategy(), 0..8),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..120),
    )
        .prop_map(|(head, flags, tail, mut opts, eol, payload)| {
            let mut o: Vec<u8>;
            loop {
                o = opts.iter().flat_map(GenOpt::bytes).collect();
                if o.len() <= 40 {
                    break;
                }
                opts.pop();
            }
            if eol && o.len() < 40 {
                o.push(0);
            }
            while !o.len().is_multiple_of(4) {
                o.push(0);
            }
            let doff = (20 + o.len()) / 4;
            let mut b = head.to_vec();
            b.push((doff as u8) << 4);
            b.push(flags);
            b.extend_from_slice(&tail[..2]); // window
            b.extend_from_slice(&[0, 0]); // checksum
            b.extend_from_slice(&tail[2..]); // urgent pointer
            b.extend_from_slice(&o);
            b.extend_from_slice(&payload);
            Seg { bytes: b, opts }
        })
}

/// A segment with the option bytes `opts` as they come (NOPs after them to
/// a multiple of 4), the TCP flags `flags`, then `payload`; `doff_err` 1
/// or 2 makes the data offset lie: past the bytes, or under 5.
pub fn raw_segment(opts: &[u8], flags: u8, doff_err: u8, payload: &[u8]) -> Vec<u8> {
    let mut o = opts.to_vec();
    while !o.len().is_multiple_of(4) {
        o.push(1);
    }
    let mut b = vec![0u8; 20];
    b[13] = flags;
    b[12] = (((20 + o.len()) / 4) as u8) << 4;
    b.extend_from_slice(&o);
    b.extend_from_slice(payload);
    match doff_err {
        1 => b[12] = 15 << 4,
        2 => b[12] = 4 << 4,
        _ => {}
    }
    b
}

/// Up to 40 option bytes, each any byte or (`weight` in 4 + `weight`) one
/// of `likely` (kinds and lengths that make the walker work).
pub fn raw_options(likely: &[u8], weight: u32) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            weight => prop::sample::select(likely.to_vec()),
        ],
        0..=40,
    )
}

/// Writes 64 seeds for a fuzz target into `$SOCKGROUP_FUZZ_CORPUS` (README,
/// "Fuzzing"), if set: `seed(i, segment)` of generated segments.
pub fn write_seeds(seed: impl Fn(u32, &Seg) -> Vec<u8>) {
    use proptest::strategy::ValueTree;
    let Some(dir) = std::env::var_os("SOCKGROUP_FUZZ_CORPUS") else {
        return;
    };
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for i in 0..64u32 {
        let seg = seg_strategy().new_tree(&mut runner).unwrap().current();
        std::fs::write(
            std::path::Path::new(&dir).join(format!("seed-{i:02}")),
            seed(i, &seg),
        )
        .unwrap();
    }
}
