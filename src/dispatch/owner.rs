// SPDX-License-Identifier: GPL-2.0

//! Owner and backup owner of a connection among several dispatchers (seed
//! 001, claims 3, 7, 8, 9, 17, 18), computed by every dispatcher alone from
//! the same view of who is up.
//!
//! # Scores
//!
//! For a connection `t` and a dispatcher `id`, the score is
//!
//! ```text
//! score(id, t) = fmix32(CRC32C(be32(id) || Tuple::encode(t)))
//! ```
//!
//! over 44 bytes: the id as a big-endian u32, then the connection in the
//! control channel's 40-byte layout ([`Tuple::encode`]: the family, 4 or 6,
//! 3 zero bytes, the client's address, the server's address, each 16 bytes
//! with IPv4 in the first 4 and zeros after, the client's port and the
//! server's port, big-endian). CRC32C is the Castagnoli CRC as iSCSI and
//! ext4 use it (reflected, polynomial 0x82F63B78, initial value and final
//! XOR all ones: `"123456789"` gives 0xE3069283); the module uses the
//! kernel's `__crc32c_le` through the [`Crc32c`] trait.
//!
//! `fmix32` is MurmurHash3's 32-bit finalizer. A bare CRC would not spread
//! connections evenly: a CRC is affine over GF(2), so with inputs of one
//! length `CRC(id || t) = a(id) ^ b(t)`, and which id has the highest
//! `a(id) ^ b(t)` is decided by the first bit where the `a(id)` differ, half
//! of the connections each way whatever the number of dispatchers on each
//! side: three dispatchers get 1/2, 1/4 and 1/4, and a fourth that joins
//! takes about 1/8. The finalizer is a bijection (distinct CRCs stay
//! distinct scores) that is not affine, and gives each dispatcher its 1/N.
//!
//! The owner is the dispatcher with the highest score, the backup owner the
//! second; equal scores rank the lower id first. The affinity of the CRC
//! makes the per-packet cost one CRC: [`View`] keeps `a(id)` for each
//! dispatcher, computed when the view is built, so a packet's CRC32C over
//! its 40 bytes is done once and each dispatcher costs an XOR and the
//! finalizer.
//!
//! # Changes of the view
//!
//! A [`Transition`] says, for one connection and two views (before and
//! after a membership change), what moves: the surviving holder that sends
//! the entry (the old owner, else the old backup), the new holders that lack
//! it (its TRANSFER's destinations), and who forwards the connection's
//! packets until the new owner acknowledges. [`Transition::plan`] is one
//! node's share of it. A node that fails takes away only the ownership of
//! the connections it owned (their backups take over) and the backup role
//! of those it owned or backed up; a node that joins takes about 1/N of the
//! ownership, each connection from its old owner.
//!
//! What the kernel does today is narrower ([`handover`], [`to_backup`]):
//! the node that owned a moved connection sends it to its new owner (and
//! new backup) and keeps its entry, and a node that owns a connection it
//! knows nothing of forwards its segments to the backup, which a node
//! that joined ranks second: the old owner, still serving it.
//!
//! Pure: `no_std`, no allocation, no panic on any input.

use super::frame::{ConnEnd, ConnSync, Placement, Tuple, TUPLE_LEN};
use super::membership::Membership;

/// The most dispatchers in a view.
pub const MAX_DISPATCHERS: usize = 16;
/// Bytes over which a score's CRC runs: the id, then the tuple.
pub const SCORE_INPUT_LEN: usize = 4 + TUPLE_LEN;
/// No node: a CONN_SYNC's backup when the owner is alone. Node ids are not
/// 0 (a rule's target 0 names the local node), and a view skips it.
pub const NO_NODE: u32 = 0;

/// CRC32C as the kernel's `__crc32c_le` computes it: the reflected
/// Castagnoli CRC (polynomial 0x82F63B78) of `data` continuing from `crc`,
/// without inverting either (the standard CRC32C of `data` is
/// `!crc32c_le(!0, data)`, see [`crc32c`]).
pub trait Crc32c {
    /// The CRC register after `data`, from `crc`.
    fn crc32c_le(&self, crc: u32, data: &[u8]) -> u32;
}

