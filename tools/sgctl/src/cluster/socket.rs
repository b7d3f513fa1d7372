// SPDX-License-Identifier: GPL-2.0

//! A generic netlink socket speaking the `sockgroup` family: resolves the
//! family and its `events` group through nlctrl, makes `do` and `dump`
//! requests and reads their replies, acknowledgements and extended acks.

use std::fmt::Debug;
use std::io;

use netlink_packet_core::{
    DecodeError, Emitable, NetlinkBuffer, NetlinkMessage, NetlinkPayload, NlasIterator,
    ParseableParametrized, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::{GenlCtrlAttrs, McastGrpAttrs};
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};
use zeroize::Zeroize;

use super::attrs::SgMessage;
use crate::error::Error;
use crate::genl_uapi::{SOCKGROUP_FAMILY_NAME, SOCKGROUP_MCGRP_EVENTS};

/// `NLMSGERR_ATTR_MSG`: the extended ack's text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// `NLMSGERR_ATTR_OFFS`: the offset of the offending attribute.
const NLMSGERR_ATTR_OFFS: u16 = 2;
/// `NLMSGERR_ATTR_MISS_TYPE`: the type of a missing attribute.
const NLMSGERR_ATTR_MISS_TYPE: u16 = 5;
/// Size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;

/// What the kernel said about a failed (or warned) request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extack {
    /// `NLMSGERR_ATTR_MSG`.
    pub msg: Option<String>,
    /// `NLMSGERR_ATTR_OFFS`: where in the request the bad attribute is.
    pub offset: Option<u32>,
    /// `NLMSGERR_ATTR_MISS_TYPE`: the attribute that was missing.
    pub missing: Option<u32>,
}

impl Extack {
    /// The extended ack of an `NLMSG_ERROR` (`flags` of its header,
    /// `payload` after the error code: the request's header, the request
    /// itself unless capped, then the attributes if `NLM_F_ACK_TLVS`).
    pub fn of_error(flags: u16, payload: &[u8]) -> Self {
        if flags & NLM_F_ACK_TLVS == 0 || payload.len() < NLMSG_HDRLEN {
            return Self::default();
        }
        let skip = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            let len = u32::from_ne_bytes(payload[..4].try_into().unwrap()) as usize;
            (len + 3) & !3
        };
        Self::of_tlvs(payload.get(skip..).unwrap_or(&[]))
    }

    /// The extended ack in the attributes `tlvs`.
    pub fn of_tlvs(tlvs: &[u8]) -> Self {
        let mut ack = Self::default();
        for nla in NlasIterator::new(tlvs).map_while(Result::ok) {
            let value = nla.value();
            match nla.kind() {
                NLMSGERR_ATTR_MSG => {
                    let text = value.split(|&b| b == 0).next().unwrap_or(&[]);
                    ack.msg = Some(String::from_utf8_lossy(text).into_owned());
                }
                NLMSGERR_ATTR_OFFS => ack.offset = value.try_into().ok().map(u32::from_ne_bytes),
                NLMSGERR_ATTR_MISS_TYPE => {
                    ack.missing = value.try_into().ok().map(u32::from_ne_bytes)
                }
                _ => {}
            }
        }
        ack
    }

    /// The text to show: the message, and the missing attribute if named.
    pub fn text(&self) -> Option<String> {
        match (&self.msg, self.missing) {
            (Some(m), Some(t)) => Some(format!("{m} (attribute {t})")),
            (Some(m), None) => Some(m.clone()),
            (None, Some(t)) => Some(format!("missing attribute {t}")),
            (None, None) => None,
        }
    }
}

/// One message received: a reply, the end of a dump or an error/ack.
#[derive(Debug)]
pub enum Received<F> {
    /// A reply or notification of the family.
    Message(F),
    /// An `NLMSG_ERROR` with code 0.
    Ack,
    /// The end of a dump.
    Done,
    /// An error: errno (positive) and what the kernel said.
    Error(i32, Extack),
    /// Something else (`NLMSG_NOOP`, a message of another sequence).
    Ignored,
}

/// Splits a datagram into its netlink messages and parses each as `F`'s
/// family (only those of sequence `seq`, when given).
pub fn parse_datagram<F>(data: &[u8], seq: Option<u32>) -> Result<Vec<Received<F>>, DecodeError>
where
    F: ParseableParametrized<[u8], GenlHeader> + Debug,
{
    let mut out = Vec::new();
    let mut off = 0;
    while off + NLMSG_HDRLEN <= data.len() {
        let len = NetlinkBuffer::new_checked(&data[off..])?.length() as usize;
        let bytes = &data[off..off + len];
        off += (len + 3) & !3;
        let msg = NetlinkMessage::<GenlMessage<F>>::deserialize(bytes)?;
        if seq.is_some_and(|s| s != msg.header.sequence_number) {
            out.push(Received::Ignored);
            continue;
        }
        out.push(match msg.payload {
            NetlinkPayload::InnerMessage(genl) => Received::Message(genl.payload),
            NetlinkPayload::Error(e) if e.code.is_none() => Received::Ack,
            NetlinkPayload::Error(e) => {
                Received::Error(-e.raw_code(), Extack::of_error(msg.header.flags, &e.header))
            }
            NetlinkPayload::Done(d) if d.code < 0 => {
                Received::Error(-d.code, Extack::of_tlvs(&d.extended_ack))
            }
            NetlinkPayload::Done(_) => Received::Done,
            _ => Received::Ignored,
        });
    }
    Ok(out)
}

