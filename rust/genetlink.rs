// SPDX-License-Identifier: GPL-2.0

//! Generic netlink families.
//!
//! A family is described statically, as `ynl-gen-c.py --mode kernel`
//! describes one in C: attribute policies ([`Policy`]), split operations
//! ([`SplitOp`]) and multicast groups ([`McGroup`]) are `const` values in
//! static memory, and a [`Family`] implementation names them and serves its
//! requests as safe Rust: [`Request`] (a `doit`), [`Dump`] (a `dumpit` with a
//! resumable cursor), [`Msg`] (a reply) and [`multicast`] (an event).
//! [`Registration`] registers the family in its constructor and unregisters
//! it in `Drop`.
//!
//! C headers: [`include/net/genetlink.h`](srctree/include/net/genetlink.h),
//! [`include/net/netlink.h`](srctree/include/net/netlink.h).

use super::{bindings, errno::emsgsize, net::Net, rcu};
use core::{
    ffi::c_int,
    marker::PhantomData,
    ptr,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{error::from_result, prelude::*, str::CStr, types::Opaque, ThisModule};

/// `GENL_ADMIN_PERM`: the operation needs `CAP_NET_ADMIN` in the user
/// namespace that owns the request's network namespace.
pub const ADMIN_PERM: u8 = bindings::GENL_ADMIN_PERM as u8;

/// The attribute types a [`Policy`] can check (`enum` of `NLA_*`).
#[derive(Clone, Copy)]
#[repr(u8)]
pub enum AttrType {
    /// `NLA_U8`.
    U8 = bindings::NLA_U8 as u8,
    /// `NLA_U16`.
    U16 = bindings::NLA_U16 as u8,
    /// `NLA_U32`.
    U32 = bindings::NLA_U32 as u8,
    /// `NLA_U64`.
    U64 = bindings::NLA_U64 as u8,
    /// `NLA_BINARY`.
    Binary = bindings::NLA_BINARY as u8,
}

/// A range of integer values (`struct netlink_range_validation`), for
/// [`Policy::full_range`].
#[repr(transparent)]
pub struct Range(bindings::netlink_range_validation);

impl Range {
    /// The values from `min` to `max`, both included.
    pub const fn new(min: u64, max: u64) -> Self {
        Self(bindings::netlink_range_validation { min, max })
    }
}

/// The validation of one attribute type (`struct nla_policy`), as the
/// `NLA_POLICY_*` macros build it. An array of them, indexed by attribute
/// type with entry 0 unused, is the policy of an attribute set.
#[repr(transparent)]
pub struct Policy(bindings::nla_policy);

// SAFETY: A `Policy` is only built by the `const fn`s below and never changed;
// its pointers (nested policies, ranges) point to `'static` values that are
// `Sync` themselves.
unsafe impl Sync for Policy {}
// SAFETY: A `Range` holds two integers.
unsafe impl Sync for Range {}

impl Policy {
    const fn zeroed() -> bindings::nla_policy {
        // SAFETY: All-zero is a valid `nla_policy` (integers, a union of
        // integers, nullable pointers and an `Option` of a function).
        unsafe { core::mem::zeroed() }
    }

    const fn typed(ty: u8) -> Self {
        let mut p = Self::zeroed();
        p.type_ = ty;
        Self(p)
    }

    /// An unused entry (`NLA_UNSPEC`, no check): entry 0 of every array.
    pub const UNUSED: Self = Self::typed(0);

    /// `{ .type = NLA_U8 }`, `NLA_U16`...: the attribute's length is checked.
    pub const fn of(ty: AttrType) -> Self {
        Self::typed(ty as u8)
    }

    /// `NLA_POLICY_MIN(ty, min)`.
    pub const fn min(ty: AttrType, min: i16) -> Self {
        let mut p = Self::zeroed();
        p.type_ = ty as u8;
        p.validation_type = bindings::nla_policy_validation_NLA_VALIDATE_MIN as u8;
        p.__bindgen_anon_1.__bindgen_anon_1 =
            bindings::nla_policy__bindgen_ty_1__bindgen_ty_1 { min, max: 0 };
        Self(p)
    }

    /// `NLA_POLICY_MAX(ty, max)`.
    pub const fn max(ty: AttrType, max: i16) -> Self {
        let mut p = Self::zeroed();
        p.type_ = ty as u8;
        p.validation_type = bindings::nla_policy_validation_NLA_VALIDATE_MAX as u8;
        p.__bindgen_anon_1.__bindgen_anon_1 =
            bindings::nla_policy__bindgen_ty_1__bindgen_ty_1 { min: 0, max };
        Self(p)
    }

    /// `NLA_POLICY_FULL_RANGE(ty, range)`.
    pub const fn full_range(ty: AttrType, range: &'static Range) -> Self {
        let mut p = Self::zeroed();
        p.type_ = ty as u8;
        p.validation_type = bindings::nla_policy_validation_NLA_VALIDATE_RANGE_PTR as u8;
        p.__bindgen_anon_1.range = &range.0;
        Self(p)
    }

    /// `NLA_POLICY_MIN_LEN(len)`: binary of at least `len` bytes.
    pub const fn min_len(len: i16) -> Self {
        Self::min(AttrType::Binary, len)
    }

    /// `{ .type = NLA_NUL_STRING, .len = max_len }`: a string of at most
    /// `max_len` bytes before its terminating NUL.
    pub const fn nul_string(max_len: u16) -> Self {
        let mut p = Self::zeroed();
        p.type_ = bindings::NLA_NUL_STRING as u8;
        p.len = max_len;
        Self(p)
    }

    /// `NLA_POLICY_NESTED(policy)`: a nest validated with `policy`.
    pub const fn nested(policy: &'static [Policy]) -> Self {
        let mut p = Self::zeroed();
        p.type_ = bindings::NLA_NESTED as u8;
        p.len = (policy.len() - 1) as u16;
        p.__bindgen_anon_1.nested_policy = policy.as_ptr().cast();
        Self(p)
    }
}

/// One split operation (`struct genl_split_ops`): the `do` or the `dump`
/// of a command.
#[repr(transparent)]
pub struct SplitOp(bindings::genl_split_ops);

// SAFETY: Built by the `const fn`s below and never changed; the policy it
// points to is a `'static` array of `Sync` values.
unsafe impl Sync for SplitOp {}

impl SplitOp {
    /// The `do` of `cmd`: [`Family::doit`], after the attributes were
    /// validated with `policy` (`None`: the request has none).
    pub const fn doit<F: Family>(cmd: u8, policy: Option<&'static [Policy]>, flags: u8) -> Self {
        // SAFETY: All-zero is a valid `genl_split_ops`.
        let mut op: bindings::genl_split_ops = unsafe { core::mem::zeroed() };
        op.cmd = cmd;
        op.flags = flags | bindings::GENL_CMD_CAP_DO as u8;
        if let Some(policy) = policy {
            op.policy = policy.as_ptr().cast();
            op.maxattr = (policy.len() - 1) as u32;
        }
        op.__bindgen_anon_1.__bindgen_anon_1 =
            bindings::genl_split_ops__bindgen_ty_1__bindgen_ty_1 {
                pre_doit: None,
                doit: Some(Adapter::<F>::doit),
                post_doit: None,
            };
        Self(op)
    }

    /// The `dump` of `cmd`: [`Family::dumpit`].
    pub const fn dumpit<F: Family>(cmd: u8, flags: u8) -> Self {
        // SAFETY: All-zero is a valid `genl_split_ops`.
        let mut op: bindings::genl_split_ops = unsafe { core::mem::zeroed() };
        op.cmd = cmd;
        op.flags = flags | bindings::GENL_CMD_CAP_DUMP as u8;
        op.__bindgen_anon_1.__bindgen_anon_2 =
            bindings::genl_split_ops__bindgen_ty_1__bindgen_ty_2 {
                start: None,
                dumpit: Some(Adapter::<F>::dumpit),
                done: None,
            };
        Self(op)
    }

    fn is_do(&self) -> bool {
        self.0.flags & bindings::GENL_CMD_CAP_DO as u8 != 0
    }
}

/// A multicast group (`struct genl_multicast_group`).
#[repr(transparent)]
pub struct McGroup(bindings::genl_multicast_group);

impl McGroup {
    /// The group `name` (shorter than 16 bytes, no NUL).
    pub const fn new(bytes: &'static [u8]) -> Self {
        assert!(bytes.len() < 16);
        let mut g = bindings::genl_multicast_group {
            name: [0; 16],
            flags: 0,
        };
        let mut i = 0;
        while i < bytes.len() {
            g.name[i] = bytes[i] as _;
            i += 1;
        }
        Self(g)
    }
}

/// What the kernel keeps of a registered family in static memory (the
/// `struct genl_family`, where it writes the family's id and multicast
/// offset); a `static` of the implementing module.
pub struct FamilyStatic {
    family: Opaque<bindings::genl_family>,
    /// Set by [`Registration::register`] before it writes `family`, cleared
    /// in its `Drop` after unregistering: at most one registration.
    claimed: AtomicBool,
    /// Registered, and not about to be unregistered: [`multicast`] checks it
    /// under RCU.
    live: AtomicBool,
}

// SAFETY: `family` is written only by `Registration::register` after it won
// `claimed`, before handing it to the kernel, and changed by the kernel only
// under its genl lock; we read it only while registered (`live`, seen under
// RCU, or from a callback of the family). The flags are atomic.
unsafe impl Sync for FamilyStatic {}

impl FamilyStatic {
    /// Storage not registered yet.
    pub const fn new() -> Self {
        Self {
            family: Opaque::uninit(),
            claimed: AtomicBool::new(false),
            live: AtomicBool::new(false),
        }
    }

    fn as_ptr(&self) -> *mut bindings::genl_family {
        self.family.get()
    }
}

impl Default for FamilyStatic {
    fn default() -> Self {
        Self::new()
    }
}

/// A generic netlink family: its static description and its handlers.
///
/// The family is registered `netnsok` (requests are served in every network
/// namespace, in the requester's) and with `parallel_ops` (no genl mutex
/// around the handlers: they do their own locking).
pub trait Family: Sized + 'static {
    /// The family's name (`GENL_NAMSIZ`: shorter than 16 bytes).
    const NAME: &'static CStr;
    /// The family's version.
    const VERSION: u32;
    /// The operations, as `ynl-gen-c.py` lists them.
    const OPS: &'static [SplitOp];
    /// The multicast groups, indexed by the numbers [`multicast`] takes.
    const MCGRPS: &'static [McGroup];

    /// The static memory of the registration.
    fn statics() -> &'static FamilyStatic;

    /// Serves a `do` request of command `cmd` (process context, may sleep).
    /// An error is reported to the requester, with the extack set on `req`.
    fn doit(cmd: u8, req: &mut Request<'_>) -> Result;

    /// Fills one part of a dump of command `cmd` (process context, may
    /// sleep); called again as long as it writes entries.
    fn dumpit(cmd: u8, dump: &mut Dump<'_>) -> Result;
}

/// A registered generic netlink family.
///
/// # Invariants
///
/// `F::statics().family` is registered with the kernel from `register`
/// until `Drop`.
pub struct Registration<F: Family> {
    _p: PhantomData<F>,
}

// SAFETY: The registration is only created and dropped.
unsafe impl<F: Family> Send for Registration<F> {}
// SAFETY: No method reads or writes through `&self`.
unsafe impl<F: Family> Sync for Registration<F> {}

impl<F: Family> Registration<F> {
    /// Registers the family (`genl_register_family`). `Err(EBUSY)` if it is
    /// registered already.
    pub fn register(module: &'static ThisModule) -> Result<Self> {
        let statics = F::statics();
        if statics
            .claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(EBUSY);
        }
        let name = F::NAME.as_bytes();
        if name.len() >= 16 || F::OPS.len() > u8::MAX as usize || F::MCGRPS.len() > u8::MAX as usize
        {
            statics.claimed.store(false, Ordering::Release);
            return Err(EINVAL);
        }
        let mut family = bindings::genl_family {
            version: F::VERSION,
            split_ops: F::OPS.as_ptr().cast(),
            n_split_ops: F::OPS.len() as u8,
            mcgrps: F::MCGRPS.as_ptr().cast(),
            n_mcgrps: F::MCGRPS.len() as u8,
            module: module.as_ptr().cast(),
            ..Default::default()
        };
        family._bitfield_1 = bindings::genl_family::new_bitfield_1(1, 1);
        for (d, s) in family.name.iter_mut().zip(name) {
            *d = *s as _;
        }
        // SAFETY: We won `claimed`, so no other registration writes it, and
        // the kernel does not know it (not registered).
        unsafe { statics.as_ptr().write(family) };
        // SAFETY: `family` is in static memory, filled above; its ops,
        // policies and groups are `'static`.
        let err = unsafe { bindings::genl_register_family(statics.as_ptr()) };
        if err != 0 {
            statics.claimed.store(false, Ordering::Release);
            return Err(Error::from_errno(err));
        }
        statics.live.store(true, Ordering::Release);
        // INVARIANT: Registered above.
        Ok(Self { _p: PhantomData })
    }
}

impl<F: Family> Drop for Registration<F> {
    fn drop(&mut self) {
        let statics = F::statics();
        // No new event after the grace period: [`multicast`] checks `live`
        // under RCU.
        statics.live.store(false, Ordering::Release);
        // SAFETY: Process context (module exit or init's failure path).
        unsafe { bindings::synchronize_rcu() };
        // SAFETY: By the type invariant the family is registered. This waits
        // for the requests and dumps under way (`genl_lock_all`).
        unsafe { bindings::genl_unregister_family(statics.as_ptr()) };
        statics.claimed.store(false, Ordering::Release);
    }
}

/// One attribute of a request: its header and payload, validated by the
/// operation's policy.
#[derive(Clone, Copy)]
pub struct Attr<'a> {
    raw: &'a [u8],
}

