// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C helpers for static inline kernel functions, bitfields and unions:
 * a few lines each, no policy.  The logic lives in Rust.
 */
#include <crypto/hash.h>
#include <crypto/utils.h>
#include <kunit/visibility.h>
#include <linux/debugfs.h>
#include <linux/fault-inject.h>
#include <linux/bpf.h>
#include <linux/file.h>
#include <linux/ftrace.h>
#include <linux/ipv6.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/jiffies.h>
#include <linux/netfilter.h>
#include <linux/rcupdate.h>
#include <linux/seq_file_net.h>
#include <linux/sock_diag.h>
#include <linux/sockptr.h>
#include <linux/tcp.h>
#include <linux/workqueue.h>
#include <net/inet6_hashtables.h>
#include <net/inet_connection_sock.h>
#include <net/inet_hashtables.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/udp_tunnel.h>
#include <net/addrconf.h>
#include <net/dst.h>
#include <net/genetlink.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/netfilter/nf_nat.h>
#include <net/netns/generic.h>
#include <net/route.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "helpers.h"
#include "kunit.h"

void sg_sock_hold(struct sock *sk)
{
	sock_hold(sk);
}

void sg_sock_put(struct sock *sk)
{
	sock_put(sk);
}

u32 sg_sk_ack_backlog(const struct sock *sk)
{
	return READ_ONCE(sk->sk_ack_backlog);
}

u32 sg_sk_max_ack_backlog(const struct sock *sk)
{
	return READ_ONCE(sk->sk_max_ack_backlog);
}

u32 sg_reqsk_queue_len(const struct sock *sk)
{
	return inet_csk_reqsk_queue_len(sk);
}

int sg_sk_state(const struct sock *sk)
{
	return READ_ONCE(sk->sk_state);
}

u16 sg_sk_family(const struct sock *sk)
{
	return sk->sk_family;
}

u16 sg_sk_type(const struct sock *sk)
{
	return sk->sk_type;
}

u16 sg_sk_protocol(const struct sock *sk)
{
	return sk->sk_protocol;
}

bool sg_sk_ipv6only(const struct sock *sk)
{
	return ipv6_only_sock(sk);
}

u16 sg_sk_local_port(const struct sock *sk)
{
	return READ_ONCE(inet_sk(sk)->inet_num);
}

void sg_sk_local_addr(const struct sock *sk, u8 addr[16])
{
	memset(addr, 0, 16);
	if (sk->sk_family == AF_INET)
		memcpy(addr, &sk->sk_rcv_saddr, 4);
#if IS_ENABLED(CONFIG_IPV6)
	else if (sk->sk_family == AF_INET6)
		memcpy(addr, &sk->sk_v6_rcv_saddr, 16);
#endif
}

struct net *sg_sock_net(const struct sock *sk)
{
	return sock_net(sk);
}

u64 sg_sock_cookie(struct sock *sk)
{
	u32 cookie[2];

	sock_diag_save_cookie(sk, cookie);
	return ((u64)cookie[1] << 32) | cookie[0];
}

void sg_sockfd_put(struct socket *sock)
{
	sockfd_put(sock);
}

int sg_copy_from_sockptr(void *dst, sockptr_t src, size_t size)
{
	return copy_from_sockptr(dst, src, size) ? -EFAULT : 0;
}

int sg_copy_to_sockptr(sockptr_t dst, const void *src, size_t size)
{
	return copy_to_sockptr(dst, src, size) ? -EFAULT : 0;
}

void sg_rcu_read_lock(void)
{
	rcu_read_lock();
}

void sg_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

void sg_warn(const char *msg)
{
	WARN(1, "sockgroup: %s\n", msg);
}

/*
 * A reference on a module whose init has completed: not one still loading
 * (whose failed init frees its text without waiting for references) nor one
 * going away.  Once the state is LIVE, only delete_module() ends it, and it
 * waits for the count to reach zero.
 */
bool sg_try_module_get_live(struct module *mod)
{
	return READ_ONCE(mod->state) == MODULE_STATE_LIVE && try_module_get(mod);
}

void sg_module_put(struct module *mod)
{
	module_put(mod);
}

/*
 * A socket option call that a task makes (a syscall, io_uring), not one from
 * a BPF program (bpf_{set,get}sockopt(), with the socket locked, maybe in
 * softirq) nor from an interrupt.
 */
bool sg_sockopt_from_task(void)
{
	return in_task() && !has_current_bpf_ctx();
}

unsigned long sg_ftrace_regs_get_argument(struct ftrace_regs *fregs, unsigned int n)
{
	return ftrace_regs_get_argument(fregs, n);
}

void sg_ftrace_regs_set_ip(struct ftrace_regs *fregs, unsigned long ip)
{
	ftrace_regs_set_instruction_pointer(fregs, ip);
}

/* net_generic(), or NULL for an id beyond a namespace's array (one
 * allocated before the id's registration and not set up yet).
 */