/// The standard CRC32C of `data` (initial value and final XOR all ones).
pub fn crc32c<C: Crc32c + ?Sized>(c: &C, data: &[u8]) -> u32 {
    !c.crc32c_le(!0, data)
}

/// MurmurHash3's 32-bit finalizer: a bijection of u32 that mixes every
/// input bit into every output bit.
pub const fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The bytes a score's CRC runs over: `be32(id) || t.encode()`.
pub fn score_input(id: u32, t: &Tuple) -> [u8; SCORE_INPUT_LEN] {
    let mut b = [0u8; SCORE_INPUT_LEN];
    b[..4].copy_from_slice(&id.to_be_bytes());
    b[4..].copy_from_slice(&t.encode());
    b
}

/// The score of dispatcher `id` for connection `t`, by its definition
/// (one CRC over the whole input; [`View`] computes the same faster).
pub fn score<C: Crc32c + ?Sized>(c: &C, id: u32, t: &Tuple) -> u32 {
    fmix32(crc32c(c, &score_input(id, t)))
}

/// Whether `(score, id)` ranks before `(other_score, other_id)`: a higher
/// score, or the same score and a lower id.
pub fn ranks_before(score: u32, id: u32, other_score: u32, other_id: u32) -> bool {
    score > other_score || (score == other_score && id < other_id)
}

/// A view would hold more than [`MAX_DISPATCHERS`] dispatchers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TooMany;

/// The dispatchers up, as one node sees them at one membership
/// generation, with what their scores need precomputed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct View {
    generation: u64,
    len: usize,
    /// Ascending, distinct.
    ids: [u32; MAX_DISPATCHERS],
    /// `a(id)`: the CRC register after `be32(id)` from all ones, then
    /// [`TUPLE_LEN`] zero bytes. For any tuple `t`,
    /// `crc32c_le(!0, be32(id) || t) = a(id) ^ crc32c_le(0, t)`.
    pre: [u32; MAX_DISPATCHERS],
}

impl View {
    /// No dispatcher.
    pub const fn empty(generation: u64) -> Self {
        View {
            generation,
            len: 0,
            ids: [0; MAX_DISPATCHERS],
            pre: [0; MAX_DISPATCHERS],
        }
    }

    /// The view of the dispatchers `ids` (any order, duplicates count
    /// once, [`NO_NODE`] skipped) at `generation`.
    pub fn new<C: Crc32c + ?Sized>(c: &C, generation: u64, ids: &[u32]) -> Result<Self, TooMany> {
        let mut v = View::empty(generation);
        for &id in ids {
            v.insert(c, id)?;
        }
        Ok(v)
    }

    /// The view of the nodes of `m` (up, self included) that are
    /// dispatchers, at `m`'s generation.
    pub fn of_membership<C: Crc32c + ?Sized>(
        c: &C,
        m: &Membership,
        is_dispatcher: impl Fn(u32) -> bool,
    ) -> Result<Self, TooMany> {
        let mut v = View::empty(m.generation());
        for &id in m.ids().iter().filter(|&&id| is_dispatcher(id)) {
            v.insert(c, id)?;
        }
        Ok(v)
    }

    fn insert<C: Crc32c + ?Sized>(&mut self, c: &C, id: u32) -> Result<(), TooMany> {
        if id == NO_NODE {
            return Ok(());
        }
        let Err(at) = self.ids().binary_search(&id) else {
            return Ok(());
        };
        if self.len == MAX_DISPATCHERS {
            return Err(TooMany);
        }
        self.ids.copy_within(at..self.len, at + 1);
        self.pre.copy_within(at..self.len, at + 1);
        self.ids[at] = id;
        let s = c.crc32c_le(!0, &id.to_be_bytes());
        self.pre[at] = c.crc32c_le(s, &[0u8; TUPLE_LEN]);
        self.len += 1;
        Ok(())
    }