const NLA_HDRLEN: usize = 4;

impl<'a> Attr<'a> {
    /// The attribute at `nla`.
    ///
    /// # Safety
    ///
    /// `nla` points to an attribute whose `nla_len` bytes (at least the
    /// header) are valid for reads during `'a`.
    unsafe fn from_raw(nla: *const bindings::nlattr) -> Self {
        // SAFETY: The header is valid for reads (the caller's guarantee).
        let len = usize::from(unsafe { (*nla).nla_len });
        // SAFETY: The attribute's `len` bytes are valid during `'a`.
        let raw = unsafe { core::slice::from_raw_parts(nla.cast::<u8>(), len) };
        Self { raw }
    }

    /// The attribute's type, flags masked off.
    pub fn kind(&self) -> u16 {
        u16::from_ne_bytes([self.raw[2], self.raw[3]]) & 0x3fff
    }

    /// The payload.
    pub fn bytes(&self) -> &'a [u8] {
        &self.raw[NLA_HDRLEN.min(self.raw.len())..]
    }

    fn array<const N: usize>(&self) -> Result<[u8; N]> {
        self.bytes().try_into().map_err(|_| EINVAL)
    }

    /// A `u8` payload.
    pub fn u8(&self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A `u16` payload (host order).
    pub fn u16(&self) -> Result<u16> {
        Ok(u16::from_ne_bytes(self.array()?))
    }

    /// A `u32` payload (host order).
    pub fn u32(&self) -> Result<u32> {
        Ok(u32::from_ne_bytes(self.array()?))
    }

    /// A `u64` payload (host order).
    pub fn u64(&self) -> Result<u64> {
        Ok(u64::from_ne_bytes(self.array()?))
    }

    /// A NUL-terminated string's bytes, without the NUL.
    pub fn string(&self) -> &'a [u8] {
        let b = self.bytes();
        match b.iter().position(|&c| c == 0) {
            Some(n) => &b[..n],
            None => b,
        }
    }

    /// The attributes of a nest, in order (the nest's policy validated them).
    pub fn nested(&self) -> Nested<'a> {
        Nested { rest: self.bytes() }
    }

    fn as_ptr(&self) -> *const bindings::nlattr {
        self.raw.as_ptr().cast()
    }
}