void *sg_net_generic(const struct net *net, unsigned int id)
{
	struct net_generic *ng;
	void *ptr = NULL;

	rcu_read_lock();
	ng = rcu_dereference(net->gen);
	if (id < ng->s.len)
		ptr = ng->ptr[id];
	rcu_read_unlock();
	return ptr;
}

void sg_init_delayed_work(struct delayed_work *dw, work_func_t fn)
{
	INIT_DELAYED_WORK(dw, fn);
}

bool sg_queue_delayed_work(struct delayed_work *dw, unsigned int msecs)
{
	return queue_delayed_work(system_wq, dw, msecs_to_jiffies(msecs));
}

struct delayed_work *sg_to_delayed_work(struct work_struct *work)
{
	return to_delayed_work(work);
}

bool sg_mod_delayed_work(struct delayed_work *dw, unsigned int msecs)
{
	return mod_delayed_work(system_wq, dw, msecs_to_jiffies(msecs));
}

void sg_sk_callback_write_lock(struct sock *sk)
{
	write_lock_bh(&sk->sk_callback_lock);
}

void sg_sk_callback_write_unlock(struct sock *sk)
{
	write_unlock_bh(&sk->sk_callback_lock);
}

void sg_sk_callback_read_lock(struct sock *sk)
{
	read_lock_bh(&sk->sk_callback_lock);
}

void sg_sk_callback_read_unlock(struct sock *sk)
{
	read_unlock_bh(&sk->sk_callback_lock);
}

void sg_crypto_free_shash(struct crypto_shash *tfm)
{
	crypto_free_shash(tfm);
}

unsigned int sg_crypto_shash_descsize(struct crypto_shash *tfm)
{
	return crypto_shash_descsize(tfm);
}

int sg_crypto_shash_init(struct shash_desc *desc)
{
	return crypto_shash_init(desc);
}

void sg_memzero_explicit(void *p, size_t size)
{
	memzero_explicit(p, size);
}

bool sg_crypto_memneq(const void *a, const void *b, size_t size)
{
	return crypto_memneq(a, b, size);
}

#ifdef CONFIG_FAULT_INJECTION_DEBUG_FS
static DECLARE_FAULT_ATTR(sg_fail_sweep);
static struct dentry *sg_fail_sweep_dir;

/* Idempotent: a second call keeps the first directory. */
void sg_fault_register(void)
{
	struct dentry *dir;

	if (sg_fail_sweep_dir)
		return;
	dir = fault_create_debugfs_attr("fail_sockgroup_sweep", NULL, &sg_fail_sweep);
	if (!IS_ERR(dir))
		sg_fail_sweep_dir = dir;
}

void sg_fault_unregister(void)
{
	debugfs_remove_recursive(sg_fail_sweep_dir);
	sg_fail_sweep_dir = NULL;
}

bool sg_fault_sweep(void)
{
	return should_fail(&sg_fail_sweep, 1);
}
#else
void sg_fault_register(void)
{
}

void sg_fault_unregister(void)
{
}

bool sg_fault_sweep(void)
{
	return false;
}
#endif

struct net *sg_seq_file_single_net(struct seq_file *seq)
{
	return seq_file_single_net(seq);
}

int sg_skb_tcp_flags(struct sk_buff *skb, u8 pf, int *thoff)
{
	struct tcphdr _th;
	const struct tcphdr *th;

	if (pf == NFPROTO_IPV4) {
		if (ip_hdr(skb)->protocol != IPPROTO_TCP || ip_is_fragment(ip_hdr(skb)))
			return -1;
		*thoff = skb_network_offset(skb) + ip_hdrlen(skb);
	} else {
		u8 nexthdr = ipv6_hdr(skb)->nexthdr;
		__be16 frag_off;
		int off = ipv6_skip_exthdr(skb, skb_network_offset(skb) + sizeof(struct ipv6hdr),
					   &nexthdr, &frag_off);

		if (off < 0 || nexthdr != IPPROTO_TCP || (frag_off & htons(~0x7)))
			return -1;
		*thoff = off;
	}
	th = skb_header_pointer(skb, *thoff, sizeof(_th), &_th);
	if (!th)
		return -1;
	return tcp_flag_byte(th);
}

struct sock *sg_skb_lookup_listener(struct net *net, struct sk_buff *skb, u8 pf, int thoff)
{
	struct inet_hashinfo *hinfo = net->ipv4.tcp_death_row.hashinfo;
	struct tcphdr _th;
	const struct tcphdr *th = skb_header_pointer(skb, thoff, sizeof(_th), &_th);

	if (!th)
		return NULL;
	if (pf == NFPROTO_IPV4) {
		const struct iphdr *iph = ip_hdr(skb);

		return inet_lookup_listener(net, hinfo, skb, thoff, iph->saddr, th->source,
					    iph->daddr, th->dest, inet_iif(skb), inet_sdif(skb));
	}
#if IS_ENABLED(CONFIG_IPV6)
	return inet6_lookup_listener(net, hinfo, skb, thoff, &ipv6_hdr(skb)->saddr, th->source,
				     &ipv6_hdr(skb)->daddr, ntohs(th->dest), inet6_iif(skb),
				     inet6_sdif(skb));
#else
	return NULL;
#endif
}

