// SPDX-License-Identifier: GPL-2.0

//! Arbitrary datagrams into the encapsulation header's decoder and one
//! replay window: no panic; a refused datagram leaves the window as it was,
//! an accepted number is refused the second time; and whatever parses
//! (structure and inner 4-tuple) seals again under the key into a datagram
//! that opens to the same fields (or is refused for its key id alone), with
//! the same header bytes up to the MAC. The inner packet of what parses,
//! and any chunk as an IP packet, go to `is_bare_ack` (a bare ACK has a TCP
//! header and no byte after it, and is no SYN), `tcp_kind` (so has a bare
//! FIN, with FIN and ACK set) and `is_syn`.

#![no_main]

use hmac::{Hmac, Mac as _};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use sockgroup_logic::encap::{
    is_bare_ack, is_syn, open, parse, tcp_kind, transport_of, EncapError, ReplayWindow, TcpKind,
    KEY_ID, MAC_AT,
};
use sockgroup_logic::frame::{Mac, MacError, TAG_LEN};

/// The key of tests/encap_props.rs (its `fuzz_corpus` writes the seeds).
const KEY: &[u8] = b"a session key of 32 bytes, test!";

struct HmacSha256;

impl Mac for HmacSha256 {
    fn tag(&self, parts: &[&[u8]]) -> Result<[u8; TAG_LEN], MacError> {
        let mut m = <Hmac<Sha256>>::new_from_slice(KEY).map_err(|_| MacError)?;
        for p in parts {
            m.update(p);
        }
        Ok(m.finalize().into_bytes().into())
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte: into how many datagrams of equal length the rest is
    // cut (1 to 4); they share one window.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 4) + 1;
    let chunk = rest.len().div_ceil(n).max(1);
    let mut w = ReplayWindow::<2>::new();
    for d in rest.chunks(chunk) {
        for pkt in [Some(d), parse(d).ok().map(|p| p.inner)]
            .into_iter()
            .flatten()
        {
            if is_bare_ack(pkt) {
                let (proto, at) = transport_of(pkt).expect("a bare ACK is a whole packet");
                assert_eq!(proto, 6);
                assert_eq!(pkt.len() - at, usize::from(pkt[at + 12] >> 4) * 4);
                assert!(!is_syn(pkt));
            }
            if tcp_kind(pkt) == TcpKind::BareFin {
                let (proto, at) = transport_of(pkt).expect("a bare FIN is a whole packet");
                assert_eq!((proto, pkt[at + 13] & 0x17), (6, 0x11));
                assert_eq!(pkt.len() - at, usize::from(pkt[at + 12] >> 4) * 4);
            }
            if is_syn(pkt) {
                let (proto, at) = transport_of(pkt).expect("a SYN is a whole packet");
                assert_eq!((proto, pkt[at + 13] & 0x16), (6, 0x02));
            }
        }
        let parsed = parse(d);
        let peer = parsed.map(|p| p.header.sender).unwrap_or(0);
        let before = w;
        match open(d, peer, &HmacSha256, &mut w) {
            Ok(p) => {
                assert!(before.check(p.header.seq).is_ok());
                assert_eq!(w.check(p.header.seq), Err(EncapError::Replay));
            }
            Err(_) => assert_eq!(w, before),
        }
        if let Ok(p) = parsed {
            let hdr = p
                .header
                .seal(p.inner, &HmacSha256)
                .expect("what parses seals");
            assert_eq!(hdr[..MAC_AT], d[..MAC_AT]);
            let again = [&hdr[..], p.inner].concat();
            let mut fresh = ReplayWindow::<2>::new();
            let q = open(&again, peer, &HmacSha256, &mut fresh);
            if p.header.key_id != KEY_ID {
                assert_eq!(q.err(), Some(EncapError::BadKeyId));
                continue;
            }
            let q = q.expect("what seals opens");
            assert_eq!((q.header, q.inner, q.kind), (p.header, p.inner, p.kind));
        }
    }
});
