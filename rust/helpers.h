/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prototypes of the thin C helpers in helpers.c: each wraps static inline
 * kernel functions (or bitfield and union accesses) that Rust cannot call.
 */
#ifndef SOCKGROUP_HELPERS_H
#define SOCKGROUP_HELPERS_H

#include <linux/sockptr.h>
#include <linux/types.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/netfilter/nf_conntrack_core.h>
#include <linux/workqueue.h>
#include <net/netfilter/nf_nat.h>

struct crypto_shash;
struct shash_desc;
struct ftrace_regs;
struct nf_conn;
struct nf_hook_ops;
struct module;
struct net;
struct seq_file;
struct sk_buff;
struct request_sock;
struct sock;
struct socket;

/* struct sock */
void sg_sock_hold(struct sock *sk);
void sg_sock_put(struct sock *sk);
u32 sg_sk_ack_backlog(const struct sock *sk);
u32 sg_sk_max_ack_backlog(const struct sock *sk);
u32 sg_reqsk_queue_len(const struct sock *sk);
int sg_sk_state(const struct sock *sk);
u16 sg_sk_family(const struct sock *sk);
u16 sg_sk_type(const struct sock *sk);
u16 sg_sk_protocol(const struct sock *sk);
bool sg_sk_ipv6only(const struct sock *sk);
u16 sg_sk_local_port(const struct sock *sk);
void sg_sk_local_addr(const struct sock *sk, u8 addr[16]);
struct net *sg_sock_net(const struct sock *sk);
u64 sg_sock_cookie(struct sock *sk);

/* kernel sockets: the callback lock, linger 0 */
void sg_sk_callback_write_lock(struct sock *sk);
void sg_sk_callback_write_unlock(struct sock *sk);
void sg_sk_callback_read_lock(struct sock *sk);
void sg_sk_callback_read_unlock(struct sock *sk);

/* crypto */
void sg_crypto_free_shash(struct crypto_shash *tfm);
unsigned int sg_crypto_shash_descsize(struct crypto_shash *tfm);
int sg_crypto_shash_init(struct shash_desc *desc);
void sg_memzero_explicit(void *p, size_t size);
bool sg_crypto_memneq(const void *a, const void *b, size_t size);

/* struct socket from a file descriptor */
void sg_sockfd_put(struct socket *sock);

/* sockptr_t: 0 or -EFAULT */
int sg_copy_from_sockptr(void *dst, sockptr_t src, size_t size);
int sg_copy_to_sockptr(sockptr_t dst, const void *src, size_t size);

/* RCU and modules */
void sg_rcu_read_lock(void);
void sg_rcu_read_unlock(void);
/* WARN(), a macro: a kernel warning with a backtrace, for a broken invariant. */
void sg_warn(const char *msg);
bool sg_try_module_get_live(struct module *mod);
void sg_module_put(struct module *mod);
bool sg_sockopt_from_task(void);

/* ftrace */
unsigned long sg_ftrace_regs_get_argument(struct ftrace_regs *fregs, unsigned int n);
void sg_ftrace_regs_set_ip(struct ftrace_regs *fregs, unsigned long ip);

/* network namespaces */
void *sg_net_generic(const struct net *net, unsigned int id);

/* delayed work on the system workqueue; fault injection of the member sweep */
void sg_init_delayed_work(struct delayed_work *dw, work_func_t fn);
bool sg_queue_delayed_work(struct delayed_work *dw, unsigned int msecs);
struct delayed_work *sg_to_delayed_work(struct work_struct *work);
bool sg_mod_delayed_work(struct delayed_work *dw, unsigned int msecs);
void sg_fault_register(void);
void sg_fault_unregister(void);
bool sg_fault_sweep(void);
struct net *sg_seq_file_single_net(struct seq_file *seq);

/* packets: the TCP flags byte and header offset, or -1 if not TCP */
int sg_skb_tcp_flags(struct sk_buff *skb, u8 pf, int *thoff);
struct sock *sg_skb_lookup_listener(struct net *net, struct sk_buff *skb, u8 pf, int thoff);
bool sg_skb_has_sk(const struct sk_buff *skb);
bool sg_skb_assign_sock(struct sk_buff *skb, struct sock *sk);
/* Whether the 4-tuple has a socket (full, request or TIME_WAIT) already. */
bool sg_skb_has_established(struct net *net, struct sk_buff *skb, u8 pf, int thoff);
u8 sg_net_tcp_syncookies(const struct net *net);

/*
 * Connection tracking and NAT, for rewrite groups (see helpers.c).
 *
 * The module references these functions weakly: where nf_nat is a module,
 * modpost records it as a dependency (modprobe loads it first) and the
 * module loader's resolution holds a reference on it for as long as we are
 * loaded; where the kernel has no NF_NAT, or a plain insmod finds nf_nat
 * not loaded, the references stay NULL, the module still loads, and
 * sg_nat_available() is false (rewrite answers ENOPKG).  Only helpers.c
 * calls them, each call direct (no function pointer: nothing for IBT or
 * kCFI to check), and only after sg_nat_available().
 */