bool sg_skb_has_sk(const struct sk_buff *skb)
{
	return skb->sk;
}

/* As nf_tproxy_assign_sock(): the TCP receive path takes skb->sk as its
 * socket (skb_steal_sock()); sock_edemux drops the reference we take.
 */
bool sg_skb_assign_sock(struct sk_buff *skb, struct sock *sk)
{
	if (!refcount_inc_not_zero(&sk->sk_refcnt))
		return false;
	skb_orphan(skb);
	skb->sk = sk;
	skb->destructor = sock_edemux;
	return true;
}

/*
 * Whether the segment's 4-tuple has a socket in the established hash: a
 * full socket, a request socket (a handshake under way) or a TIME_WAIT one,
 * found as TCP's own receive path finds it (__inet_lookup_skb(), early
 * demux, nf_tproxy_get_sock_v4()).  The lookup takes a reference on what it
 * finds, of any of the three kinds; sock_gen_put() drops it for each.
 */
bool sg_skb_has_established(struct net *net, struct sk_buff *skb, u8 pf, int thoff)
{
	struct inet_hashinfo *hinfo = net->ipv4.tcp_death_row.hashinfo;
	struct tcphdr _th;
	const struct tcphdr *th = skb_header_pointer(skb, thoff, sizeof(_th), &_th);
	struct sock *sk = NULL;

	if (!th)
		return false;
	if (pf == NFPROTO_IPV4) {
		const struct iphdr *iph = ip_hdr(skb);

		sk = __inet_lookup_established(net, hinfo, iph->saddr, th->source, iph->daddr,
					       ntohs(th->dest), inet_iif(skb), inet_sdif(skb));
	}
#if IS_ENABLED(CONFIG_IPV6)
	else
		sk = __inet6_lookup_established(net, hinfo, &ipv6_hdr(skb)->saddr, th->source,
						&ipv6_hdr(skb)->daddr, ntohs(th->dest),
						inet6_iif(skb), inet6_sdif(skb));
#endif
	if (!sk)
		return false;
	sock_gen_put(sk);
	return true;
}

/* net.ipv4.tcp_syncookies of the namespace (2: every SYN gets a cookie). */
u8 sg_net_tcp_syncookies(const struct net *net)
{
	return READ_ONCE(net->ipv4.sysctl_tcp_syncookies);
}

/*
 * Connection tracking and NAT, for rewrite groups.
 *
 * Every call below is a direct call to a weak reference (helpers.h),
 * relocated by the module loader (R_X86_64_PLT32) to the function's entry:
 * on an IBT kernel that is the function's own ENDBR, and a direct call
 * carries no kCFI type check, so it is right on every kernel.  (An earlier
 * version called nf_nat_setup_info() through the address a kprobe found,
 * which on IBT kernels is the entry plus the 4-byte ENDBR: #CP on CPUs that
 * enforce IBT, and a kCFI hash mismatch.)  selftests/nat_call_check verifies
 * the relocations in the built module.
 *
 * A weak reference that nothing exports stays 0 (kernel/module/main.c,
 * simplify_symbols()), so each helper first checks sg_nat_available(); one
 * that resolved names a function in vmlinux or in a module the loader made
 * us depend on (ref_module()), which cannot be unloaded before us.
 */
bool sg_nat_available(void)
{
	return nf_ct_netns_get && nf_ct_netns_put && nf_nat_ipv4_register_fn &&
	       nf_nat_ipv4_unregister_fn && nf_nat_ipv6_register_fn &&
	       nf_nat_ipv6_unregister_fn && nf_nat_setup_info;
}

int sg_nf_ct_netns_get(struct net *net, u8 nfproto)
{
	if (!sg_nat_available())
		return -ENOPKG;
	return nf_ct_netns_get(net, nfproto);
}

void sg_nf_ct_netns_put(struct net *net, u8 nfproto)
{
	if (sg_nat_available())
		nf_ct_netns_put(net, nfproto);
}

int sg_nf_nat_register_fn(struct net *net, const struct nf_hook_ops *ops)
{
	if (!sg_nat_available())
		return -ENOPKG;
	if (ops->pf == NFPROTO_IPV4)
		return nf_nat_ipv4_register_fn(net, ops);
	return nf_nat_ipv6_register_fn(net, ops);
}

void sg_nf_nat_unregister_fn(struct net *net, const struct nf_hook_ops *ops)
{
	if (!sg_nat_available())
		return;
	if (ops->pf == NFPROTO_IPV4)
		nf_nat_ipv4_unregister_fn(net, ops);
	else
		nf_nat_ipv6_unregister_fn(net, ops);
}

