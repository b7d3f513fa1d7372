// SPDX-License-Identifier: GPL-2.0

//! Network namespaces and per-namespace state.
//!
//! C headers: [`include/net/net_namespace.h`](srctree/include/net/net_namespace.h),
//! [`include/net/netns/generic.h`](srctree/include/net/netns/generic.h).

use super::{
    bindings, rcu,
    skb::{Family, SkBuff, Verdict},
};
use core::{
    marker::PhantomData,
    ptr,
    sync::atomic::{AtomicBool, AtomicPtr, Ordering},
};
use kernel::{error::to_result, prelude::*, str::CStr, types::Opaque};

/// The priority of the filter table's hooks (`NF_IP_PRI_FILTER`).
pub const NF_IP_PRI_FILTER: i32 = bindings::nf_ip_hook_priorities_NF_IP_PRI_FILTER;

/// The priority of source NAT at LOCAL_IN and POST_ROUTING (`NF_IP_PRI_NAT_SRC`).
pub const NF_IP_PRI_NAT_SRC: i32 = bindings::nf_ip_hook_priorities_NF_IP_PRI_NAT_SRC;

/// A network namespace (`struct net`).
///
/// # Invariants
///
/// Only reached through references whose lifetime the creator vouched for
/// (see [`Net::from_raw`]), during which the namespace is alive.
#[repr(transparent)]
pub struct Net(Opaque<bindings::net>);

impl Net {
    /// Creates a reference to a [`Net`] from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a `struct net` that stays alive for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::net) -> &'a Self {
        // SAFETY: `Net` is `repr(transparent)` over `struct net`, alive for
        // `'a` as the caller guarantees.
        unsafe { &*ptr.cast() }
    }

    /// The raw pointer.
    pub fn as_ptr(&self) -> *mut bindings::net {
        self.0.get()
    }

    /// `net.ipv4.tcp_syncookies` (2: every SYN is answered with a cookie).
    pub fn tcp_syncookies(&self) -> u8 {
        // SAFETY: By the type invariant the namespace is alive; the helper
        // reads the sysctl with `READ_ONCE`.
        unsafe { bindings::sg_net_tcp_syncookies(self.as_ptr()) }
    }

    /// The namespace's `/proc/net` directory.
    pub(crate) fn proc_net(&self) -> *mut bindings::proc_dir_entry {
        // SAFETY: By the type invariant the namespace is alive.
        unsafe { (*self.as_ptr()).proc_net }
    }
}

impl PartialEq for Net {
    fn eq(&self, other: &Self) -> bool {
        ptr::eq(self.as_ptr(), other.as_ptr())
    }
}

/// What the kernel keeps of our per-namespace registration in static memory:
/// the slot id (`pernet_operations.id`) and the netfilter hook ops, which
/// every namespace shares (as IPVS shares its own).
pub struct PernetStatic {
    id: Opaque<u32>,
    hooks: Opaque<[bindings::nf_hook_ops; 2]>,
    /// Destination NAT hooks: IPv4 and IPv6, PRE_ROUTING and LOCAL_OUT.
    nat_hooks: Opaque<[bindings::nf_hook_ops; 4]>,
    /// Conntrack and NAT functions, when the kernel has them.
    nat: Opaque<bindings::sg_nat_ops>,
    nat_ok: AtomicBool,
}

// SAFETY: Written only by `Pernet::register` before it registers anything
// that reads it, and never again while registered; then only read.
unsafe impl Sync for PernetStatic {}

impl PernetStatic {
    /// Storage not registered yet.
    pub const fn new() -> Self {
        Self {
            id: Opaque::new(0),
            hooks: Opaque::uninit(),
            nat_hooks: Opaque::uninit(),
            nat: Opaque::uninit(),
            nat_ok: AtomicBool::new(false),
        }
    }

    fn id(&self) -> u32 {
        // SAFETY: See the `Sync` impl: stable once registered.
        unsafe { *self.id.get() }
    }