/// The attributes of a nest.
pub struct Nested<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Nested<'a> {
    type Item = Attr<'a>;

    fn next(&mut self) -> Option<Attr<'a>> {
        if self.rest.len() < NLA_HDRLEN {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([self.rest[0], self.rest[1]]));
        if len < NLA_HDRLEN || len > self.rest.len() {
            return None;
        }
        let attr = Attr {
            raw: &self.rest[..len],
        };
        let aligned = (len + 3) & !3;
        self.rest = &self.rest[aligned.min(self.rest.len())..];
        Some(attr)
    }
}

impl<'a> Nested<'a> {
    /// The last attribute of type `kind` in the nest.
    pub fn find(self, kind: u16) -> Option<Attr<'a>> {
        self.filter(|a| a.kind() == kind).last()
    }
}

/// A `do` request (`struct genl_info`), in the requester's context.
///
/// # Invariants
///
/// `info` is the live `genl_info` of the `doit` call that made this value,
/// whose `attrs` has `maxattr + 1` entries.
pub struct Request<'a> {
    info: *mut bindings::genl_info,
    maxattr: u32,
    family: &'static FamilyStatic,
    _p: PhantomData<&'a ()>,
}

impl<'a> Request<'a> {
    /// The network namespace of the request (the requester's socket's).
    pub fn net(&self) -> &'a Net {
        // SAFETY: By the type invariant `info` is live. The namespace is
        // that of the requesting netlink socket, which holds a reference on
        // it and stays alive during the call (`netlink_sendmsg` holds the
        // socket), so it is alive during `'a`, the `doit` call.
        unsafe { Net::from_raw(bindings::sg_genl_info_net(self.info)) }
    }

    /// Every attribute of the request, in order (a repeated one, a
    /// `multi-attr`, each time; the policy validated them).
    pub fn attrs(&self) -> Nested<'a> {
        let mut len: i32 = 0;
        // SAFETY: By the type invariant `info` is live: its `nlhdr` is the
        // request's message, whose attributes follow the genetlink header
        // (the family has no header of its own) for `len` bytes.
        let p = unsafe { bindings::sg_genl_info_attrs(self.info, &mut len) };
        let len = usize::try_from(len).unwrap_or(0);
        if p.is_null() || len == 0 {
            return Nested { rest: &[] };
        }
        // SAFETY: The `len` bytes at `p` are the request's, in its buffer,
        // which lives (unchanged) during the call, `'a`.
        let rest = unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len) };
        Nested { rest }
    }

    /// The attribute of type `kind`, if the request has it.
    pub fn attr(&self, kind: u16) -> Option<Attr<'a>> {
        if u32::from(kind) > self.maxattr {
            return None;
        }
        // SAFETY: By the type invariant `info` is live and `attrs`, when not
        // null, has `maxattr + 1` entries; `kind` is in bounds.
        let nla = unsafe {
            let attrs = (*self.info).attrs;
            if attrs.is_null() {
                return None;
            }
            *attrs.add(usize::from(kind))
        };
        if nla.is_null() {
            return None;
        }
        // SAFETY: The genl core parsed and validated the attribute in the
        // request's buffer, which lives during the call.
        Some(unsafe { Attr::from_raw(nla) })
    }

    /// The attribute of type `kind`; when missing, reports it as
    /// `GENL_REQ_ATTR_CHECK` does (the missing type in the extack) with
    /// `msg`, and fails with `EINVAL`.
    pub fn require(&mut self, kind: u16, msg: &'static CStr) -> Result<Attr<'a>> {
        match self.attr(kind) {
            Some(a) => Ok(a),
            None => {
                let extack = self.extack();
                if !extack.is_null() {
                    // SAFETY: A non-null extack of a live `genl_info` is the
                    // request's, written only by its handler during the call.
                    unsafe {
                        (*extack).miss_nest = ptr::null();
                        (*extack).miss_type = kind;
                    }
                }
                Err(self.fail(msg, None, EINVAL))
            }
        }
    }

    /// Sets the extack message (`NL_SET_ERR_MSG`) and the offending
    /// attribute (`NL_SET_BAD_ATTR`) and returns `err`, for `Err(...)`.
    pub fn fail(&mut self, msg: &'static CStr, attr: Option<&Attr<'_>>, err: Error) -> Error {
        let extack = self.extack();
        if !extack.is_null() {
            // SAFETY: As in `require`; `msg` is static, as `_msg` must be.
            unsafe {
                (*extack)._msg = msg.as_char_ptr();
                if let Some(a) = attr {
                    (*extack).bad_attr = a.as_ptr();
                }
            }
        }
        err
    }

    fn extack(&self) -> *mut bindings::netlink_ext_ack {
        // SAFETY: By the type invariant `info` is live.
        unsafe { (*self.info).extack }
    }

    /// A reply to the request, of command `cmd` (`genlmsg_new`, `genlmsg_put_reply`).
    pub fn reply(&self, cmd: u8) -> Result<Msg> {
        let mut msg = Msg::alloc()?;
        // SAFETY: `msg.w.skb` is a fresh message; `info` is live; the family
        // is registered (we serve one of its requests).
        let hdr = unsafe {
            bindings::sg_genlmsg_put_reply(msg.w.skb, self.info, self.family.as_ptr(), cmd)
        };
        if hdr.is_null() {
            return Err(emsgsize());
        }
        msg.hdr = hdr;
        Ok(msg)
    }

    /// Sends `msg` to the requester (`genlmsg_end`, `genlmsg_reply`).
    pub fn send(&self, msg: Msg) -> Result {
        let skb = msg.finish();
        // SAFETY: `skb` is a finished message that we own, consumed by the
        // call even on failure; `info` is live.
        kernel::error::to_result(unsafe { bindings::sg_genlmsg_reply(skb, self.info) })
    }
}