bool sg_maybe_get_net(struct net *net)
{
	return maybe_get_net(net);
}

void sg_put_net(struct net *net)
{
	put_net(net);
}

static DEFINE_MUTEX(sg_nat_mutex);

void sg_nat_lock(void)
{
	mutex_lock(&sg_nat_mutex);
}

void sg_nat_unlock(void)
{
	mutex_unlock(&sg_nat_mutex);
}

struct nf_conn *sg_nf_ct_new(struct sk_buff *skb)
{
	enum ip_conntrack_info ctinfo;
	struct nf_conn *ct = nf_ct_get(skb, &ctinfo);

	if (!ct || ctinfo != IP_CT_NEW || nf_nat_initialized(ct, NF_NAT_MANIP_DST))
		return NULL;
	return ct;
}

/*
 * Conntrack's entries: direct calls to weak references, as above; a NULL
 * reference (no conntrack) finds nothing.
 */
struct nf_conn *sg_nf_ct_find_get(struct net *net, const struct nf_conntrack_tuple *tuple)
{
	struct nf_conntrack_tuple_hash *h;

	if (!nf_conntrack_find_get || !nf_ct_delete || !nf_ct_destroy || !&nf_ct_zone_dflt)
		return NULL;
	h = nf_conntrack_find_get(net, &nf_ct_zone_dflt, tuple);
	return h ? nf_ct_tuplehash_to_ctrack(h) : NULL;
}

bool sg_nf_ct_delete(struct nf_conn *ct)
{
	return nf_ct_delete(ct, 0, 0);
}

void sg_nf_ct_put(struct nf_conn *ct)
{
	nf_ct_put(ct);
}

unsigned int sg_nat_setup_dst(struct nf_conn *ct, u8 pf, const u8 addr[16], bool map_addr,
			      u16 port)
{
	struct nf_nat_range2 range = {
		.flags = NF_NAT_RANGE_PROTO_SPECIFIED,
		.min_proto.tcp.port = htons(port),
		.max_proto.tcp.port = htons(port),
	};

	if (map_addr) {
		range.flags |= NF_NAT_RANGE_MAP_IPS;
		if (pf == NFPROTO_IPV4)
			memcpy(&range.min_addr.ip, addr, 4);
		else
			memcpy(&range.min_addr.in6, addr, 16);
		range.max_addr = range.min_addr;
	}
	if (!sg_nat_available())
		return NF_ACCEPT;
	return nf_nat_setup_info(ct, &range, NF_NAT_MANIP_DST);
}

bool sg_skb_daddr_is_local(struct net *net, struct sk_buff *skb, u8 pf)
{
	if (pf == NFPROTO_IPV4)
		return inet_addr_type(net, ip_hdr(skb)->daddr) == RTN_LOCAL;
#if IS_ENABLED(CONFIG_IPV6)
	return ipv6_chk_addr(net, &ipv6_hdr(skb)->daddr, NULL, 0);
#else
	return false;
#endif
}

/*
 * The KUnit suite is its own module (sockgroup_kunit.ko, rust/sockgroup_kunit.c,
 * built only for kernels with KUnit): it calls these, exported to it in the
 * EXPORTED_FOR_KUNIT_TESTING namespace, which run our Rust (rust/kunit.rs).
 */
#if IS_ENABLED(CONFIG_KUNIT)
void sg_kunit_listener_probe(struct sg_listener_report *out, int backlog)
{
	sg_rs_kunit_listener_probe(out, backlog);
}
EXPORT_SYMBOL_IF_KUNIT(sg_kunit_listener_probe);

int sg_kunit_ring_choose(bool primary, u32 len, u32 addressed, u64 full_mask)
{
	return sg_rs_kunit_ring_choose(primary, len, addressed, full_mask);
}
EXPORT_SYMBOL_IF_KUNIT(sg_kunit_ring_choose);

void sg_kunit_channel_pair(struct sg_channel_report *out)
{
	sg_rs_kunit_channel_pair(out);
}
EXPORT_SYMBOL_IF_KUNIT(sg_kunit_channel_pair);

void sg_kunit_hmac(struct sg_hmac_report *out, const u8 *key, size_t key_len,
		   const u8 *data, size_t len)
{
	sg_rs_kunit_hmac(out, key, key_len, data, len);
}
EXPORT_SYMBOL_IF_KUNIT(sg_kunit_hmac);

int sg_kunit_rules(void)
{
	return sg_rs_kunit_rules();
}
EXPORT_SYMBOL_IF_KUNIT(sg_kunit_rules);

void sg_kunit_syn_bench(struct sg_syn_bench_report *out, u32 members, u32 iters,
			u32 rounds)
{
	sg_rs_kunit_syn_bench(out, members, iters, rounds);
}
EXPORT_SYMBOL_IF_KUNIT(sg_kunit_syn_bench);