    /// The membership generation it was built at.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The dispatchers, ascending.
    pub fn ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }

    /// How many dispatchers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `id` is in it.
    pub fn contains(&self, id: u32) -> bool {
        self.ids().binary_search(&id).is_ok()
    }

    /// Every dispatcher's score for `t`, in the order of [`Self::ids`]
    /// (one CRC over the tuple in all).
    pub fn scores<'v, C: Crc32c + ?Sized>(
        &'v self,
        c: &C,
        t: &Tuple,
    ) -> impl Iterator<Item = (u32, u32)> + 'v {
        let b = c.crc32c_le(0, &t.encode());
        self.ids()
            .iter()
            .zip(&self.pre)
            .map(move |(&id, &a)| (id, fmix32(!(a ^ b))))
    }

    /// The owner and backup owner of `t`; `None` when the view is empty.
    pub fn pair<C: Crc32c + ?Sized>(&self, c: &C, t: &Tuple) -> Option<Pair> {
        let mut first: Option<(u32, u32)> = None;
        let mut second: Option<(u32, u32)> = None;
        for (id, s) in self.scores(c, t) {
            match first {
                Some((fs, fid)) if !ranks_before(s, id, fs, fid) => match second {
                    Some((ss, sid)) if !ranks_before(s, id, ss, sid) => {}
                    _ => second = Some((s, id)),
                },
                _ => {
                    second = first;
                    first = Some((s, id));
                }
            }
        }
        first.map(|(_, owner)| Pair {
            owner,
            backup: second.map(|(_, id)| id),
        })
    }
}

/// A connection's owner and backup owner.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Pair {
    /// The highest score.
    pub owner: u32,
    /// The second highest; `None` when the owner is alone.
    pub backup: Option<u32>,
}

/// What a node is to a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Its owner: it decides the connection and forwards its packets.
    Owner,
    /// Its backup owner: it keeps the entry and takes over if the owner
    /// fails.
    Backup,
    /// Neither: it looks in its cache, else forwards to the owner.
    Other,
}

impl Pair {
    /// What `id` is to the connection.
    pub fn role(&self, id: u32) -> Role {
        if id == self.owner {
            Role::Owner
        } else if self.backup == Some(id) {
            Role::Backup
        } else {
            Role::Other
        }
    }

    /// Whether `id` keeps the connection's entry (owner or backup).
    pub fn holds(&self, id: u32) -> bool {
        self.role(id) != Role::Other
    }
}

fn holds(p: Option<Pair>, id: u32) -> bool {
    p.is_some_and(|p| p.holds(id))
}

fn role(p: Option<Pair>, id: u32) -> Role {
    p.map_or(Role::Other, |p| p.role(id))
}

/// What a change of view does to one connection, the same on every node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Transition {
    /// Owner and backup before.
    pub old: Option<Pair>,
    /// Owner and backup after.
    pub new: Option<Pair>,
    /// The old holder still up that hands the entry on: the old owner if it
    /// is in the new view, else the old backup if it is; `None` when
    /// neither is (the entry is lost) or there was no old pair.
    pub sender: Option<u32>,
    /// The new owner, then the new backup, where they did not hold the
    /// entry before: what the sender sends it to (TRANSFER).
    pub to: [Option<u32>; 2],
    /// Who forwards the connection's packets from the change until the new
    /// owner acknowledges its TRANSFER: the new owner itself when it held
    /// the entry already (no TRANSFER to wait for), else the sender.
    pub interim: Option<u32>,
}

/// The transition of connection `t` from view `old` to view `new`.
pub fn transition<C: Crc32c + ?Sized>(c: &C, old: &View, new: &View, t: &Tuple) -> Transition {
    let op = old.pair(c, t);
    let np = new.pair(c, t);
    let sender = op.and_then(|p| {
        if new.contains(p.owner) {
            Some(p.owner)
        } else {
            p.backup.filter(|&b| new.contains(b))
        }
    });
    // A new holder lacks the entry unless it held it and is still up (it
    // is, being in the new view).
    let lacks = |id: u32| !holds(op, id);
    let mut to = [None; 2];
    if let (Some(_), Some(np)) = (sender, np) {
        to[0] = Some(np.owner).filter(|&o| lacks(o));
        to[1] = np.backup.filter(|&b| lacks(b));
    }
    let interim = match np {
        Some(np) if !lacks(np.owner) => Some(np.owner),
        _ => sender,
    };
    Transition {
        old: op,
        new: np,
        sender,
        to,
        interim,
    }
}