/// Writes attributes into a message.
///
/// # Invariants
///
/// `skb` is a live netlink message that the holder may append to.
pub struct Writer {
    skb: *mut bindings::sk_buff,
}

impl Writer {
    /// Appends an attribute of type `kind` with payload `data` (`nla_put`);
    /// `Err(emsgsize())` when the message is full.
    pub fn put(&mut self, kind: u16, data: &[u8]) -> Result {
        let len = i32::try_from(data.len()).map_err(|_| emsgsize())?;
        // SAFETY: By the type invariant `skb` is live; `data` is valid for
        // `len` bytes.
        let err = unsafe { bindings::nla_put(self.skb, kind.into(), len, data.as_ptr().cast()) };
        kernel::error::to_result(err)
    }

    /// A `u8` attribute.
    pub fn put_u8(&mut self, kind: u16, v: u8) -> Result {
        self.put(kind, &[v])
    }

    /// A `u16` attribute (host order).
    pub fn put_u16(&mut self, kind: u16, v: u16) -> Result {
        self.put(kind, &v.to_ne_bytes())
    }

    /// A `u32` attribute (host order).
    pub fn put_u32(&mut self, kind: u16, v: u32) -> Result {
        self.put(kind, &v.to_ne_bytes())
    }

    /// A `u64` attribute (host order). The spec has no pad attribute, so it
    /// is put as 8 bytes, 4-aligned, as `nla_put_u64_64bit` does where
    /// unaligned access is cheap (x86).
    pub fn put_u64(&mut self, kind: u16, v: u64) -> Result {
        self.put(kind, &v.to_ne_bytes())
    }