void sg_kunit_replay(struct sg_replay_report *out, bool v6, u32 which)
{
	sg_rs_kunit_replay(out, v6, which);
}
EXPORT_SYMBOL_IF_KUNIT(sg_kunit_replay);

int sg_kunit_owner(void)
{
	return sg_rs_kunit_owner();
}
EXPORT_SYMBOL_IF_KUNIT(sg_kunit_owner);
#endif

/* Generic netlink (rust/genetlink.rs) */
/* The request's attributes (the family has no header of its own). */
const void *sg_genl_info_attrs(const struct genl_info *info, int *len)
{
	*len = nlmsg_attrlen(info->nlhdr, GENL_HDRLEN);
	return nlmsg_attrdata(info->nlhdr, GENL_HDRLEN);
}

struct net *sg_genl_info_net(const struct genl_info *info)
{
	return genl_info_net(info);
}

struct sk_buff *sg_genlmsg_new(void)
{
	return genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
}

void *sg_genlmsg_put_reply(struct sk_buff *skb, struct genl_info *info,
			   const struct genl_family *family, u8 cmd)
{
	return genlmsg_put_reply(skb, info, family, 0, cmd);
}

void *sg_genlmsg_put_dump(struct sk_buff *skb, struct netlink_callback *cb,
			  const struct genl_family *family, u8 cmd)
{
	return genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			   family, NLM_F_MULTI, cmd);
}

void *sg_genlmsg_put_event(struct sk_buff *skb,
			   const struct genl_family *family, u8 cmd)
{
	return genlmsg_put(skb, 0, 0, family, 0, cmd);
}

void sg_genlmsg_end(struct sk_buff *skb, void *hdr)
{
	genlmsg_end(skb, hdr);
}

void sg_genlmsg_cancel(struct sk_buff *skb, void *hdr)
{
	genlmsg_cancel(skb, hdr);
}

int sg_genlmsg_reply(struct sk_buff *skb, struct genl_info *info)
{
	return genlmsg_reply(skb, info);
}

int sg_genlmsg_multicast_netns(const struct genl_family *family,
			       struct net *net, struct sk_buff *skb,
			       unsigned int group)
{
	return genlmsg_multicast_netns(family, net, skb, 0, group, GFP_ATOMIC);
}

void sg_nlmsg_free(struct sk_buff *skb)
{
	nlmsg_free(skb);
}

struct nlattr *sg_nla_nest_start(struct sk_buff *skb, int attrtype)
{
	return nla_nest_start(skb, attrtype);
}

void sg_nla_nest_end(struct sk_buff *skb, struct nlattr *start)
{
	nla_nest_end(skb, start);
}

void sg_nla_nest_cancel(struct sk_buff *skb, struct nlattr *start)
{
	nla_nest_cancel(skb, start);
}

u8 sg_genl_dump_cmd(const struct netlink_callback *cb)
{
	return ((const struct genlmsghdr *)nlmsg_data(cb->nlh))->cmd;
}

struct net *sg_genl_dump_net(const struct sk_buff *skb)
{
	return sock_net(skb->sk);
}

unsigned int sg_skb_len(const struct sk_buff *skb)
{
	return skb->len;
}

/*
 * The front-end hold (rust/netfilter.rs).
 */

/* The TCP segment's addresses, ports, sequence numbers, flags and payload. */
bool sg_skb_tcp_seg(struct sk_buff *skb, u8 pf, struct sg_tcp_seg *out)
{
	struct tcphdr _th;
	const struct tcphdr *th;
	int thoff, flags = sg_skb_tcp_flags(skb, pf, &thoff);
	u32 doff;

	if (flags < 0)
		return false;
	th = skb_header_pointer(skb, thoff, sizeof(_th), &_th);
	if (!th)
		return false;
	doff = th->doff * 4;
	if (doff < sizeof(*th) || thoff + doff > skb->len)
		return false;
	memset(out->saddr, 0, 16);
	memset(out->daddr, 0, 16);
	if (pf == NFPROTO_IPV4) {
		memcpy(out->saddr, &ip_hdr(skb)->saddr, 4);
		memcpy(out->daddr, &ip_hdr(skb)->daddr, 4);
	} else {
		memcpy(out->saddr, &ipv6_hdr(skb)->saddr, 16);
		memcpy(out->daddr, &ipv6_hdr(skb)->daddr, 16);
	}
	out->thoff = thoff;
	out->seq = ntohl(th->seq);
	out->ack_seq = ntohl(th->ack_seq);
	out->payload_off = thoff + doff;
	out->payload_len = skb->len - (thoff + doff);
	out->sport = ntohs(th->source);
	out->dport = ntohs(th->dest);
	out->window = ntohs(th->window);
	out->flags = flags;
	return true;
}

/*
 * The socket TCP will give the segment: the one early demux attached
 * (skb->sk), else the established hash's (full, request or TIME_WAIT),
 * attached as early demux attaches it (tcp_v4_early_demux(): the lookup's
 * reference, dropped by sock_edemux with the packet; tcp_v4_rcv() takes it
 * with skb_steal_sock()).  NULL: none (a listener's, or no socket).
 */