    fn hooks(&self) -> *const bindings::nf_hook_ops {
        self.hooks.get().cast()
    }

    fn nat_hook(&self, i: usize) -> *const bindings::nf_hook_ops {
        // SAFETY: In bounds of the array of 4.
        unsafe { self.nat_hooks.get().cast::<bindings::nf_hook_ops>().add(i) }
    }

    /// The NAT functions, if the kernel has them.
    fn nat(&self) -> Option<&bindings::sg_nat_ops> {
        // SAFETY: Written before `nat_ok` was set (release), stable then.
        self.nat_ok
            .load(Ordering::Acquire)
            .then(|| unsafe { &*self.nat.get() })
    }
}

type Reg = unsafe extern "C" fn(*mut bindings::net, *const bindings::nf_hook_ops) -> i32;
type Unreg = unsafe extern "C" fn(*mut bindings::net, *const bindings::nf_hook_ops);

/// Where a new connection's destination is to be mapped.
#[derive(Clone, Copy, Debug)]
pub struct NatTarget {
    /// The new address (network order, IPv4 in the first 4 bytes), or keep it.
    pub addr: Option<[u8; 16]>,
    /// The new port, host order.
    pub port: u16,
}

/// Our part of each namespace's `net_generic` memory.
#[repr(C)]
struct Slot<T> {
    state: AtomicPtr<T>,
    /// Destination NAT hooks registered (under `sg_nat_lock`).
    nat: AtomicBool,
}

/// State that sockgroup keeps per network namespace, with what it serves:
/// a netfilter hook at LOCAL_IN (IPv4 and IPv6) and a file in `/proc/net`.
pub trait PernetState: Send + Sync + Sized + 'static {
    /// The static memory of the registration; a `static` of the implementing module.
    fn statics() -> &'static PernetStatic;

    /// Creates the state of a new namespace (process context).
    fn new(net: &Net) -> Result<Pin<KBox<Self>>>;

    /// Priority of the LOCAL_IN hook (`NF_IP_PRI_*`).
    const LOCAL_IN_PRIORITY: i32;

    /// The LOCAL_IN hook: softirq, under RCU; `family` is the packet's.
    fn local_in(&self, net: &Net, skb: &SkBuff, family: Family) -> Verdict;

    /// The name of the file in `/proc/net`.
    const PROC_NAME: &'static CStr;

    /// Writes the file's content (process context, under RCU: no sleeping).
    fn show(&self, out: &mut SeqFile) -> core::fmt::Result;

    /// The destination of a new connection's first packet, at PRE_ROUTING or
    /// LOCAL_OUT, once [`Pernet::enable_nat`] turned NAT on for the namespace
    /// (softirq or process context, under RCU). `Some` maps it with conntrack NAT.
    fn nat_dst(&self, net: &Net, skb: &SkBuff, family: Family) -> Option<NatTarget>;
}

/// Writes into a `seq_file` (`seq_write`), with no allocation and no sleeping.
pub struct SeqFile(*mut bindings::seq_file);

impl core::fmt::Write for SeqFile {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // SAFETY: `self.0` is the live `seq_file` of the `show` call that
        // made this value, and `s` is valid for `s.len()` bytes.
        match unsafe { bindings::seq_write(self.0, s.as_ptr().cast(), s.len()) } {
            0 => Ok(()),
            _ => Err(core::fmt::Error),
        }
    }
}

/// Per-namespace state registered with `register_pernet_subsys`.
///
/// Each namespace's slot (`net_generic`) holds a pointer to its `T`,
/// published once the state is complete and cleared, with a grace period
/// before the state is dropped, when the namespace goes away.
///
/// # Invariants
///
/// `ops` is registered from `new` until `Drop`.
pub struct Pernet<T: PernetState> {
    ops: Pin<KBox<Opaque<bindings::pernet_operations>>>,
    _p: PhantomData<T>,
}