    /// A NUL-terminated string attribute.
    pub fn put_string(&mut self, kind: u16, s: &[u8]) -> Result {
        let len = i32::try_from(s.len() + 1).map_err(|_| emsgsize())?;
        // SAFETY: By the type invariant `skb` is live.
        let nla = unsafe { bindings::nla_reserve(self.skb, kind.into(), len) };
        if nla.is_null() {
            return Err(emsgsize());
        }
        // SAFETY: `nla_reserve` reserved `len` = `s.len() + 1` payload bytes
        // after the header (zeroing the padding only), which we fill.
        unsafe {
            let data = nla.cast::<u8>().add(NLA_HDRLEN);
            ptr::copy_nonoverlapping(s.as_ptr(), data, s.len());
            *data.add(s.len()) = 0;
        }
        Ok(())
    }

    /// A nest of type `kind` with the attributes that `f` writes
    /// (`nla_nest_start`, `nla_nest_end`; `nla_nest_cancel` on failure).
    pub fn nest(&mut self, kind: u16, f: impl FnOnce(&mut Writer) -> Result) -> Result {
        // SAFETY: By the type invariant `skb` is live.
        let start = unsafe { bindings::sg_nla_nest_start(self.skb, kind.into()) };
        if start.is_null() {
            return Err(emsgsize());
        }
        match f(self) {
            // SAFETY: `start` is the nest started above in this message, the
            // last one open (`f` closes the nests it opens).
            Ok(()) => unsafe { bindings::sg_nla_nest_end(self.skb, start) },
            Err(e) => {
                // SAFETY: As above.
                unsafe { bindings::sg_nla_nest_cancel(self.skb, start) };
                return Err(e);
            }
        }
        Ok(())
    }
}