/// What a node does with its entry of a connection after a transition.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Release {
    /// It keeps it (as owner or backup: [`Plan::role`]).
    Keep,
    /// It frees it now.
    Free,
    /// It keeps forwarding the connection and frees the entry when the new
    /// owner acknowledges the TRANSFER.
    FreeOnAck,
    /// It had none and gets none (or gets one by TRANSFER).
    Nothing,
}

/// One node's share of a [`Transition`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Plan {
    /// Its role before.
    pub was: Role,
    /// Its role after.
    pub role: Role,
    /// It was the backup and is now the owner (failover, claim 18).
    pub takeover: bool,
    /// Where it sends the entry (the transition's `to` if it is the
    /// sender).
    pub send: [Option<u32>; 2],
    /// It forwards the connection's packets until the new owner
    /// acknowledges.
    pub interim: bool,
    /// What becomes of its entry.
    pub release: Release,
}

impl Transition {
    /// Whether the owner changed (or appeared, or went).
    pub fn owner_changed(&self) -> bool {
        self.old.map(|p| p.owner) != self.new.map(|p| p.owner)
    }

    /// Whether the backup changed.
    pub fn backup_changed(&self) -> bool {
        self.old.and_then(|p| p.backup) != self.new.and_then(|p| p.backup)
    }

    /// Whether no holder of the entry survived: the connection is lost to
    /// the dispatchers (its TCP may live on, unreachable).
    pub fn lost(&self) -> bool {
        self.old.is_some() && self.sender.is_none()
    }

    /// `me`'s share.
    pub fn plan(&self, me: u32) -> Plan {
        let was = role(self.old, me);
        let role = role(self.new, me);
        let sender = self.sender == Some(me);
        let interim = self.interim == Some(me) && role != Role::Owner;
        let release = match (was, role) {
            (Role::Other, _) => Release::Nothing,
            (_, Role::Owner | Role::Backup) => Release::Keep,
            _ if interim => Release::FreeOnAck,
            _ => Release::Free,
        };
        Plan {
            was,
            role,
            takeover: was == Role::Backup && role == Role::Owner,
            send: if sender { self.to } else { [None; 2] },
            interim,
            release,
        }
    }
}

/// Why a received CONN_SYNC or TRANSFER entry is refused (counted; no
/// state changes). The channel already checked that the frame came,
/// authenticated, from the configured peer `sender`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refused {
    /// The sender is not a dispatcher of the receiver's view.
    NotDispatcher,
    /// A CONN_SYNC whose owner is not its sender (only owners send them).
    NotFromOwner,
    /// The receiver is not the entry's backup (CONN_SYNC), nor its owner or
    /// backup (TRANSFER).
    NotForMe,
    /// The entry names the same node as owner and backup, or the sender
    /// sent it to itself.
    Inconsistent,
}

fn check_common(view: &View, s: &ConnSync, sender: u32, me: u32) -> Result<(), Refused> {
    if !view.contains(sender) {
        return Err(Refused::NotDispatcher);
    }
    if sender == me || s.owner == s.backup || s.owner == NO_NODE {
        return Err(Refused::Inconsistent);
    }
    Ok(())
}

/// Whether the CONN_END `end` from `sender` ends the record `s` that came
/// from `from` (a backup's, or a TRANSFER's): the same tuple and client
/// ISN (a CONN_END sent late for an earlier connection on the tuple, after
/// the client reused its port, ends nothing), from the node that sent the
/// record or from the connection's owner (a TRANSFER's new owner, whose
/// back-end's TERM goes there).
pub fn ends(s: &ConnSync, from: u32, sender: u32, end: &ConnEnd) -> bool {
    s.tuple == end.tuple && s.client_isn == end.client_isn && (from == sender || s.owner == sender)
}

/// Checks a CONN_SYNC that `me` received from `sender`: from a dispatcher
/// of `view`, from the entry's owner, to its backup.
pub fn check_sync(view: &View, s: &ConnSync, sender: u32, me: u32) -> Result<(), Refused> {
    check_common(view, s, sender, me)?;
    if s.owner != sender {
        return Err(Refused::NotFromOwner);
    }
    if s.backup != me {
        return Err(Refused::NotForMe);
    }
    Ok(())
}