#ifndef __BINDGEN__
extern typeof(nf_ct_netns_get) nf_ct_netns_get __weak;
extern typeof(nf_ct_netns_put) nf_ct_netns_put __weak;
extern typeof(nf_nat_ipv4_register_fn) nf_nat_ipv4_register_fn __weak;
extern typeof(nf_nat_ipv4_unregister_fn) nf_nat_ipv4_unregister_fn __weak;
extern typeof(nf_nat_ipv6_register_fn) nf_nat_ipv6_register_fn __weak;
extern typeof(nf_nat_ipv6_unregister_fn) nf_nat_ipv6_unregister_fn __weak;
extern typeof(nf_nat_setup_info) nf_nat_setup_info __weak;
#endif

/* Whether every function above resolved when the module was loaded. */
bool sg_nat_available(void);
/* nf_ct_netns_get/put (-ENOPKG without conntrack). */
int sg_nf_ct_netns_get(struct net *net, u8 nfproto);
void sg_nf_ct_netns_put(struct net *net, u8 nfproto);
/* nf_nat_ipv{4,6}_(un)register_fn, by ops->pf (-ENOPKG without NAT). */
int sg_nf_nat_register_fn(struct net *net, const struct nf_hook_ops *ops);
void sg_nf_nat_unregister_fn(struct net *net, const struct nf_hook_ops *ops);
/* maybe_get_net() and put_net(): a reference that keeps a namespace up. */
bool sg_maybe_get_net(struct net *net);
void sg_put_net(struct net *net);
/* Serializes turning NAT on and off for a namespace. */
void sg_nat_lock(void);
void sg_nat_unlock(void);
/* The packet's connection, if new and its destination not yet mapped. */
struct nf_conn *sg_nf_ct_new(struct sk_buff *skb);
/* Maps the destination of a new connection to addr (if map_addr) and port. */
unsigned int sg_nat_setup_dst(struct nf_conn *ct, u8 pf, const u8 addr[16], bool map_addr,
			      u16 port);
/*
 * Connection tracking's entries, for the handoff (a moved connection's
 * entry on the front-end, a replayed one's on the back-end): referenced
 * weakly as the functions above, so that a kernel without conntrack (or
 * nf_conntrack not loaded at insmod) still loads the module.
 */
#ifndef __BINDGEN__
extern typeof(nf_conntrack_find_get) nf_conntrack_find_get __weak;
extern typeof(nf_ct_delete) nf_ct_delete __weak;
extern typeof(nf_ct_destroy) nf_ct_destroy __weak;
extern const struct nf_conntrack_zone nf_ct_zone_dflt __weak;
#endif
/*
 * nf_conntrack_find_get() in the default zone, as its nf_conn (referenced);
 * NULL without one or without conntrack.
 */
struct nf_conn *sg_nf_ct_find_get(struct net *net, const struct nf_conntrack_tuple *tuple);
/* nf_ct_delete(ct, 0, 0). */
bool sg_nf_ct_delete(struct nf_conn *ct);
/* nf_ct_put(). */
void sg_nf_ct_put(struct nf_conn *ct);
/* Whether the packet's destination is an address of this host. */
bool sg_skb_daddr_is_local(struct net *net, struct sk_buff *skb, u8 pf);

/* Generic netlink */
struct genl_family;
struct genl_info;
struct netlink_callback;
struct nlattr;
const void *sg_genl_info_attrs(const struct genl_info *info, int *len);
struct net *sg_genl_info_net(const struct genl_info *info);
struct sk_buff *sg_genlmsg_new(void);
void *sg_genlmsg_put_reply(struct sk_buff *skb, struct genl_info *info,
			   const struct genl_family *family, u8 cmd);
void *sg_genlmsg_put_dump(struct sk_buff *skb, struct netlink_callback *cb,
			  const struct genl_family *family, u8 cmd);
void *sg_genlmsg_put_event(struct sk_buff *skb,
			   const struct genl_family *family, u8 cmd);
void sg_genlmsg_end(struct sk_buff *skb, void *hdr);
void sg_genlmsg_cancel(struct sk_buff *skb, void *hdr);
int sg_genlmsg_reply(struct sk_buff *skb, struct genl_info *info);
int sg_genlmsg_multicast_netns(const struct genl_family *family,
			       struct net *net, struct sk_buff *skb,
			       unsigned int group);
void sg_nlmsg_free(struct sk_buff *skb);
struct nlattr *sg_nla_nest_start(struct sk_buff *skb, int attrtype);
void sg_nla_nest_end(struct sk_buff *skb, struct nlattr *start);
void sg_nla_nest_cancel(struct sk_buff *skb, struct nlattr *start);
u8 sg_genl_dump_cmd(const struct netlink_callback *cb);
struct net *sg_genl_dump_net(const struct sk_buff *skb);
unsigned int sg_skb_len(const struct sk_buff *skb);