/// A message being built (a reply or an event), freed unless sent.
///
/// # Invariants
///
/// `w.skb` is a message from `genlmsg_new` that we own; `hdr` is null or
/// the header `genlmsg_put` wrote into it.
pub struct Msg {
    w: Writer,
    hdr: *mut core::ffi::c_void,
}

impl Msg {
    fn alloc() -> Result<Self> {
        // SAFETY: Process context (`GFP_KERNEL`).
        let skb = unsafe { bindings::sg_genlmsg_new() };
        if skb.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: A fresh message, ours.
        Ok(Self {
            w: Writer { skb },
            hdr: ptr::null_mut(),
        })
    }

    /// The attributes' writer.
    pub fn writer(&mut self) -> &mut Writer {
        &mut self.w
    }

    /// Ends the message (`genlmsg_end`) and hands its ownership over.
    fn finish(self) -> *mut bindings::sk_buff {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: By the type invariant `hdr` is the message's header (the
        // constructors set it before handing a `Msg` out).
        unsafe { bindings::sg_genlmsg_end(this.w.skb, this.hdr) };
        this.w.skb
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own the message.
        unsafe { bindings::sg_nlmsg_free(self.w.skb) };
    }
}

/// A part of a dump (`dumpit`): entries are written until the message is
/// full, and a cursor (in `netlink_callback->ctx`) says where the next part
/// starts.
///
/// # Invariants
///
/// `skb` and `cb` are the live arguments of the `dumpit` call that made
/// this value.
pub struct Dump<'a> {
    skb: *mut bindings::sk_buff,
    cb: *mut bindings::netlink_callback,
    family: &'static FamilyStatic,
    _p: PhantomData<&'a ()>,
}

