// SPDX-License-Identifier: GPL-2.0

//! Network namespaces and per-namespace state.
//!
//! C headers: [`include/net/net_namespace.h`](srctree/include/net/net_namespace.h),
//! [`include/net/netns/generic.h`](srctree/include/net/netns/generic.h).

use super::{
    bindings,
    netfilter::{HookPacket, HookVerdict, OutPacket, OutVerdict},
    rcu,
    skb::{Family, SkBuff, Verdict},
};
use core::{
    marker::PhantomData,
    ptr,
    sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering},
};
use kernel::{c_str, error::to_result, prelude::*, str::CStr, types::Opaque};

/// The priority of the filter table's hooks (`NF_IP_PRI_FILTER`).
pub const NF_IP_PRI_FILTER: i32 = bindings::nf_ip_hook_priorities_NF_IP_PRI_FILTER;

/// The priority of the conntrack helpers (`NF_IP_PRI_CONNTRACK_HELPER`; the
/// IPv6 value, `NF_IP6_PRI_CONNTRACK_HELPER`, is the same, 300).
pub const NF_IP_PRI_CONNTRACK_HELPER: i32 =
    bindings::nf_ip_hook_priorities_NF_IP_PRI_CONNTRACK_HELPER;

/// The priority of source NAT at LOCAL_IN and POST_ROUTING (`NF_IP_PRI_NAT_SRC`).
pub const NF_IP_PRI_NAT_SRC: i32 = bindings::nf_ip_hook_priorities_NF_IP_PRI_NAT_SRC;

/// The priority of the raw table (`NF_IP_PRI_RAW`, before conntrack; the
/// IPv6 value, `NF_IP6_PRI_RAW`, is the same, -300).
pub const NF_IP_PRI_RAW: i32 = bindings::nf_ip_hook_priorities_NF_IP_PRI_RAW;

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

    /// Whether the namespace is still in use (`check_net`): false once its
    /// teardown began.
    pub fn alive(&self) -> bool {
        // SAFETY: By the type invariant the namespace is alive (its memory);
        // the helper reads its reference count.
        unsafe { bindings::sg_check_net(self.as_ptr()) }
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
    /// The front-end hold's hooks: at LOCAL_IN, IPv4 and IPv6, then at
    /// LOCAL_OUT (its SYN-ACKs' MSS clamp), IPv4 and IPv6.
    hold_hooks: Opaque<[bindings::nf_hook_ops; 4]>,
    /// The back-end replay's LOCAL_OUT hooks: IPv4 and IPv6.
    replay_hooks: Opaque<[bindings::nf_hook_ops; 4]>,
    /// Set once `register_pernet_subsys` returned, cleared before the
    /// registration is undone: [`Pernet::get`] reads `id` only when set.
    registered: AtomicBool,
}

// SAFETY: `hooks`, `nat_hooks`, `hold_hooks` and `replay_hooks` are written only by `Pernet::register`,
// which consumes the module's one `PernetKey` (so it runs at most once),
// before `register_pernet_subsys` hands them to the kernel and to our
// callbacks; then only read. `id` is written only by the kernel, in
// `register_pernet_subsys` (under `pernet_ops_rwsem`) before it calls any
// of our callbacks, which read it after; `Pernet::get` reads it after an
// acquire load of `registered` that saw the store made once
// `register_pernet_subsys` returned. `registered` is atomic.
unsafe impl Sync for PernetStatic {}

impl PernetStatic {
    /// Storage not registered yet.
    pub const fn new() -> Self {
        Self {
            id: Opaque::new(0),
            hooks: Opaque::uninit(),
            nat_hooks: Opaque::uninit(),
            hold_hooks: Opaque::uninit(),
            replay_hooks: Opaque::uninit(),
            registered: AtomicBool::new(false),
        }
    }

    fn id(&self) -> u32 {
        // SAFETY: Callers run after `register_pernet_subsys` assigned the id
        // (see the `Sync` impl): a pernet or netfilter callback, or a reader
        // that saw `registered` set.
        unsafe { *self.id.get() }
    }

    fn hooks(&self) -> *const bindings::nf_hook_ops {
        self.hooks.get().cast()
    }

    fn hold_hooks(&self) -> *const bindings::nf_hook_ops {
        self.hold_hooks.get().cast()
    }

    fn replay_hooks(&self) -> *const bindings::nf_hook_ops {
        self.replay_hooks.get().cast()
    }

    fn hold_hook(&self, family: Family) -> *const bindings::nf_hook_ops {
        let i = match family {
            Family::Inet => 0,
            Family::Inet6 => 1,
        };
        // SAFETY: In bounds of the array of 4 (its LOCAL_IN ones).
        unsafe { self.hold_hooks().add(i) }
    }