/// Checks a CONN_SYNC that the back-end `me` received from `sender`: from
/// a dispatcher of `configured` (the view of the service's configured
/// dispatchers) that names itself the owner of a connection moved to `me`
/// (placement forwarded). It took the connection over from the dispatcher
/// that handed it off here: the back-end's TERM goes to it from now on.
pub fn check_reown(configured: &View, s: &ConnSync, sender: u32, me: u32) -> Result<(), Refused> {
    check_common(configured, s, sender, me)?;
    if s.owner != sender {
        return Err(Refused::NotFromOwner);
    }
    if s.backend != me {
        return Err(Refused::NotForMe);
    }
    if s.placement != Placement::Forwarded {
        return Err(Refused::Inconsistent);
    }
    Ok(())
}

/// Checks a CONN_SYNC that `me` received from `sender` as a hint for its
/// association cache (claim 12): from a dispatcher of `view` that names
/// itself the owner of a connection moved to a back-end (placement
/// forwarded). `me` may be any dispatcher but the owner: its segments of
/// the connection go straight to the back-end from then on.
pub fn check_hint(view: &View, s: &ConnSync, sender: u32, me: u32) -> Result<(), Refused> {
    check_common(view, s, sender, me)?;
    if s.owner != sender {
        return Err(Refused::NotFromOwner);
    }
    if s.placement != Placement::Forwarded || s.backend == NO_NODE {
        return Err(Refused::Inconsistent);
    }
    Ok(())
}

/// Checks a TRANSFER entry that `me` received from `sender`: from a
/// dispatcher of `view`, for `me` as the entry's owner or backup. Returns
/// that role.
pub fn check_entry(view: &View, s: &ConnSync, sender: u32, me: u32) -> Result<Role, Refused> {
    check_common(view, s, sender, me)?;
    if s.owner == me {
        Ok(Role::Owner)
    } else if s.backup == me {
        Ok(Role::Backup)
    } else {
        Err(Refused::NotForMe)
    }
}

/// Checks a TRANSFER entry as dispatchers send them ([`handover`]) that
/// `me` received from `sender`: [`check_entry`] under `configured` (the
/// view of all the service's configured dispatchers: a node that joins
/// gets TRANSFERs before its own membership counts their senders in), a
/// connection moved to a back-end (placement forwarded), and a sender
/// that ranks below the entry's owner and below `me` for the connection:
/// it held the connection and is not its owner any more, so every node it
/// hands it to ranks above it. Returns the role it names `me` in.
pub fn check_transfer<C: Crc32c + ?Sized>(
    c: &C,
    configured: &View,
    s: &ConnSync,
    sender: u32,
    me: u32,
) -> Result<Role, Refused> {
    let role = check_entry(configured, s, sender, me)?;
    if s.placement != Placement::Forwarded {
        return Err(Refused::Inconsistent);
    }
    let score = |id: u32| {
        configured
            .scores(c, &s.tuple)
            .find(|&(i, _)| i == id)
            .map(|(_, x)| x)
    };
    let (Some(ss), Some(so), Some(sm)) = (score(sender), score(s.owner), score(me)) else {
        return Err(Refused::NotDispatcher);
    };
    if !ranks_before(so, s.owner, ss, sender) || !ranks_before(sm, me, ss, sender) {
        return Err(Refused::Inconsistent);
    }
    Ok(role)
}

/// Whether `view` gives the entry's owner and backup: a receiver whose view
/// disagrees (a membership change not seen by both yet) still stores it,
/// and the next transition of its view puts it right.
pub fn agrees<C: Crc32c + ?Sized>(c: &C, view: &View, s: &ConnSync) -> bool {
    view.pair(c, &s.tuple)
        == Some(Pair {
            owner: s.owner,
            backup: Some(s.backup).filter(|&b| b != NO_NODE),
        })
}

/// What a backup does with its record of a connection (a CONN_SYNC it
/// accepted) once its view changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fate {
    /// It still backs the connection up: the record stays.
    Keep,
    /// The record's owner left the view and this node owns the connection
    /// now, which lives on at its back-end (placement forwarded): this node
    /// forwards its packets there from now on (failover, claim 18).
    TakeOver,
    /// The record goes: this node neither backs the connection up nor
    /// owns it any more, or it owns it but the connection died with its
    /// old owner (its hold or its TCP socket was there), or the old owner
    /// is still up (a change of the dispatchers: TRANSFER's case).
    Drop,
}