impl Dump<'_> {
    /// The cursor: 0 at the first part, then what [`Dump::set_cursor`] stored.
    pub fn cursor(&self) -> u64 {
        // SAFETY: By the type invariant `cb` is live; `ctx` has 48 bytes,
        // zeroed by the netlink core at the dump's start.
        let ctx = unsafe { (*self.cb).__bindgen_anon_1.ctx };
        let mut b = [0u8; 8];
        b.copy_from_slice(&ctx[..8]);
        u64::from_ne_bytes(b)
    }

    /// Stores the cursor for the next part.
    pub fn set_cursor(&mut self, cursor: u64) {
        // SAFETY: As in `cursor`; the dump's callbacks run one at a time.
        let ctx = unsafe { &mut (*self.cb).__bindgen_anon_1.ctx };
        ctx[..8].copy_from_slice(&cursor.to_ne_bytes());
    }

    /// The network namespace of the dump (the requester's socket's).
    pub fn net(&self) -> &Net {
        // SAFETY: By the type invariant `skb` is live: the part being
        // filled, owned by the requesting socket (`skb->sk`), which holds a
        // reference on its namespace during the dump.
        unsafe { Net::from_raw(bindings::sg_genl_dump_net(self.skb)) }
    }

    /// Writes one entry of command `cmd` with the attributes `f` writes.
    /// `Ok(false)` when the message is full (the entry is taken back: it
    /// goes into the next part); `Err(emsgsize())` if even an empty part
    /// cannot hold it.
    pub fn entry(&mut self, cmd: u8, f: impl FnOnce(&mut Writer) -> Result) -> Result<bool> {
        // SAFETY: By the type invariant `skb` and `cb` are live; the family
        // is registered (we serve one of its dumps).
        let hdr =
            unsafe { bindings::sg_genlmsg_put_dump(self.skb, self.cb, self.family.as_ptr(), cmd) };
        let written = if hdr.is_null() {
            Err(emsgsize())
        } else {
            f(&mut Writer { skb: self.skb })
        };
        match written {
            Ok(()) => {
                // SAFETY: `hdr` is the header written above.
                unsafe { bindings::sg_genlmsg_end(self.skb, hdr) };
                Ok(true)
            }
            Err(e) if e == emsgsize() => {
                if !hdr.is_null() {
                    // SAFETY: `hdr` is the header written above.
                    unsafe { bindings::sg_genlmsg_cancel(self.skb, hdr) };
                }
                // SAFETY: By the type invariant `skb` is live.
                if unsafe { bindings::sg_skb_len(self.skb) } == 0 {
                    return Err(emsgsize());
                }
                Ok(false)
            }
            Err(e) => {
                if !hdr.is_null() {
                    // SAFETY: As above.
                    unsafe { bindings::sg_genlmsg_cancel(self.skb, hdr) };
                }
                Err(e)
            }
        }
    }
}