    fn nat_hook(&self, i: usize) -> *const bindings::nf_hook_ops {
        assert!(i < 4);
        // SAFETY: In bounds of the array of 4 (checked above).
        unsafe { self.nat_hooks.get().cast::<bindings::nf_hook_ops>().add(i) }
    }
}

/// The right to register the module's per-namespace state: [`Pernet::register`]
/// consumes it, and there is only one, made by [`pernet_key!`].
///
/// As `module_phy_driver!` hands `phy::Registration::register` the one
/// `&'static mut` of its driver table, this makes a second registration,
/// which would write the [`PernetStatic`] that the first one's callbacks
/// read, impossible to write in safe code.
pub struct PernetKey(());

impl PernetKey {
    /// Makes the key; use [`pernet_key!`] instead.
    ///
    /// # Safety
    ///
    /// At most one `PernetKey` may be made in the module's lifetime.
    #[doc(hidden)]
    pub const unsafe fn new_unchecked() -> Self {
        Self(())
    }
}

/// Evaluates to the module's one [`PernetKey`], for [`Pernet::register`].
///
/// Expand it once, in the module's `kernel::Module::init`: a second
/// expansion anywhere in the crate fails to build (it defines the symbol
/// `SOCKGROUP_PERNET_KEY_ONCE` again), and the kernel calls `init` once.
macro_rules! pernet_key {
    () => {{
        // Defined once per crate: makes a second expansion a build error.
        #[no_mangle]
        static SOCKGROUP_PERNET_KEY_ONCE: u8 = 0;
        // SAFETY: This is the crate's only expansion (the symbol above would
        // be defined twice otherwise), and it is evaluated once: the macro's
        // contract places it in `Module::init`, which the kernel calls once.
        unsafe { $crate::sys::net::PernetKey::new_unchecked() }
    }};
}
pub(crate) use pernet_key;

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
    /// The state, from the end of `init` to `pre_exit`: what readers find.
    state: AtomicPtr<T>,
    /// The state between `pre_exit` and `exit`, which drops it.
    retired: AtomicPtr<T>,
    /// When `pre_exit` unpublished it ([`rcu::GpState`]): `exit` checks that
    /// a grace period has passed since.
    retired_at: AtomicUsize,
    /// Destination NAT hooks registered (under `sg_nat_lock`).
    nat: AtomicBool,
    /// The hold hooks registered (under `sg_nat_lock`).
    hold: AtomicBool,
    /// The replay hooks registered (under `sg_nat_lock`).
    replay: AtomicBool,
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

    /// Priority of the hold hooks at LOCAL_IN.
    const HOLD_PRIORITY: i32;

    /// The hold hook, once [`Pernet::set_hold`] turned it on for the
    /// namespace (softirq, under RCU: `guard`).
    fn hold_in<'a>(&self, net: &Net, pkt: HookPacket<'a>, guard: &rcu::Guard) -> HookVerdict<'a>;

    /// Priority of the hold's hooks at LOCAL_OUT.
    const HOLD_OUT_PRIORITY: i32;

    /// The hold's hook at LOCAL_OUT, on with its LOCAL_IN hook (softirq or
    /// process context, under RCU); it may rewrite the packet's TCP header.
    fn hold_out(&self, net: &Net, pkt: &mut OutPacket<'_>, guard: &rcu::Guard);

    /// Priority of the replay hooks at LOCAL_OUT.
    const REPLAY_PRIORITY: i32;

    /// The replay hook at LOCAL_OUT, once [`Pernet::set_replay`] turned it
    /// on for the namespace (softirq or process context, under RCU).
    fn replay_out(&self, net: &Net, pkt: &OutPacket<'_>) -> OutVerdict;

    /// Priority of the translation hooks at LOCAL_OUT.
    const XLATE_OUT_PRIORITY: i32;

    /// The translation hook at LOCAL_OUT, on with the replay hook
    /// (softirq or process context, under RCU); it may rewrite the
    /// packet's TCP header.
    fn xlate_out(&self, net: &Net, pkt: &mut OutPacket<'_>, guard: &rcu::Guard) -> OutVerdict;

    /// Called by the namespace's (or the module's) `pre_exit` first, while
    /// the state is still published and the hooks still run (process
    /// context): what must stop before the hooks go (the namespace's
    /// devices outlive them until `exit`). Nothing by default.
    fn pre_unpublish(&self, _net: &Net) {}

    /// Called by the namespace's (or the module's) `pre_exit` once the state
    /// is unpublished and every hook unregistered (process context): hook
    /// calls under way may still run, until the grace period before `exit`.
    fn pre_exit(&self, net: &Net);
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
/// published once the state is complete. When namespaces go (or the module),
/// `pre_exit` unpublishes the state and unregisters every hook, the pernet
/// core waits for one grace period for the whole batch of namespaces, and
/// `exit` drops the state.
///
/// # Invariants
///
/// `ops` is registered from `register` until `Drop`.
pub struct Pernet<T: PernetState> {
    ops: Pin<KBox<Opaque<bindings::pernet_operations>>>,
    _p: PhantomData<T>,
}

/// A netfilter hook function (`nf_hookfn`).
type HookFn = unsafe extern "C" fn(
    *mut core::ffi::c_void,
    *mut bindings::sk_buff,
    *const bindings::nf_hook_state,
) -> u32;

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

    fn hold_op(family: Family) -> bindings::nf_hook_ops {
        bindings::nf_hook_ops {
            hook: Some(Self::hold_hook),
            pf: family.nfproto(),
            hooknum: bindings::nf_inet_hooks_NF_INET_LOCAL_IN,
            priority: T::HOLD_PRIORITY,
            ..Default::default()
        }
    }

    /// The hold hook.
    ///
    /// # Safety
    ///
    /// Only netfilter calls it, with a live packet and hook state, for hook
    /// ops of `hold_hooks`.
    unsafe extern "C" fn hold_hook(
        _priv: *mut core::ffi::c_void,
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
    ) -> u32 {
        // SAFETY: netfilter passes a live `nf_hook_state` whose `net` is the
        // namespace the packet is in, alive during the hook.
        let (net, pf) = unsafe { (Net::from_raw((*state).net), (*state).pf) };
        let guard = rcu::Guard::new();
        let (Some(st), Some(family)) = (Pernet::<T>::get(net, &guard), Family::from_nfproto(pf))
        else {
            return bindings::NF_ACCEPT;
        };
        let ops = T::statics().hold_hook(family);
        // SAFETY: netfilter passes the live packet it owns and its hook
        // state; this hook is registered with `ops` (static) for `family`;
        // we return `NF_STOLEN` exactly when the packet was consumed.
        let pkt = unsafe { HookPacket::new(skb, state, ops, family) };
        match st.hold_in(net, pkt, &guard) {
            HookVerdict::Accept(_) => bindings::NF_ACCEPT,
            HookVerdict::Stolen(_) => bindings::NF_STOLEN,
        }
    }

    /// The ops of a LOCAL_OUT hook `hook` of `family` at `priority`.
    fn out_op(family: Family, priority: i32, hook: bindings::nf_hookfn) -> bindings::nf_hook_ops {
        bindings::nf_hook_ops {
            hook,
            pf: family.nfproto(),
            hooknum: bindings::nf_inet_hooks_NF_INET_LOCAL_OUT,
            priority,
            ..Default::default()
        }
    }

    /// A LOCAL_OUT hook's call: `f` with the namespace's state and the
    /// packet, whose verdict it returns (`NF_ACCEPT` without a state).
    ///
    /// # Safety
    ///
    /// `skb` and `state` are the live arguments of a call of a LOCAL_OUT
    /// hook registered by us.
    unsafe fn out_call(
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
        f: impl FnOnce(&T, &Net, &mut OutPacket<'_>, &rcu::Guard) -> OutVerdict,
    ) -> u32 {
        // SAFETY: netfilter passes a live `nf_hook_state` whose `net` is the
        // namespace the packet is in, alive during the hook.
        let (net, pf) = unsafe { (Net::from_raw((*state).net), (*state).pf) };
        let guard = rcu::Guard::new();
        let (Some(st), Some(family)) = (Pernet::<T>::get(net, &guard), Family::from_nfproto(pf))
        else {
            return bindings::NF_ACCEPT;
        };
        // SAFETY: netfilter passes the live packet it owns at LOCAL_OUT of
        // `family`, its network header set; the hook returns before it.
        let mut pkt = unsafe { OutPacket::new(skb, family) };
        f(st, net, &mut pkt, &guard).raw()
    }

    /// The hold's hook at LOCAL_OUT.
    ///
    /// # Safety
    ///
    /// Only netfilter calls it, with a live packet and hook state, for hook
    /// ops of `hold_hooks` (LOCAL_OUT).
    unsafe extern "C" fn hold_out_hook(
        _priv: *mut core::ffi::c_void,
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
    ) -> u32 {
        // SAFETY: As the caller guarantees.
        unsafe {
            Self::out_call(skb, state, |st, net, pkt, guard| {
                st.hold_out(net, pkt, guard);
                OutVerdict::Accept
            })
        }
    }

    /// The replay hook.
    ///
    /// # Safety
    ///
    /// Only netfilter calls it, with a live packet and hook state, for hook
    /// ops of `replay_hooks` (LOCAL_OUT).
    unsafe extern "C" fn replay_hook(
        _priv: *mut core::ffi::c_void,
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
    ) -> u32 {
        // SAFETY: As the caller guarantees.
        unsafe { Self::out_call(skb, state, |st, net, pkt, _| st.replay_out(net, pkt)) }
    }

    /// The translation hook.
    ///
    /// # Safety
    ///
    /// Only netfilter calls it, with a live packet and hook state, for hook
    /// ops of `replay_hooks` (LOCAL_OUT).
    unsafe extern "C" fn xlate_hook(
        _priv: *mut core::ffi::c_void,
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
    ) -> u32 {
        // SAFETY: As the caller guarantees.
        unsafe {
            Self::out_call(skb, state, |st, net, pkt, guard| {
                st.xlate_out(net, pkt, guard)
            })
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
        // SAFETY: As in `hook`: the NAT core passes on netfilter's state.
        let (net, pf) = unsafe { (Net::from_raw((*state).net), (*state).pf) };
        // SAFETY: The NAT core passes on netfilter's live packet.
        let ct = unsafe { bindings::sg_nf_ct_new(skb) };
        if ct.is_null() {
            return bindings::NF_ACCEPT;
        }
        // SAFETY: As above; the hook owns the packet during the call.
        let skb_ref = unsafe { SkBuff::from_raw(skb) };
        let guard = rcu::Guard::new();
        let target = match (Pernet::<T>::get(net, &guard), Family::from_nfproto(pf)) {
            (Some(state), Some(family)) => state.nat_dst(net, skb_ref, family),
            _ => None,
        };
        match target {
            // SAFETY: `ct` is the packet's connection (the packet holds a
            // reference on it, `skb->_nfct`), new and with no destination
            // mapping yet (`sg_nf_ct_new`), so `nf_nat_setup_info` may set
            // one: we are one of the lookup functions that `nf_nat_inet_fn`
            // calls for exactly that at PRE_ROUTING and LOCAL_OUT
            // (`nf_nat_core.c`), as `nft_chain_nat`'s are. `addr` has 16
            // bytes. The helper calls `nf_nat_setup_info` directly (no
            // function pointer: see `helpers.c`), and only when it resolved.
            Some(t) => unsafe {
                bindings::sg_nat_setup_dst(
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
    ///
    /// `_key` proves that this is the module's only registration: the
    /// hook ops written below into [`PernetState::statics`] are read by the
    /// callbacks of the registration, and the kernel writes the slot id there.
    pub fn register(_key: PernetKey) -> Result<Self> {
        let statics = T::statics();
        let hooks = [
            Callbacks::<T>::hook_op(Family::Inet),
            Callbacks::<T>::hook_op(Family::Inet6),
        ];
        // SAFETY: The key makes this the only registration of the module
        // (see `PernetKey`), so nothing else writes the hook ops, and nothing
        // reads them before `register_pernet_subsys` below.
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
        // SAFETY: As above.
        unsafe { statics.nat_hooks.get().write(nat_hooks) };
        let hold_out = Some(Callbacks::<T>::hold_out_hook as HookFn);
        let hold_hooks = [
            Callbacks::<T>::hold_op(Family::Inet),
            Callbacks::<T>::hold_op(Family::Inet6),
            Callbacks::<T>::out_op(Family::Inet, T::HOLD_OUT_PRIORITY, hold_out),
            Callbacks::<T>::out_op(Family::Inet6, T::HOLD_OUT_PRIORITY, hold_out),
        ];
        // SAFETY: As above.
        unsafe { statics.hold_hooks.get().write(hold_hooks) };
        let replay = Some(Callbacks::<T>::replay_hook as HookFn);
        let xlate = Some(Callbacks::<T>::xlate_hook as HookFn);
        let replay_hooks = [
            Callbacks::<T>::out_op(Family::Inet, T::REPLAY_PRIORITY, replay),
            Callbacks::<T>::out_op(Family::Inet6, T::REPLAY_PRIORITY, replay),
            Callbacks::<T>::out_op(Family::Inet, T::XLATE_OUT_PRIORITY, xlate),
            Callbacks::<T>::out_op(Family::Inet6, T::XLATE_OUT_PRIORITY, xlate),
        ];
        // SAFETY: As above.
        unsafe { statics.replay_hooks.get().write(replay_hooks) };
        let ops = KBox::pin(
            Opaque::new(bindings::pernet_operations {
                init: Some(Self::init),
                pre_exit: Some(Self::pre_exit),
                exit: Some(Self::exit),
                id: statics.id.get(),
                size: core::mem::size_of::<Slot<T>>(),
                ..Default::default()
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: `ops` is pinned and stays alive until `Drop` unregisters it.
        to_result(unsafe { bindings::register_pernet_subsys(ops.get()) })?;
        statics.registered.store(true, Ordering::Release);
        // INVARIANT: Registered.
        Ok(Self {
            ops,
            _p: PhantomData,
        })
    }

    /// Our slot of `net`: `None` while the pernet core has not set it up
    /// (a namespace still being set up, before our `init`).
    ///
    /// # Safety
    ///
    /// The registration's `id` is assigned, and a slot of `net` is not freed
    /// during `'a` (the pernet core frees it after `exit`, or after a failed
    /// `init`): called from a pernet callback of this registration for `net`;
    /// from a hook or `show` that it registered for `net` (unregistered in
    /// `pre_exit` or on `init`'s failure path, each followed by a grace period
    /// before the slot is freed); after seeing `registered` set, under RCU
    /// (`Drop` clears it before unregistering, whose grace period comes
    /// before any slot is freed); or as `enable_nat` argues.
    unsafe fn slots<'a>(net: &'a Net) -> Option<&'a Slot<T>> {
        // SAFETY: By the caller's guarantee the id is assigned; `net` is
        // alive; the helper checks the id against `net->gen`'s length.
        let p = unsafe { bindings::sg_net_generic(net.as_ptr(), T::statics().id()) };
        // SAFETY: A non-null slot is the pernet core's zeroed allocation of
        // `ops.size` = `size_of::<Slot<T>>()` bytes (`kzalloc`: aligned for
        // pointers), alive during `'a` by the caller's guarantee, where
        // all-zero is a valid `Slot` (null, null, false) and every field is
        // atomic.
        unsafe { p.cast::<Slot<T>>().as_ref() }
    }

    /// Our slot of `net` while registered, for the read-side critical section `_guard`.
    fn registered_slots<'a>(net: &'a Net, _guard: &'a rcu::Guard) -> Option<&'a Slot<T>> {
        if !T::statics().registered.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: Registered, seen under RCU (see `slots`).
        unsafe { Self::slots(net) }
    }

    /// Turns destination NAT on for `net` (process context; idempotent):
    /// conntrack for IPv4 and IPv6, and our NAT function at PRE_ROUTING and
    /// LOCAL_OUT. It stays on until the namespace or the module goes.
    /// `Err(ENOPKG)` when the kernel has no conntrack or NAT;
    /// `Err(EOPNOTSUPP)` when `net` has no state (any more).
    pub fn enable_nat(net: &Net) -> Result {
        // SAFETY: No precondition: it tests what the module loader resolved.
        if !unsafe { bindings::sg_nat_available() } {
            return Err(super::errno::enopkg());
        }
        // A reference keeps the namespace from being torn down (`pre_exit`,
        // `exit`, its slot freed) while we sleep below; none is to be had
        // once its teardown began.
        // SAFETY: `net` is alive (`&Net`).
        if !unsafe { bindings::sg_maybe_get_net(net.as_ptr()) } {
            return Err(super::errno::eopnotsupp());
        }
        // SAFETY: Process context (the caller may sleep); paired with the
        // unlock below.
        unsafe { bindings::sg_nat_lock() };
        // `registered` is read under the lock: `Drop` clears it before
        // `unregister_pernet_subsys` calls `pre_exit`, which takes the lock.
        let slot = if T::statics().registered.load(Ordering::Acquire) {
            // SAFETY: Registered, so the id is assigned; no `pre_exit` of the
            // unregistration passed the lock yet (see above), and the slot is
            // freed only after it; our reference on `net` rules out the
            // namespace's own teardown. Until we unlock, then.
            unsafe { Self::slots(net) }
        } else {
            None
        };
        // `pre_exit` unpublishes the state and turns NAT off under the lock:
        // with the state still published, NAT turned on now will be turned off.
        let result = match slot {
            Some(slot) if !slot.state.load(Ordering::Acquire).is_null() => {
                if slot.nat.load(Ordering::Acquire) {
                    Ok(())
                } else {
                    // SAFETY: `net` is alive; the hook ops are in static
                    // memory; we hold `sg_nat_lock` and NAT is off.
                    let r = unsafe { Self::nat_on(net) };
                    if r.is_ok() {
                        slot.nat.store(true, Ordering::Release);
                    }
                    r
                }
            }
            _ => Err(super::errno::eopnotsupp()),
        };
        // SAFETY: Paired with the lock above.
        unsafe { bindings::sg_nat_unlock() };
        // SAFETY: The reference taken above.
        unsafe { bindings::sg_put_net(net.as_ptr()) };
        result
    }

    /// Turns the hold hooks on or off for `net` (process context;
    /// idempotent). `Err(EOPNOTSUPP)` when turning on and `net` has no state
    /// (any more); off always succeeds.
    pub fn set_hold(net: &Net, on: bool) -> Result {
        Self::set_hooks(net, on, T::statics().hold_hooks(), 4, |slot| &slot.hold)
    }

    /// Turns the replay hooks on or off for `net`, as [`Pernet::set_hold`].
    pub fn set_replay(net: &Net, on: bool) -> Result {
        Self::set_hooks(net, on, T::statics().replay_hooks(), 4, |slot| &slot.replay)
    }

    /// Registers or unregisters the `n` hook ops at `ops` (in static
    /// memory) for `net`, as the slot's flag `flag` says they are.
    fn set_hooks(
        net: &Net,
        on: bool,
        ops: *const bindings::nf_hook_ops,
        n: u32,
        flag: impl Fn(&Slot<T>) -> &AtomicBool,
    ) -> Result {
        // A reference keeps the namespace from being torn down while we
        // sleep below (see `enable_nat`).
        // SAFETY: `net` is alive (`&Net`).
        if !unsafe { bindings::sg_maybe_get_net(net.as_ptr()) } {
            return if on {
                Err(super::errno::eopnotsupp())
            } else {
                Ok(())
            };
        }
        // SAFETY: Process context; paired with the unlock below.
        unsafe { bindings::sg_nat_lock() };
        let slot = if T::statics().registered.load(Ordering::Acquire) {
            // SAFETY: As in `enable_nat`.
            unsafe { Self::slots(net) }
        } else {
            None
        };
        let result = match slot {
            Some(slot) if !slot.state.load(Ordering::Acquire).is_null() => {
                let flag = flag(slot);
                let cur = flag.load(Ordering::Acquire);
                if cur == on {
                    Ok(())
                } else if on {
                    // SAFETY: `net` is alive; the ops are in static memory
                    // until the module goes, after `pre_exit` (which checks
                    // the flag under the lock we hold) unregistered them.
                    let r =
                        to_result(unsafe { bindings::nf_register_net_hooks(net.as_ptr(), ops, n) });
                    if r.is_ok() {
                        flag.store(true, Ordering::Release);
                    }
                    r
                } else {
                    // SAFETY: Registered (the flag, under the lock). Calls
                    // under way end before `exit`, or run with the state
                    // still published and alive (it is the namespace's
                    // until `exit`).
                    unsafe { bindings::nf_unregister_net_hooks(net.as_ptr(), ops, n) };
                    flag.store(false, Ordering::Release);
                    Ok(())
                }
            }
            _ if !on => Ok(()),
            _ => Err(super::errno::eopnotsupp()),
        };
        // SAFETY: Paired with the lock above.
        unsafe { bindings::sg_nat_unlock() };
        // SAFETY: The reference taken above.
        unsafe { bindings::sg_put_net(net.as_ptr()) };
        result
    }

    /// Turns NAT on; see `enable_nat`. On failure nothing is left on.
    ///
    /// # Safety
    ///
    /// `net` is alive, NAT is off for it, and the caller holds `sg_nat_lock`.
    unsafe fn nat_on(net: &Net) -> Result {
        let statics = T::statics();
        let n = net.as_ptr();
        let (v4, v6) = (bindings::NFPROTO_IPV4 as u8, bindings::NFPROTO_IPV6 as u8);
        // SAFETY: The caller's guarantees hold for every call below; the
        // hook ops live in static memory until the module goes, after every
        // `pre_exit` unregistered them; each step is undone in reverse order
        // when a later one fails.
        unsafe {
            to_result(bindings::sg_nf_ct_netns_get(n, v4))?;
            if let Err(e) = to_result(bindings::sg_nf_ct_netns_get(n, v6)) {
                bindings::sg_nf_ct_netns_put(n, v4);
                return Err(e);
            }
            for i in 0..4 {
                if let Err(e) = to_result(bindings::sg_nf_nat_register_fn(n, statics.nat_hook(i))) {
                    for j in (0..i).rev() {
                        bindings::sg_nf_nat_unregister_fn(n, statics.nat_hook(j));
                    }
                    bindings::sg_nf_ct_netns_put(n, v6);
                    bindings::sg_nf_ct_netns_put(n, v4);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Undoes `nat_on`, in reverse order.
    ///
    /// # Safety
    ///
    /// `nat_on` succeeded for `net` and was not undone; the caller holds
    /// `sg_nat_lock`.
    unsafe fn nat_off(net: &Net) {
        let statics = T::statics();
        let n = net.as_ptr();
        let (v4, v6) = (bindings::NFPROTO_IPV4 as u8, bindings::NFPROTO_IPV6 as u8);
        // SAFETY: `nat_on` registered exactly these hook ops and took these
        // conntrack references. Unregistering does not wait for NAT core
        // calls of our function under way: the grace period between
        // `pre_exit` (the caller) and `exit` does, before the state, the slot
        // or the module's code go.
        unsafe {
            for j in (0..4).rev() {
                bindings::sg_nf_nat_unregister_fn(n, statics.nat_hook(j));
            }
            bindings::sg_nf_ct_netns_put(n, v6);
            bindings::sg_nf_ct_netns_put(n, v4);
        }
    }

    /// The state of `net`, for the read-side critical section `_guard`.
    ///
    /// `None` before the namespace's state is complete or after it began to
    /// go, and while the module's registration is not complete.
    pub fn get<'a>(net: &'a Net, guard: &'a rcu::Guard) -> Option<&'a T> {
        let p = Self::registered_slots(net, guard)?
            .state
            .load(Ordering::Acquire);
        // SAFETY: A non-null slot points to a `T` from `KBox::into_raw` that
        // `exit` drops only after `pre_exit` cleared the slot and a grace
        // period passed, which ends after the critical section of `guard`.
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
        let ops = T::statics().hooks();
        // SAFETY: `ops` points to two hook ops in static memory; netfilter
        // keeps the pointer until `pre_exit` (or the failure path below)
        // unregisters them. Until the state is published below, the hooks
        // find none and let packets pass.
        let err = unsafe { bindings::nf_register_net_hooks(net.as_ptr(), ops, 2) };
        if err != 0 {
            Self::wait_for_hooks();
            return err;
        }
        // SAFETY: `PROC_NAME` is a static C string; `show` reads this
        // namespace's state through its slot, and the entry is removed in
        // `pre_exit`, before the slot is freed.
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
            Self::wait_for_hooks();
            return ENOMEM.to_errno();
        }
        // SAFETY: A pernet callback of this registration for `net`.
        let Some(slot) = (unsafe { Self::slots(net) }) else {
            // Not reached: the pernet core set the slot up before `init`.
            return EINVAL.to_errno();
        };
        // SAFETY: The state is never moved out of the box: it is turned
        // back into a pinned box in `exit`.
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(state) });
        slot.state.store(raw, Ordering::Release);
        0
    }

    /// On `init`'s failure paths, after hooks were registered and unregistered:
    /// waits for their calls under way, which read the slot, since the
    /// pernet core frees the slot right after a failed `init` (`ops_init`)
    /// and calls neither `pre_exit` nor `exit` for it. Failures are rare.
    fn wait_for_hooks() {
        // SAFETY: Process context, as pernet `init` is.
        unsafe { bindings::synchronize_rcu() };
    }

    /// The pernet `pre_exit`: unpublishes the state, turns NAT off and
    /// unregisters the hooks and the `/proc` file.
    ///
    /// The pernet core then waits for one grace period for the whole batch
    /// of namespaces (`ops_undo_list` in `net/core/net_namespace.c`:
    /// `pre_exit` of every namespace, `synchronize_rcu()`, `exit` of every
    /// namespace, then the slots are freed), which ends every hook call
    /// under way: `nf_unregister_net_hooks` and `nf_nat_unregister_fn` do not
    /// wait for them themselves (they free their tables with `call_rcu`).
    /// The module's code outlives them too: `unregister_pernet_subsys`
    /// returns after that grace period.
    ///
    /// # Safety
    ///
    /// Only the pernet core calls it, with a namespace whose `init` succeeded.
    unsafe extern "C" fn pre_exit(net: *mut bindings::net) {
        // SAFETY: The kernel calls `pre_exit` with the namespace still alive.
        let net = unsafe { Net::from_raw(net) };
        // SAFETY: A pernet callback of this registration for `net`.
        let Some(slot) = (unsafe { Self::slots(net) }) else {
            return;
        };
        // The state is published until the swap below, and dropped only in
        // `exit`: readers and this call share it.
        let published = slot.state.load(Ordering::Acquire);
        // SAFETY: `published` came from `KBox::into_raw` in `init` (or is
        // null: not published); the state is dropped only in `exit`, which
        // the pernet core calls after us.
        if let Some(state) = unsafe { published.as_ref() } {
            state.pre_unpublish(net);
        }
        // SAFETY: Process context (pernet callbacks may sleep); paired with
        // the unlock below.
        unsafe { bindings::sg_nat_lock() };
        // From here on no reader finds the state, and `enable_nat` (which
        // checks it under the lock) leaves NAT off.
        let raw = slot.state.swap(ptr::null_mut(), Ordering::AcqRel);
        if slot.nat.swap(false, Ordering::AcqRel) {
            // SAFETY: `enable_nat` turned NAT on (the flag) and it was not
            // turned off since; we hold the lock.
            unsafe { Self::nat_off(net) };
        }
        if slot.hold.swap(false, Ordering::AcqRel) {
            // SAFETY: `set_hold` registered them (the flag, under the lock).
            // Calls under way end before `exit`.
            unsafe {
                bindings::nf_unregister_net_hooks(net.as_ptr(), T::statics().hold_hooks(), 4)
            };
        }
        if slot.replay.swap(false, Ordering::AcqRel) {
            // SAFETY: `set_replay` registered them (the flag, under the
            // lock). Calls under way end before `exit`.
            unsafe {
                bindings::nf_unregister_net_hooks(net.as_ptr(), T::statics().replay_hooks(), 4)
            };
        }
        // SAFETY: Paired with the lock above.
        unsafe { bindings::sg_nat_unlock() };
        slot.retired.store(raw, Ordering::Release);
        // SAFETY: `init` created the entry (it succeeded); removal waits for
        // readers of the file under way (`proc_entry_rundown`).
        unsafe { bindings::remove_proc_entry(T::PROC_NAME.as_char_ptr(), net.proc_net()) };
        // SAFETY: `init` registered these ops for `net`. Calls under way end
        // before `exit` (see above).
        unsafe { bindings::nf_unregister_net_hooks(net.as_ptr(), T::statics().hooks(), 2) };
        // Readers from here on find neither the state nor the hooks.
        slot.retired_at
            .store(rcu::GpState::now().to_raw(), Ordering::Release);
        // SAFETY: `raw` came from `KBox::into_raw` in `init` and is dropped
        // only in `exit`, which the pernet core calls after us.
        if let Some(state) = unsafe { raw.as_ref() } {
            state.pre_exit(net);
        }
    }

    /// The pernet `exit`: drops the state that `pre_exit` unpublished.
    ///
    /// # Safety
    ///
    /// Only the pernet core calls it, after `pre_exit` for `net` and a grace period.
    unsafe extern "C" fn exit(net: *mut bindings::net) {
        // SAFETY: The kernel calls `exit` with the namespace still alive.
        let net = unsafe { Net::from_raw(net) };
        // SAFETY: A pernet callback of this registration for `net`.
        let Some(slot) = (unsafe { Self::slots(net) }) else {
            return;
        };
        let raw = slot.retired.swap(ptr::null_mut(), Ordering::AcqRel);
        if raw.is_null() {
            return;
        }
        // The pernet core let a grace period pass since `pre_exit` (one for
        // the whole batch of namespaces): checked, not assumed, as the free
        // below depends on it. A kernel that changed that order gets a
        // warning (which fails the tests) and a grace period of our own.
        let retired_at = rcu::GpState::from_raw(slot.retired_at.load(Ordering::Acquire));
        if !retired_at.elapsed() {
            // SAFETY: A static NUL-terminated string, which the helper only
            // prints; `WARN` may be called in any context.
            unsafe {
                bindings::sg_warn(
                    c_str!("pernet exit before a grace period since pre_exit").as_char_ptr(),
                )
            };
            rcu::synchronize();
        }
        // SAFETY: `raw` came from `KBox::into_raw` in `init`; `pre_exit`
        // unpublished it and unregistered every hook before the grace period
        // that the pernet core let pass since, so no reader holds it; the box
        // was pinned and is dropped in place.
        drop(unsafe { Pin::new_unchecked(KBox::from_raw(raw)) });
    }
}

impl<T: PernetState> Drop for Pernet<T> {
    fn drop(&mut self) {
        // `get` stops finding states; readers that passed the check are in
        // a read-side critical section, which the grace period inside
        // `unregister_pernet_subsys` waits for before any slot is freed.
        T::statics().registered.store(false, Ordering::Release);
        // SAFETY: By the type invariant `ops` is registered; this calls
        // `pre_exit`, then (after a grace period) `exit` for every namespace.
        unsafe { bindings::unregister_pernet_subsys(self.ops.get()) };
    }
}