struct sock *sg_skb_demux(struct net *net, struct sk_buff *skb, u8 pf,
			  const struct sg_tcp_seg *seg)
{
	struct inet_hashinfo *hinfo = net->ipv4.tcp_death_row.hashinfo;
	struct sock *sk = skb->sk;

	if (sk)
		return sk;
	if (pf == NFPROTO_IPV4) {
		const struct iphdr *iph = ip_hdr(skb);

		sk = __inet_lookup_established(net, hinfo, iph->saddr, htons(seg->sport),
					       iph->daddr, seg->dport, inet_iif(skb),
					       inet_sdif(skb));
	}
#if IS_ENABLED(CONFIG_IPV6)
	else
		sk = __inet6_lookup_established(net, hinfo, &ipv6_hdr(skb)->saddr,
						htons(seg->sport), &ipv6_hdr(skb)->daddr,
						seg->dport, inet6_iif(skb), inet6_sdif(skb));
#endif
	if (!sk)
		return NULL;
	skb->sk = sk;
	skb->destructor = sock_edemux;
	return sk;
}

/* What a request socket (TCP_NEW_SYN_RECV) learned in the handshake. */
bool sg_reqsk_info(const struct sock *sk, struct sg_req_info *out)
{
	const struct request_sock *req;
	const struct inet_request_sock *ireq;
	const struct tcp_request_sock *treq;

	if (READ_ONCE(sk->sk_state) != TCP_NEW_SYN_RECV)
		return false;
	req = inet_reqsk(sk);
	ireq = inet_rsk(req);
	treq = tcp_rsk(req);
	out->rcv_isn = treq->rcv_isn;
	out->snt_isn = treq->snt_isn;
	out->ts_off = treq->ts_off;
	out->ts_recent = READ_ONCE(req->ts_recent);
	out->mss = req->mss;
	out->snd_wscale = ireq->snd_wscale;
	out->rcv_wscale = ireq->rcv_wscale;
	out->wscale_ok = ireq->wscale_ok;
	out->sack_ok = ireq->sack_ok;
	out->tstamp_ok = ireq->tstamp_ok;
	out->ecn_ok = ireq->ecn_ok;
	return true;
}

/* What a TIME_WAIT socket keeps, as tcp_timewait_state_process reads it. */
bool sg_tw_info(const struct sock *sk, struct sg_tw_info *out)
{
	const struct inet_timewait_sock *tw;
	const struct tcp_timewait_sock *tcptw;

	if (READ_ONCE(sk->sk_state) != TCP_TIME_WAIT)
		return false;
	tw = inet_twsk(sk);
	tcptw = tcp_twsk(sk);
	out->rcv_nxt = READ_ONCE(tcptw->tw_rcv_nxt);
	out->ts_recent = READ_ONCE(tcptw->tw_ts_recent);
	out->ts_recent_stamp = READ_ONCE(tcptw->tw_ts_recent_stamp);
	out->now_s = (u32)ktime_get_seconds();
	out->fin_wait2 = READ_ONCE(tw->tw_substate) == TCP_FIN_WAIT2;
	return true;
}

/*
 * Takes a TIME_WAIT socket out of the hash and frees it, consuming the
 * caller's reference, as TCP does for a SYN that reopens its connection
 * (and inet_twsk_purge, in process context, with softirqs disabled).
 */
void sg_tw_kill(struct sock *sk)
{
	local_bh_disable();
	inet_twsk_deschedule_put(inet_twsk(sk));
	local_bh_enable();
}

/*
 * inet_csk_reset_xmit_timer() is inline: the retransmission or zero window
 * probe timer (what) of a socket whose lock the caller owns, to fire at once.
 */
void sg_xmit_timer_now(struct sock *sk, int what)
{
	inet_csk_reset_xmit_timer(sk, what, 0, TCP_RTO_MAX);
}

/*
 * __tcp_set_rto() is inline: the retransmission timeout of a socket without
 * backoff, bounded as tcp_retransmit_timer() bounds it for thin streams.
 */
u32 sg_tcp_rto_base(const struct sock *sk)
{
	return clamp(__tcp_set_rto(tcp_sk(sk)), tcp_rto_min(sk), TCP_RTO_MAX);
}

/* Whether a listener accepts TCP Fast Open (listen backlog for TFO set). */
bool sg_sk_fastopen(const struct sock *sk)
{
	return READ_ONCE(sk->sk_state) == TCP_LISTEN &&
	       READ_ONCE(inet_csk(sk)->icsk_accept_queue.fastopenq.max_qlen) > 0;
}