/// Sends an event of command `cmd` to multicast group `group` of family `F`
/// in `net` (`genlmsg_multicast_netns`), with the attributes `f` writes.
/// Process context. Nothing is sent when the family is not registered, or
/// nobody listens.
pub fn multicast<F: Family>(
    net: &Net,
    cmd: u8,
    group: u32,
    f: impl FnOnce(&mut Writer) -> Result,
) -> Result {
    if group as usize >= F::MCGRPS.len() {
        return Err(EINVAL);
    }
    let statics = F::statics();
    let mut msg = Msg::alloc()?;
    let guard = rcu::Guard::new();
    if !statics.live.load(Ordering::Acquire) {
        return Ok(());
    }
    // SAFETY: `live` seen set under RCU: the family stays registered until
    // the critical section of `guard` ends (`Drop` clears `live`, then waits
    // for a grace period before unregistering). The message is fresh.
    let hdr = unsafe { bindings::sg_genlmsg_put_event(msg.w.skb, statics.as_ptr(), cmd) };
    if hdr.is_null() {
        return Err(emsgsize());
    }
    msg.hdr = hdr;
    f(msg.writer())?;
    let skb = msg.finish();
    // SAFETY: The family is registered (see above) and `group` is one of its
    // groups; `net` is alive; the call consumes `skb`. It allocates with
    // `GFP_ATOMIC`, as we are in an RCU read-side critical section.
    let err =
        unsafe { bindings::sg_genlmsg_multicast_netns(statics.as_ptr(), net.as_ptr(), skb, group) };
    drop(guard);
    match err {
        // No listener.
        e if e == -(bindings::ESRCH as i32) => Ok(()),
        e => kernel::error::to_result(e),
    }
}

/// The callbacks that the genl core calls for a [`Family`].
struct Adapter<F: Family>(PhantomData<F>);

impl<F: Family> Adapter<F> {
    /// The `doit` of every `do` operation.
    ///
    /// # Safety
    ///
    /// Only the genl core calls it, with the request's live `skb` and `info`.
    unsafe extern "C" fn doit(
        _skb: *mut bindings::sk_buff,
        info: *mut bindings::genl_info,
    ) -> c_int {
        from_result(|| {
            // SAFETY: The genl core passes a live `info` with its header.
            let cmd = unsafe { (*(*info).genlhdr).cmd };
            // The op that the core chose: the `do` of `cmd`; its `maxattr`
            // is the length of `attrs` minus one.
            let maxattr = F::OPS
                .iter()
                .find(|op| op.0.cmd == cmd && op.is_do())
                .map_or(0, |op| op.0.maxattr);
            // INVARIANT: `info` is live during this call, its `attrs` (when
            // parsed) has `maxattr + 1` entries.
            let mut req = Request {
                info,
                maxattr,
                family: F::statics(),
                _p: PhantomData,
            };
            F::doit(cmd, &mut req)?;
            Ok(0)
        })
    }

    /// The `dumpit` of every `dump` operation.
    ///
    /// # Safety
    ///
    /// Only the netlink core calls it, for a dump of the family, with live
    /// `skb` and `cb`.
    unsafe extern "C" fn dumpit(
        skb: *mut bindings::sk_buff,
        cb: *mut bindings::netlink_callback,
    ) -> c_int {
        from_result(|| {
            // SAFETY: The request's header is a genl message of the family
            // (the core dispatched on its command).
            let cmd = unsafe { bindings::sg_genl_dump_cmd(cb) };
            // INVARIANT: The call's live arguments.
            let mut dump = Dump {
                skb,
                cb,
                family: F::statics(),
                _p: PhantomData,
            };
            F::dumpit(cmd, &mut dump)?;
            // SAFETY: `skb` is live. More than 0: call again.
            Ok(unsafe { bindings::sg_skb_len(skb) } as c_int)
        })
    }
}