/// The callbacks that the kernel calls for a [`PernetState`].
struct Callbacks<T: PernetState>(PhantomData<T>);

impl<T: PernetState> Callbacks<T> {
    fn hook_op(family: Family) -> bindings::nf_hook_ops {
        bindings::nf_hook_ops {
            hook: Some(Self::hook),
            pf: family.nfproto(),
            hooknum: bindings::nf_inet_hooks_NF_INET_LOCAL_IN,
            priority: T::LOCAL_IN_PRIORITY,
            ..Default::default()
        }
    }

    /// The netfilter hook.
    ///
    /// # Safety
    ///
    /// Only netfilter calls it, with a live packet and hook state.
    unsafe extern "C" fn hook(
        _priv: *mut core::ffi::c_void,
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
    ) -> u32 {
        // SAFETY: netfilter passes a live `nf_hook_state` whose `net` is the
        // namespace the packet is in, alive during the hook.
        let (net, pf) = unsafe { (Net::from_raw((*state).net), (*state).pf) };
        // SAFETY: netfilter passes a live `sk_buff` that we may modify.
        let skb = unsafe { SkBuff::from_raw(skb) };
        let guard = rcu::Guard::new();
        match (Pernet::<T>::get(net, &guard), Family::from_nfproto(pf)) {
            (Some(state), Some(family)) => state.local_in(net, skb, family).raw(),
            _ => Verdict::Accept.raw(),
        }
    }

    fn nat_op(family: Family, hooknum: u32) -> bindings::nf_hook_ops {
        bindings::nf_hook_ops {
            hook: Some(Self::nat_hook),
            pf: family.nfproto(),
            hooknum,
            priority: bindings::nf_ip_hook_priorities_NF_IP_PRI_NAT_DST,
            ..Default::default()
        }
    }

    /// The destination NAT function, called by the NAT core for a new
    /// connection whose destination is not mapped yet.
    ///
    /// # Safety
    ///
    /// Only the NAT core calls it, with a live packet and hook state.
    unsafe extern "C" fn nat_hook(
        _priv: *mut core::ffi::c_void,
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
    ) -> u32 {
        // SAFETY: As in `hook`.
        let (net, pf) = unsafe { (Net::from_raw((*state).net), (*state).pf) };
        // SAFETY: The packet is alive and ours during the call.
        let ct = unsafe { bindings::sg_nf_ct_new(skb) };
        let Some(ops) = T::statics().nat() else {
            return bindings::NF_ACCEPT;
        };
        if ct.is_null() {
            return bindings::NF_ACCEPT;
        }
        // SAFETY: As above.
        let skb_ref = unsafe { SkBuff::from_raw(skb) };
        let guard = rcu::Guard::new();
        let target = match (Pernet::<T>::get(net, &guard), Family::from_nfproto(pf)) {
            (Some(state), Some(family)) => state.nat_dst(net, skb_ref, family),
            _ => None,
        };
        match target {
            // SAFETY: `ct` is the packet's new, unconfirmed connection;
            // `addr` has 16 bytes; the NAT core called us where a
            // destination mapping is set up.
            Some(t) => unsafe {
                bindings::sg_nat_setup_dst(
                    ops,
                    ct,
                    pf,
                    t.addr.unwrap_or_default().as_ptr(),
                    t.addr.is_some(),
                    t.port,
                )
            },
            None => bindings::NF_ACCEPT,
        }
    }

    /// The `show` of `/proc/net/<PROC_NAME>`.
    ///
    /// # Safety
    ///
    /// Only procfs calls it, with a `seq_file` of `proc_create_net_single`.
    unsafe extern "C" fn show(seq: *mut bindings::seq_file, _v: *mut core::ffi::c_void) -> i32 {
        // SAFETY: procfs calls `show` with a live `seq_file` opened by
        // `proc_create_net_single`, which holds a reference on the namespace.
        let net = unsafe { Net::from_raw(bindings::sg_seq_file_single_net(seq)) };
        let guard = rcu::Guard::new();
        if let Some(state) = Pernet::<T>::get(net, &guard) {
            // A full buffer is not an error: seq_file retries with a larger one.
            let _ = state.show(&mut SeqFile(seq));
        }
        0
    }
}