/// The [`Fate`] of `me`'s record `s` under its new `view`.
pub fn record_fate<C: Crc32c + ?Sized>(c: &C, view: &View, s: &ConnSync, me: u32) -> Fate {
    match view.pair(c, &s.tuple).map(|p| p.role(me)) {
        Some(Role::Backup) => Fate::Keep,
        Some(Role::Owner) if s.placement == Placement::Forwarded && !view.contains(s.owner) => {
            Fate::TakeOver
        }
        _ => Fate::Drop,
    }
}

/// What the dispatcher `own` that owned a moved connection (its entry's
/// backup `backup`, [`NO_NODE`] for none) does with it once its view
/// changed (scale-out, claim 17).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Handover {
    /// It still owns it, with the same backup (or none new), or the view
    /// is empty.
    Keep,
    /// It still owns it; the backup changed: a CONN_SYNC to the new one.
    Resync(u32),
    /// Another dispatcher owns it now (`pair`): a TRANSFER to the new
    /// owner, and to the new backup unless that is this node or none. This
    /// node keeps its entry: when one node joined, it ranks this node
    /// second, so this node is the backup the new owner forwards to until
    /// the TRANSFER came ([`to_backup`]).
    Transfer {
        /// Owner and backup under the new view.
        pair: Pair,
        /// The TRANSFER's destinations.
        to: [Option<u32>; 2],
    },
}

/// The [`Handover`] of connection `t` at `own` under its new `view`.
pub fn handover<C: Crc32c + ?Sized>(
    c: &C,
    view: &View,
    own: u32,
    backup: u32,
    t: &Tuple,
) -> Handover {
    let Some(p) = view.pair(c, t) else {
        return Handover::Keep;
    };
    if p.owner == own {
        let b = p.backup_id();
        return if b != backup && b != NO_NODE {
            Handover::Resync(b)
        } else {
            Handover::Keep
        };
    }
    Handover::Transfer {
        pair: p,
        to: [Some(p.owner), p.backup.filter(|&b| b != own)],
    }
}

/// What the dispatcher `own` does with its entry of a moved connection it
/// handed to `to` in a TRANSFER, once `to` acknowledged it (TRANSFER_ACK;
/// claim 17: an old owner that is neither owner nor backup deletes its
/// entry).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Acked {
    /// It stays: `own` backs the connection up under its view `pair`
    /// (or owns it again), or `to` serves the connection itself, so the
    /// back-end's TERM (the end of the connection) still comes to `own`.
    Keep,
    /// It lingers out (forwarding what is still on its way to `own`):
    /// `to` owns it, its back-end's TERM goes there.
    Linger,
}

/// The [`Acked`] of `own`'s entry of a connection handed to `to`, served
/// by `backend`, `pair` being its owner and backup under `own`'s view: the
/// sender's [`Release`] in [`Transition::plan`] (`FreeOnAck` or `Keep`),
/// decided from the view at the acknowledgement, and kept when `to` serves
/// the connection itself.
pub fn acked(pair: Option<Pair>, own: u32, to: u32, backend: u32) -> Acked {
    let backs_up = pair.is_some_and(|p| p.owner == own || p.backup == Some(own));
    if backs_up || backend == to {
        Acked::Keep
    } else {
        Acked::Linger
    }
}

/// Where dispatcher `me` sends a segment it holds no socket and no entry
/// of, `pair` being the connection's owner and backup under its view: to
/// the backup when `me` is the owner (a node that joined owns connections
/// that the backup, their old owner, still serves or forwards), else
/// nowhere. A chain of such hops ends: the backup ranks below the owner,
/// and the ranking of two dispatchers for a tuple is the same in every
/// view, so each hop goes to a lower rank.
pub fn to_backup(pair: Option<Pair>, me: u32) -> Option<u32> {
    pair.filter(|p| p.owner == me).and_then(|p| p.backup)
}

impl Pair {
    /// The backup as a CONN_SYNC carries it ([`NO_NODE`] for none).
    pub fn backup_id(&self) -> u32 {
        self.backup.unwrap_or(NO_NODE)
    }
}
