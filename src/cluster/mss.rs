// SPDX-License-Identifier: GPL-2.0

//! The MSS clamp of a front-end's SYN-ACKs (issue 12): a connection handed
//! off to a peer has the client's packets forwarded inside IPv4/UDP and the
//! encapsulation header ([`OVERHEAD_V4`] bytes more than the client sent),
//! so the MSS the front-end advertises to the client must leave room for
//! them: [`forwarded_mss`] is the most a client may be given, [`clamp`]
//! lowers the MSS option of a SYN-ACK to it (never raises it).
//!
//! The option is found by `xlate`'s bounded walker ([`Options`]); a
//! malformed option list, or an MSS option that is not 4 bytes, refuses
//! the header before any byte changes. The checksum is updated
//! incrementally (RFC 1624) as [`CsumMode`] says: a full checksum field is
//! updated for the changed word (summed byte-swapped at an odd offset), a
//! `CHECKSUM_PARTIAL` field (the pseudo-header sum only, as locally built
//! SYN-ACKs carry: `tcp_make_synack`) is left as it is, since the device
//! or `skb_checksum_help` sums the header later and the length is the same.
//! Pure: no allocation, no panic on any input, no `unsafe`.

use super::encap::OVERHEAD_V4;
use super::segment::{IPV4_HDR_LEN, IPV6_HDR_LEN, MIN_MSS};
use super::xlate::{
    csum_replace_at, CsumMode, Options, XlateError, OPT_MSS, TCP_HDR_MIN, TCP_OPTS_MAX,
};

/// Bytes of an MSS option.
pub const OPT_MSS_LEN: usize = 4;

/// Where the checksum field is in a TCP header.
const CHECK_AT: usize = 16;

/// What [`clamp`] found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Clamp {
    /// The option said `from`; it now says `to` (lower).
    Lowered {
        /// The MSS before.
        from: u16,
        /// The MSS written.
        to: u16,
    },
    /// The option's MSS was at most the limit: nothing changed.
    Within(u16),
    /// No MSS option: nothing changed.
    NoOption,
}

/// The largest MSS a client of a forwarded connection may be given, for a
/// path MTU of `mtu` and an inner packet (the client's) of IPv6 (`inner_v6`)
/// or IPv4: the MTU less the outer IPv4 and UDP headers and the
/// encapsulation header ([`OVERHEAD_V4`]), the inner IP header and the TCP
/// header without options (the MSS counts the options in, RFC 6691). Never
/// under [`MIN_MSS`] (TCP's own floor, `TCP_MIN_MSS`): a path that small
/// fragments the outer packets rather than the MSS going lower.
pub fn forwarded_mss(mtu: u32, inner_v6: bool) -> u16 {
    let ip = if inner_v6 { IPV6_HDR_LEN } else { IPV4_HDR_LEN };
    let over = (OVERHEAD_V4 + ip + TCP_HDR_MIN) as u32;
    let mss = mtu.saturating_sub(over).max(u32::from(MIN_MSS));
    u16::try_from(mss).unwrap_or(u16::MAX)
}

/// Lowers the MSS option of the TCP header at the start of `tcp` (its
/// payload may follow, not read) to at most `max`, and updates its checksum
/// field as `mode` says. A malformed header, option list or MSS option is
/// refused before any byte changes. A header with several MSS options
/// (TCP takes the last) has each lowered; the result tells of the first.
pub fn clamp(tcp: &mut [u8], max: u16, mode: CsumMode) -> Result<Clamp, XlateError> {
    for o in Options::new(tcp)? {
        let o = o?;
        if o.kind == OPT_MSS && o.len != OPT_MSS_LEN {
            return Err(XlateError::BadOptionLength(OPT_MSS));
        }
    }
    let mut first = None;
    // At most 20 options in 40 bytes; each MSS value is 2 bytes within the
    // header (the walker checked it).
    let mut sites = [0usize; TCP_OPTS_MAX / OPT_MSS_LEN];
    let mut n = 0;
    for o in Options::new(tcp)?.flatten() {
        if o.kind == OPT_MSS {
            if let Some(s) = sites.get_mut(n) {
                *s = o.value_at();
                n += 1;
            }
        }
    }
    for &at in sites.iter().take(n) {
        let old = match tcp.get(at..at.saturating_add(2)).map(<[u8; 2]>::try_from) {
            Some(Ok(b)) => b,
            _ => continue,
        };
        let from = u16::from_be_bytes(old);
        let step = if from <= max {
            Clamp::Within(from)
        } else {
            lower(tcp, at, old, max.to_be_bytes(), mode);
            Clamp::Lowered { from, to: max }
        };
        first.get_or_insert(step);
    }
    Ok(first.unwrap_or(Clamp::NoOption))
}

/// Writes `new` over the 2 bytes `old` at `at` of `tcp` and updates a full
/// checksum field for it.
fn lower(tcp: &mut [u8], at: usize, old: [u8; 2], new: [u8; 2], mode: CsumMode) {
    if mode == CsumMode::Full {
        if let Some(f) = tcp.get_mut(CHECK_AT..CHECK_AT + 2) {
            if let Ok(c) = <[u8; 2]>::try_from(&*f) {
                let c = csum_replace_at(u16::from_be_bytes(c), at, &old, &new);
                f.copy_from_slice(&c.to_be_bytes());
            }
        }
    }
    if let Some(f) = tcp.get_mut(at..at.saturating_add(2)) {
        f.copy_from_slice(&new);
    }
}