// SAFETY: The registration is only created and dropped; the kernel's use of
// `ops` is serialized by its pernet mutex.
unsafe impl<T: PernetState> Send for Pernet<T> {}
// SAFETY: No method reads or writes through `&self`.
unsafe impl<T: PernetState> Sync for Pernet<T> {}

impl<T: PernetState> Pernet<T> {
    /// Registers, which creates `T` for every existing namespace.
    pub fn register() -> Result<Self> {
        let statics = T::statics();
        let hooks = [
            Callbacks::<T>::hook_op(Family::Inet),
            Callbacks::<T>::hook_op(Family::Inet6),
        ];
        // SAFETY: Nothing reads the hook ops before `register_pernet_subsys`
        // below, and no registration of this `T` exists (the module makes one).
        unsafe { statics.hooks.get().write(hooks) };
        let (pre, out) = (
            bindings::nf_inet_hooks_NF_INET_PRE_ROUTING,
            bindings::nf_inet_hooks_NF_INET_LOCAL_OUT,
        );
        let nat_hooks = [
            Callbacks::<T>::nat_op(Family::Inet, pre),
            Callbacks::<T>::nat_op(Family::Inet, out),
            Callbacks::<T>::nat_op(Family::Inet6, pre),
            Callbacks::<T>::nat_op(Family::Inet6, out),
        ];
        // SAFETY: As above, nothing reads them yet.
        unsafe { statics.nat_hooks.get().write(nat_hooks) };
        // SAFETY: `nat` is ours to fill; on failure the helper leaves it empty.
        if unsafe { bindings::sg_nat_ops_get(statics.nat.get()) } {
            statics.nat_ok.store(true, Ordering::Release);
        }
        let ops = KBox::pin(
            Opaque::new(bindings::pernet_operations {
                init: Some(Self::init),
                exit: Some(Self::exit),
                id: statics.id.get(),
                size: core::mem::size_of::<Slot<T>>(),
                ..Default::default()
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: `ops` is pinned and stays alive until `Drop` unregisters it.
        to_result(unsafe { bindings::register_pernet_subsys(ops.get()) })?;
        // INVARIANT: Registered.
        Ok(Self {
            ops,
            _p: PhantomData,
        })
    }

    fn slots<'a>(net: &'a Net) -> &'a Slot<T> {
        // SAFETY: After registration every live namespace has a zeroed slot
        // of ours, of `Slot`'s size and pointer-aligned, that lives as long
        // as it; all-zero is a valid `Slot` (null, false).
        unsafe { &*bindings::sg_net_generic(net.as_ptr(), T::statics().id()).cast::<Slot<T>>() }
    }

    fn slot<'a>(net: &'a Net) -> &'a AtomicPtr<T> {
        &Self::slots(net).state
    }

    /// Turns destination NAT on for `net` (process context; idempotent):
    /// conntrack for IPv4 and IPv6, and our NAT function at PRE_ROUTING and
    /// LOCAL_OUT. It stays on until the namespace or the module goes.
    /// `Err(ENOPKG)` when the kernel has no conntrack or NAT.
    pub fn enable_nat(net: &Net) -> Result {
        let statics = T::statics();
        let ops = statics.nat().ok_or_else(super::errno::enopkg)?;
        let slot = Self::slots(net);
        // SAFETY: Process context; paired with the unlock below.
        unsafe { bindings::sg_nat_lock() };
        let result = if slot.nat.load(Ordering::Acquire) {
            Ok(())
        } else {
            // SAFETY: The functions came from symbol_get and are held; the
            // namespace is alive (the caller's socket holds it); the hook ops
            // are static; `sg_nat_lock` serializes with `disable_nat`.
            let r = unsafe { Self::nat_on(ops, net) };
            if r.is_ok() {
                slot.nat.store(true, Ordering::Release);
            }
            r
        };
        // SAFETY: Paired with the lock above.
        unsafe { bindings::sg_nat_unlock() };
        result
    }

    /// Turns NAT on; see `enable_nat`.
    ///
    /// # Safety
    ///
    /// As in `enable_nat`: held functions, live namespace, under `sg_nat_lock`.
    unsafe fn nat_on(ops: &bindings::sg_nat_ops, net: &Net) -> Result {
        let statics = T::statics();
        let (v4, v6) = (bindings::NFPROTO_IPV4 as u8, bindings::NFPROTO_IPV6 as u8);
        let (get, put) = (
            ops.ct_netns_get.ok_or(EINVAL)?,
            ops.ct_netns_put.ok_or(EINVAL)?,
        );
        let (reg4, unreg4) = (
            ops.v4_register.ok_or(EINVAL)?,
            ops.v4_unregister.ok_or(EINVAL)?,
        );
        let (reg6, unreg6) = (
            ops.v6_register.ok_or(EINVAL)?,
            ops.v6_unregister.ok_or(EINVAL)?,
        );
        let n = net.as_ptr();
        // SAFETY: The caller's guarantees hold for every call below; each
        // step is undone in reverse order when a later one fails.
        unsafe {
            to_result(get(n, v4))?;
            if let Err(e) = to_result(get(n, v6)) {
                put(n, v4);
                return Err(e);
            }
            let steps: [(Reg, Unreg, usize); 4] = [
                (reg4, unreg4, 0),
                (reg4, unreg4, 1),
                (reg6, unreg6, 2),
                (reg6, unreg6, 3),
            ];
            for (i, (reg, _, hook)) in steps.iter().enumerate() {
                if let Err(e) = to_result(reg(n, statics.nat_hook(*hook))) {
                    for (_, unreg, hook) in steps[..i].iter().rev() {
                        unreg(n, statics.nat_hook(*hook));
                    }
                    put(n, v6);
                    put(n, v4);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Undoes `enable_nat` for a namespace that goes away.
    fn disable_nat(net: &Net) {
        let slot = Self::slots(net);
        let Some(ops) = T::statics().nat() else {
            return;
        };
        // SAFETY: Process context (pernet exit); paired with the unlock below.
        unsafe { bindings::sg_nat_lock() };
        if slot.nat.swap(false, Ordering::AcqRel) {
            let statics = T::statics();
            let n = net.as_ptr();
            let (v4, v6) = (bindings::NFPROTO_IPV4 as u8, bindings::NFPROTO_IPV6 as u8);
            // SAFETY: `enable_nat` registered exactly these, with these
            // functions, which are still held.
            unsafe {
                if let (Some(unreg4), Some(unreg6), Some(put)) =
                    (ops.v4_unregister, ops.v6_unregister, ops.ct_netns_put)
                {
                    unreg6(n, statics.nat_hook(3));
                    unreg6(n, statics.nat_hook(2));
                    unreg4(n, statics.nat_hook(1));
                    unreg4(n, statics.nat_hook(0));
                    put(n, v6);
                    put(n, v4);
                }
            }
        }
        // SAFETY: Paired with the lock above.
        unsafe { bindings::sg_nat_unlock() };
    }

    /// The state of `net`, for the read-side critical section `_guard`.
    ///
    /// `None` before the namespace's state is complete or after it began to go.
    pub fn get<'a>(net: &'a Net, _guard: &'a rcu::Guard) -> Option<&'a T> {
        let p = Self::slot(net).load(Ordering::Acquire);
        // SAFETY: A non-null slot points to a `T` from `KBox::into_raw` that
        // `exit` drops only after clearing the slot and a grace period.
        unsafe { p.as_ref() }
    }

    /// The pernet `init`.
    ///
    /// # Safety
    ///
    /// Only the pernet core calls it, with a namespace being set up.
    unsafe extern "C" fn init(net: *mut bindings::net) -> i32 {
        // SAFETY: The kernel calls `init` with a live namespace.
        let net = unsafe { Net::from_raw(net) };
        let state = match T::new(net) {
            Ok(state) => state,
            Err(e) => return e.to_errno(),
        };
        // SAFETY: The state is never moved out of the box: it is turned
        // back into a pinned box in `exit`.
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(state) });
        Self::slot(net).store(raw, Ordering::Release);
        let ops = T::statics().hooks();
        // SAFETY: `ops` points to two hook ops in static memory; netfilter
        // keeps the pointer until `exit` unregisters them.
        let err = unsafe { bindings::nf_register_net_hooks(net.as_ptr(), ops, 2) };
        if err != 0 {
            Self::drop_state(net);
            return err;
        }
        // SAFETY: `PROC_NAME` is a static C string; `show` reads this
        // namespace's state through its slot, which outlives the entry.
        let entry = unsafe {
            bindings::proc_create_net_single(
                T::PROC_NAME.as_char_ptr(),
                0o444,
                net.proc_net(),
                Some(Callbacks::<T>::show),
                ptr::null_mut(),
            )
        };
        if entry.is_null() {
            // SAFETY: Registered just above, with the same arguments.
            unsafe { bindings::nf_unregister_net_hooks(net.as_ptr(), ops, 2) };
            Self::drop_state(net);
            return ENOMEM.to_errno();
        }
        0
    }

    /// The pernet `exit`.
    ///
    /// # Safety
    ///
    /// Only the pernet core calls it, with a namespace going away.
    unsafe extern "C" fn exit(net: *mut bindings::net) {
        // SAFETY: The kernel calls `exit` with the namespace still alive.
        let net = unsafe { Net::from_raw(net) };
        if Self::slot(net).load(Ordering::Acquire).is_null() {
            return; // `init` failed and cleaned up.
        }
        Self::disable_nat(net);
        // SAFETY: `init` created the entry (the slot is set only then);
        // removal waits for readers of the file.
        unsafe { bindings::remove_proc_entry(T::PROC_NAME.as_char_ptr(), net.proc_net()) };
        // SAFETY: `init` registered these ops; unregistering waits for hooks
        // under way (synchronize_net).
        unsafe { bindings::nf_unregister_net_hooks(net.as_ptr(), T::statics().hooks(), 2) };
        Self::drop_state(net);
    }

    /// Clears the slot, waits for readers, drops the state.
    fn drop_state(net: &Net) {
        let raw = Self::slot(net).swap(ptr::null_mut(), Ordering::AcqRel);
        if raw.is_null() {
            return;
        }
        // Readers found the state under RCU: wait for them before dropping it.
        // SAFETY: Process context, as pernet exit always is.
        unsafe { bindings::synchronize_rcu() };
        // SAFETY: `raw` came from `KBox::into_raw` in `init` and the slot no
        // longer holds it; the box was pinned and is dropped in place.
        drop(unsafe { Pin::new_unchecked(KBox::from_raw(raw)) });
    }
}

impl<T: PernetState> Drop for Pernet<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `ops` is registered; this calls
        // `exit` for every namespace.
        unsafe { bindings::unregister_pernet_subsys(self.ops.get()) };
        let statics = T::statics();
        if statics.nat_ok.swap(false, Ordering::AcqRel) {
            // SAFETY: No namespace uses the functions any more (every
            // `exit` ran `disable_nat`); they were taken by `sg_nat_ops_get`.
            unsafe { bindings::sg_nat_ops_put(statics.nat.get()) };
        }
    }
}