/// The bytes of a request of `family` (its id), with `flags` besides
/// `NLM_F_REQUEST` and sequence number `seq`.
pub fn request_bytes<F>(family: u16, flags: u16, seq: u32, payload: F) -> Vec<u8>
where
    F: GenlFamily + Emitable + Debug,
{
    let mut genl = GenlMessage::from_payload(payload);
    genl.set_resolved_family_id(family);
    genl.finalize();
    let mut nl = NetlinkMessage::from(genl);
    nl.header.flags = NLM_F_REQUEST | flags;
    nl.header.sequence_number = seq;
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

/// A socket of the `sockgroup` family in the caller's network namespace.
pub struct Client {
    sock: Socket,
    family: u16,
    events: Option<u32>,
    seq: u32,
}

/// An errno of a socket call, for `what`.
fn os(what: &str, e: &io::Error) -> Error {
    Error::os(crate::error::Call::Other, what, e)
}

impl Client {
    /// Opens a generic netlink socket with extended acks and resolves the
    /// family; fails with a hint when the module is not loaded.
    pub fn open() -> Result<Self, Error> {
        let mut sock = Socket::new(NETLINK_GENERIC).map_err(|e| os("netlink socket", &e))?;
        sock.bind_auto().map_err(|e| os("netlink bind", &e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| os("netlink connect", &e))?;
        // Both are best effort: old kernels answer without them.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        let mut client = Self {
            sock,
            family: 0,
            events: None,
            seq: 0,
        };
        client.resolve()?;
        Ok(client)
    }

    /// Asks nlctrl for the family's id and multicast groups.
    fn resolve(&mut self) -> Result<(), Error> {
        let get = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(SOCKGROUP_FAMILY_NAME.to_owned())],
        };
        let replies = match self.transact(get.family_id(), NLM_F_ACK, get) {
            Ok(r) => r,
            Err((libc::ENOENT, _)) => {
                return Err(Error::Msg(format!(
                    "no generic netlink family \"{SOCKGROUP_FAMILY_NAME}\": module not loaded \
                     (insmod sockgroup.ko), or too old for the cluster"
                )))
            }
            Err((errno, ack)) => return Err(Error::netlink("resolving the family", errno, ack)),
        };
        for nla in replies.iter().flat_map(|r: &GenlCtrl| &r.nlas) {
            match nla {
                GenlCtrlAttrs::FamilyId(id) => self.family = *id,
                GenlCtrlAttrs::McastGroups(groups) => {
                    for group in groups {
                        let name = group.iter().find_map(|a| match a {
                            McastGrpAttrs::Name(n) => Some(n.as_str()),
                            _ => None,
                        });
                        let id = group.iter().find_map(|a| match a {
                            McastGrpAttrs::Id(id) => Some(*id),
                            _ => None,
                        });
                        if name == Some(SOCKGROUP_MCGRP_EVENTS) {
                            self.events = id;
                        }
                    }
                }
                _ => {}
            }
        }
        if self.family == 0 {
            return Err(Error::Msg("nlctrl gave no id for the family".into()));
        }
        Ok(())
    }

    /// Sends one request and reads until its ack, its error or the end of
    /// its dump; returns the replies, or the errno and extended ack.
    fn transact<F>(&mut self, family: u16, flags: u16, payload: F) -> Result<Vec<F>, (i32, Extack)>
    where
        F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + Debug,
    {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut buf = request_bytes(family, flags, seq, payload);
        let sent = self.sock.send(&buf, 0);
        // The request may hold a key.
        buf.zeroize();
        let io_err = |e: io::Error| (e.raw_os_error().unwrap_or(libc::EIO), Extack::default());
        sent.map_err(io_err)?;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full().map_err(io_err)?;
            let msgs = parse_datagram::<F>(&data, Some(seq)).map_err(|e| {
                (
                    libc::EBADMSG,
                    Extack {
                        msg: Some(format!("cannot parse the kernel's reply: {e}")),
                        ..Extack::default()
                    },
                )
            })?;
            for msg in msgs {
                match msg {
                    Received::Message(m) => replies.push(m),
                    Received::Ack | Received::Done => return Ok(replies),
                    Received::Error(errno, ack) => return Err((errno, ack)),
                    Received::Ignored => {}
                }
            }
        }
    }

    /// A `do` request (acknowledged); returns its replies (none or one).
    pub fn request(&mut self, what: &str, msg: SgMessage) -> Result<Vec<SgMessage>, Error> {
        self.transact(self.family, NLM_F_ACK, msg)
            .map_err(|(errno, ack)| Error::netlink(what, errno, ack))
    }

    /// A `dump` request; returns every object.
    pub fn dump(&mut self, what: &str, msg: SgMessage) -> Result<Vec<SgMessage>, Error> {
        self.transact(self.family, NLM_F_DUMP, msg)
            .map_err(|(errno, ack)| Error::netlink(what, errno, ack))
    }

    /// Joins the `events` multicast group.
    pub fn subscribe(&mut self) -> Result<(), Error> {
        let group = self.events.ok_or_else(|| {
            Error::Msg(format!(
                "the family has no \"{SOCKGROUP_MCGRP_EVENTS}\" multicast group"
            ))
        })?;
        self.sock
            .add_membership(group)
            .map_err(|e| os("joining the events group", &e))
    }

    /// Waits for the next datagram of notifications and parses it.  A
    /// receive buffer overrun is reported as `Err` with ENOBUFS.
    pub fn next_events(&mut self) -> Result<Vec<SgMessage>, Error> {
        let (data, _) = self
            .sock
            .recv_from_full()
            .map_err(|e| os("receiving events", &e))?;
        let msgs = parse_datagram::<SgMessage>(&data, None)
            .map_err(|e| Error::Msg(format!("cannot parse an event: {e}")))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                Received::Message(m) => Some(m),
                _ => None,
            })
            .collect())
    }
}