/* Whether the ACK carries a valid SYN cookie (as cookie_v{4,6}_check()). */
bool sg_skb_syncookie_valid(struct sk_buff *skb, u8 pf, u32 thoff)
{
#ifdef CONFIG_SYN_COOKIES
	struct tcphdr _th;
	const struct tcphdr *th = skb_header_pointer(skb, thoff, sizeof(_th), &_th);

	if (!th)
		return false;
	if (pf == NFPROTO_IPV4)
		return __cookie_v4_check(ip_hdr(skb), th) != 0;
#if IS_ENABLED(CONFIG_IPV6)
	return __cookie_v6_check(ipv6_hdr(skb), th) != 0;
#endif
#endif
	return false;
}

/* The TCP checksum verified (nf_checksum(); NFPROTO_* equal AF_*). */
bool sg_skb_csum_ok(struct sk_buff *skb, u8 pf, u32 thoff)
{
	return !nf_checksum(skb, NF_INET_LOCAL_IN, thoff, IPPROTO_TCP, pf);
}

/*
 * Keeps a stolen packet's hook state as __nf_queue() does: a prefetched
 * socket referenced, the route referenced (skb_dst_force()), references
 * on the devices and the hook's socket.  false: not kept (nothing held).
 */
bool sg_hold_state_get(struct sk_buff *skb, const struct nf_hook_state *state,
		       struct nf_hook_state *saved)
{
	if (skb->dev != state->in)
		return false;
	if (skb_sk_is_prefetched(skb)) {
		struct sock *sk = skb->sk;

		if (!sk_is_refcounted(sk)) {
			if (!refcount_inc_not_zero(&sk->sk_refcnt))
				return false;
			skb->destructor = sock_edemux;
		}
	}
	if (skb_dst(skb) && !skb_dst_force(skb))
		return false;
	if (state->sk && !refcount_inc_not_zero(&state->sk->sk_refcnt))
		return false;
	*saved = *state;
	dev_hold(saved->in);
	dev_hold(saved->out);
	return true;
}

/* Drops the references of sg_hold_state_get() (as nf_queue_entry_release_refs()). */
void sg_hold_state_put(struct nf_hook_state *saved)
{
	dev_put(saved->in);
	dev_put(saved->out);
	if (saved->sk)
		sock_gen_put(saved->sk);
}

/* Whether the packet's device is still registered. */
bool sg_hold_dev_alive(const struct nf_hook_state *saved)
{
	return !saved->in || READ_ONCE(saved->in->reg_state) == NETREG_REGISTERED;
}

/*
 * Re-injects a stolen packet as nf_reinject() does for an NF_ACCEPT
 * verdict: the hooks after ours (ops) run, then okfn, under
 * rcu_read_lock() and local_bh_disable().  When our hook is no longer
 * registered (the namespace's last service went) the rest is skipped and
 * okfn runs directly.  Consumes the packet.
 */
void sg_hold_reinject(struct sk_buff *skb, struct nf_hook_state *saved,
		      const struct nf_hook_ops *ops)
{
	const struct nf_hook_entries *e;
	struct nf_hook_ops **orig;
	unsigned int i;
	int ret = 1;

	rcu_read_lock();
	local_bh_disable();
	if (saved->pf == NFPROTO_IPV4)
		e = rcu_dereference(saved->net->nf.hooks_ipv4[saved->hook]);
	else
		e = rcu_dereference(saved->net->nf.hooks_ipv6[saved->hook]);
	if (e) {
		orig = nf_hook_entries_get_hook_ops(e);
		for (i = 0; i < e->num_hook_entries; i++)
			if (orig[i] == ops)
				break;
		if (i < e->num_hook_entries)
			ret = nf_hook_slow(skb, saved, e, i + 1);
	}
	if (ret == 1)
		saved->okfn(saved->net, saved->sk, skb);
	local_bh_enable();
	rcu_read_unlock();
}

int sg_skb_copy_bits(const struct sk_buff *skb, int offset, void *to, int len)
{
	return skb_copy_bits(skb, offset, to, len);
}

/*
 * Acknowledges, for a request socket (the packet's socket, TCP_NEW_SYN_RECV),
 * the client's bytes up to ack: the ACK the request socket itself sends
 * (rsk_ops->send_ack(): our ISN + 1, its window, timestamps and options),
 * with ack in place of rcv_nxt for this one call.  Nothing when the socket
 * is no request or its listener no longer listens.
 */
void sg_reqsk_send_ack(struct sk_buff *skb, u32 ack)
{
	struct request_sock *req;
	u32 rcv_nxt;

	if (!skb->sk || READ_ONCE(skb->sk->sk_state) != TCP_NEW_SYN_RECV)
		return;
	req = inet_reqsk(skb->sk);
	if (READ_ONCE(req->rsk_listener->sk_state) != TCP_LISTEN)
		return;
	rcv_nxt = READ_ONCE(tcp_rsk(req)->rcv_nxt);
	WRITE_ONCE(tcp_rsk(req)->rcv_nxt, ack);
	req->rsk_ops->send_ack(req->rsk_listener, skb, req);
	WRITE_ONCE(tcp_rsk(req)->rcv_nxt, rcv_nxt);
}