/*
 * The front-end hold (rust/netfilter.rs): a TCP segment at LOCAL_IN, the request
 * socket it belongs to, a stolen packet kept with its hook state, and its
 * re-injection.
 */
struct nf_hook_state;
struct sg_tcp_seg {
	u8 saddr[16];
	u8 daddr[16];
	u32 thoff;
	u32 seq;
	u32 ack_seq;
	u32 payload_off;
	u32 payload_len;
	u16 sport;
	u16 dport;
	u16 window;
	u8 flags;
};

struct sg_req_info {
	u32 rcv_isn;
	u32 snt_isn;
	u32 ts_off;
	u32 ts_recent;
	u16 mss;
	u8 snd_wscale;
	u8 rcv_wscale;
	u8 wscale_ok;
	u8 sack_ok;
	u8 tstamp_ok;
	u8 ecn_ok;
};

bool sg_skb_tcp_seg(struct sk_buff *skb, u8 pf, struct sg_tcp_seg *out);
struct sock *sg_skb_demux(struct net *net, struct sk_buff *skb, u8 pf,
			  const struct sg_tcp_seg *seg);
bool sg_reqsk_info(const struct sock *sk, struct sg_req_info *out);

/* What a TIME_WAIT socket keeps of its connection (tcp_timewait_sock). */
struct sg_tw_info {
	u32 rcv_nxt;
	u32 ts_recent;
	s32 ts_recent_stamp;
	/* ktime_get_seconds() now, as TCP's PAWS check takes it (truncated). */
	u32 now_s;
	u8 fin_wait2;
};

bool sg_tw_info(const struct sock *sk, struct sg_tw_info *out);
void sg_tw_kill(struct sock *sk);
void sg_xmit_timer_now(struct sock *sk, int what);
u32 sg_tcp_rto_base(const struct sock *sk);
bool sg_sk_fastopen(const struct sock *sk);
bool sg_skb_syncookie_valid(struct sk_buff *skb, u8 pf, u32 thoff);
bool sg_skb_csum_ok(struct sk_buff *skb, u8 pf, u32 thoff);
bool sg_hold_state_get(struct sk_buff *skb, const struct nf_hook_state *state,
		       struct nf_hook_state *saved);
void sg_hold_state_put(struct nf_hook_state *saved);
bool sg_hold_dev_alive(const struct nf_hook_state *saved);
void sg_hold_reinject(struct sk_buff *skb, struct nf_hook_state *saved,
		      const struct nf_hook_ops *ops);
int sg_skb_copy_bits(const struct sk_buff *skb, int offset, void *to, int len);
void sg_skb_orphan(struct sk_buff *skb);
void sg_reqsk_send_ack(struct sk_buff *skb, u32 ack);
void sg_kfree_skb(struct sk_buff *skb);
struct sk_buff *sg_alloc_skb(unsigned int size);
void sg_skb_reset_network_header(struct sk_buff *skb);

/* UDP tunnel sockets and forwarded packets */
int sg_skb_ip_len(const struct sk_buff *skb);
struct sk_buff *sg_skb_gso_segment(struct sk_buff *skb);
struct sk_buff *sg_skb_next(const struct sk_buff *skb);
void sg_skb_mark_not_on_list(struct sk_buff *skb);
unsigned int sg_skb_dst_mtu(const struct sk_buff *skb);
int sg_skb_copy_ip(const struct sk_buff *skb, void *to, int len, int *csum_start, int *csum_off);
bool sg_skb_ip_saddr(const struct sk_buff *skb, u8 out[16]);
int sg_skb_linearize(struct sk_buff *skb);
void sg_skb_decap_reset(struct sk_buff *skb);
u32 sg_skb_mark(const struct sk_buff *skb);
void sg_skb_set_mark(struct sk_buff *skb, u32 mark);
void sg_skb_reserve(struct sk_buff *skb, int len);
void sg_skb_dst_set_hold(struct sk_buff *skb, struct dst_entry *dst);
void *sg_sk_user_data(const struct sock *sk);
void sg_spin_lock_bh(spinlock_t *lock);
void sg_spin_unlock_bh(spinlock_t *lock);
u64 sg_jiffies64_ms(void);
u32 sg_get_random_u32(void);
bool sg_check_net(const struct net *net);
void sg_spin_lock(spinlock_t *lock);
void sg_spin_unlock(spinlock_t *lock);
void sg_local_bh_disable(void);
void sg_local_bh_enable(void);
void sg_bh_lock_sock(struct sock *sk);
void sg_bh_unlock_sock(struct sock *sk);
void sg_sk_acceptq_removed(struct sock *sk);
struct request_sock *sg_reqsk_alloc(const struct request_sock *req);
void sg_reqsk_put(struct request_sock *req);

#endif
