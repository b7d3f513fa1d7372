// SPDX-License-Identifier: GPL-2.0

//! The state of one network namespace: its service groups and its cluster
//! node, registered once with the pernet core (`crate::sys::net`).

use crate::cluster::{replay::Replays, Cluster};
use crate::groups::NetGroups;
use crate::sys::{
    net::{
        NatTarget, Net, Pernet, PernetState, PernetStatic, SeqFile, NF_IP_PRI_CONNTRACK_HELPER,
        NF_IP_PRI_FILTER, NF_IP_PRI_RAW,
    },
    netfilter::{HookPacket, HookVerdict, OutPacket, OutVerdict},
    rcu::Guard,
    skb::{Family, SkBuff, Verdict},
};
use kernel::{c_str, prelude::*, str::CStr, sync::Arc};

/// The static part of our per-namespace registration.
static STATICS: PernetStatic = PernetStatic::new();

/// Everything sockgroup keeps per network namespace.
pub(crate) struct NetState {
    pub(crate) groups: NetGroups,
    /// Shared with the requests of the netlink family that sleep under its
    /// mutex; the namespace's teardown drops the last reference (the family
    /// is gone or no request of the namespace is under way, see `cluster`).
    cluster: Arc<Cluster>,
    /// The back-end's replays of handed-off connections (shared with the
    /// control channel's work, as `cluster`).
    replays: Arc<Replays>,
}

impl NetState {
    /// The state of `net`, for the read-side critical section `guard`.
    pub(crate) fn of<'a>(net: &'a Net, guard: &'a Guard) -> Option<&'a NetState> {
        Pernet::<NetState>::get(net, guard)
    }

    /// The cluster node of `net`, for a caller that sleeps (a netlink
    /// request of `net`, in process context). `None` while the namespace's
    /// state is not set up, or once its teardown began.
    ///
    /// The reference is dropped by the request before it returns: a request
    /// runs while its socket holds the namespace (no teardown can begin),
    /// and the module unregisters the family (waiting for the requests under
    /// way) before the per-namespace state, so the namespace's own teardown
    /// drops the last reference, and with it the channels, in `exit`.
    pub(crate) fn cluster(net: &Net) -> Option<Arc<Cluster>> {
        let guard = Guard::new();
        Self::of(net, &guard).map(|s| s.cluster.clone())
    }

    /// The replays of `net`, for a caller that sleeps (the control
    /// channel's work, or a test); `None` as for [`NetState::cluster`].
    pub(crate) fn replays(net: &Net) -> Option<Arc<Replays>> {
        let guard = Guard::new();
        Self::of(net, &guard).map(|s| s.replays.clone())
    }

    /// Turns the replay's LOCAL_OUT hooks on for `net` (process context;
    /// idempotent): what [`Replays::start`] is given.
    pub(crate) fn replay_hooks_on(net: &Net) -> Result {
        Pernet::<NetState>::set_replay(net, true)
    }

    /// The cluster node, for the read-side critical section of `of`'s
    /// guard (no reference taken: a caller that must not drop the last
    /// one, as the channels' own work).
    pub(crate) fn cluster_ref(&self) -> &Cluster {
        &self.cluster
    }

    /// The replays, for the read-side critical section of `of`'s guard
    /// (the packet path's translation).
    pub(crate) fn replays_ref(&self) -> &Replays {
        &self.replays
    }
}

impl PernetState for NetState {
    fn statics() -> &'static PernetStatic {
        &STATICS
    }

    fn new(net: &Net) -> Result<Pin<KBox<Self>>> {
        let groups = NetGroups::new()?;
        let cluster = Cluster::new(net)?;
        let replays = Arc::pin_init(Replays::new()?, GFP_KERNEL)?;
        Ok(KBox::pin(
            NetState {
                groups,
                cluster,
                replays,
            },
            GFP_KERNEL,
        )?)
    }

    // After the filter table (a SYN it drops is not counted) and after
    // source NAT at LOCAL_IN: with NAT on, `nf_nat_ipv4_local_in` orphans a
    // packet whose socket's `sk_dport` differs from the connection's port,
    // which for a listener (`sk_dport` 0) is always, and would undo steering.
    const LOCAL_IN_PRIORITY: i32 = crate::sys::net::NF_IP_PRI_NAT_SRC + 1;

    fn local_in(&self, net: &Net, skb: &SkBuff, family: Family) -> Verdict {
        self.groups.local_in(net, skb, family)
    }

    fn nat_dst(&self, net: &Net, skb: &SkBuff, family: Family) -> Option<NatTarget> {
        self.groups.nat_dst(net, skb, family)
    }

    // After conntrack (its helpers' priority, 300; the same for IPv6), the
    // filter table, the LSMs and NAT: a held packet passed all of them, and
    // the hooks after ours run when it is re-injected.
    const HOLD_PRIORITY: i32 = NF_IP_PRI_CONNTRACK_HELPER + 1;

    fn hold_in<'a>(&self, net: &Net, pkt: HookPacket<'a>, guard: &Guard) -> HookVerdict<'a> {
        self.cluster.hold_in(net, pkt, guard)
    }

    // After the filter table (a SYN-ACK it drops is not counted clamped).
    const HOLD_OUT_PRIORITY: i32 = NF_IP_PRI_FILTER + 1;

    fn hold_out(&self, _net: &Net, pkt: &mut OutPacket<'_>, guard: &Guard) {
        self.cluster.hold_out(pkt, guard)
    }

    // Before conntrack, and before any other hook a dropped SYN-ACK or RST
    // should not pass.
    const REPLAY_PRIORITY: i32 = NF_IP_PRI_RAW;

    fn replay_out(&self, net: &Net, pkt: &OutPacket<'_>) -> OutVerdict {
        self.replays.out(net, pkt)
    }

    // After conntrack, NAT, the filter and security tables: the host (its
    // conntrack, its rules) sees a translated connection in the back-end's
    // numbers, only the wire in the client's.
    const XLATE_OUT_PRIORITY: i32 = NF_IP_PRI_CONNTRACK_HELPER + 1;

    fn xlate_out(&self, _net: &Net, pkt: &mut OutPacket<'_>, guard: &Guard) -> OutVerdict {
        self.replays.xlate.out(pkt, guard)
    }

    // The forwarding first, with the hooks still on: once they are off,
    // a client's segment that another dispatcher forwarded here as to its
    // owner would reach TCP, whose reset ends a connection the others
    // still serve (the devices live on until `exit`); with the forwarding
    // closed first, none is delivered, and the hooks drop what they can no
    // longer forward.
    fn pre_unpublish(&self, _net: &Net) {
        self.cluster.shutdown_fwd();
    }

    fn pre_exit(&self, net: &Net) {
        self.cluster.shutdown_hold(net);
    }

    const PROC_NAME: &'static CStr = c_str!("sockgroup");

    fn show(&self, out: &mut SeqFile) -> core::fmt::Result {
        self.groups.show(out)
    }
}