void sg_skb_orphan(struct sk_buff *skb)
{
	skb_orphan(skb);
}

void sg_kfree_skb(struct sk_buff *skb)
{
	kfree_skb(skb);
}

struct sk_buff *sg_alloc_skb(unsigned int size)
{
	return alloc_skb(size, GFP_KERNEL);
}

void sg_skb_reset_network_header(struct sk_buff *skb)
{
	skb_reset_network_header(skb);
}

/* The IP packet's length from its network header; -1 for a GSO packet. */
int sg_skb_ip_len(const struct sk_buff *skb)
{
	return skb_is_gso(skb) ? -1 : (int)(skb->len - skb_network_offset(skb));
}

struct sk_buff *sg_skb_gso_segment(struct sk_buff *skb)
{
	return skb_gso_segment(skb, 0);
}

struct sk_buff *sg_skb_next(const struct sk_buff *skb)
{
	return skb->next;
}

void sg_skb_mark_not_on_list(struct sk_buff *skb)
{
	skb_mark_not_on_list(skb);
}

/* The MTU of the packet's route; 0 without one. */
unsigned int sg_skb_dst_mtu(const struct sk_buff *skb)
{
	return skb_dst(skb) ? dst_mtu(skb_dst(skb)) : 0;
}

/*
 * Copies the IP packet; where a CHECKSUM_PARTIAL transport checksum starts
 * in the copy (-1: none) and its field's offset from there.
 */
int sg_skb_copy_ip(const struct sk_buff *skb, void *to, int len, int *csum_start, int *csum_off)
{
	*csum_start = skb->ip_summed == CHECKSUM_PARTIAL ?
		skb_checksum_start_offset(skb) - skb_network_offset(skb) : -1;
	*csum_off = skb->csum_offset;
	return skb_copy_bits(skb, skb_network_offset(skb), to, len);
}

/* The source address of the packet's IP header; true for IPv6. */
bool sg_skb_ip_saddr(const struct sk_buff *skb, u8 out[16])
{
	if (ip_hdr(skb)->version == 6) {
		memcpy(out, &ipv6_hdr(skb)->saddr, 16);
		return true;
	}
	memcpy(out, &ip_hdr(skb)->saddr, 4);
	return false;
}

int sg_skb_linearize(struct sk_buff *skb)
{
	return skb_linearize(skb);
}

/* A decapsulated packet: headers at its start, for this host, unchecked. */
void sg_skb_decap_reset(struct sk_buff *skb)
{
	skb_reset_network_header(skb);
	skb_reset_mac_header(skb);
	skb->pkt_type = PACKET_HOST;
	skb->ip_summed = CHECKSUM_NONE;
}

u32 sg_skb_mark(const struct sk_buff *skb)
{
	return skb->mark;
}

void sg_skb_set_mark(struct sk_buff *skb, u32 mark)
{
	skb->mark = mark;
}

void sg_skb_reserve(struct sk_buff *skb, int len)
{
	skb_reserve(skb, len);
}

/* skb_dst_set() and dst_hold() are inline: the packet takes a reference. */
void sg_skb_dst_set_hold(struct sk_buff *skb, struct dst_entry *dst)
{
	skb_dst_set(skb, dst_clone(dst));
}

void *sg_sk_user_data(const struct sock *sk)
{
	return rcu_dereference_sk_user_data(sk);
}

void sg_spin_lock_bh(spinlock_t *lock)
{
	spin_lock_bh(lock);
}

void sg_spin_unlock_bh(spinlock_t *lock)
{
	spin_unlock_bh(lock);
}

u64 sg_jiffies64_ms(void)
{
	return jiffies64_to_msecs(get_jiffies_64());
}

u32 sg_get_random_u32(void)
{
	return get_random_u32();
}

bool sg_check_net(const struct net *net)
{
	return check_net(net);
}

/* The accept queue's move (rust/request_sock.rs): what the kernel inlines. */

void sg_spin_lock(spinlock_t *lock)
{
	spin_lock(lock);
}

void sg_spin_unlock(spinlock_t *lock)
{
	spin_unlock(lock);
}

void sg_local_bh_disable(void)
{
	local_bh_disable();
}

void sg_local_bh_enable(void)
{
	local_bh_enable();
}

void sg_bh_lock_sock(struct sock *sk)
{
	bh_lock_sock(sk);
}

void sg_bh_unlock_sock(struct sock *sk)
{
	bh_unlock_sock(sk);
}

void sg_sk_acceptq_removed(struct sock *sk)
{
	sk_acceptq_removed(sk);
}

struct request_sock *sg_reqsk_alloc(const struct request_sock *req)
{
	return kmem_cache_alloc(req->rsk_ops->slab, GFP_KERNEL | __GFP_NOWARN);
}

void sg_reqsk_put(struct request_sock *req)
{
	reqsk_put(req);
}
