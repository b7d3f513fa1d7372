/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prototypes of the thin C helpers in helpers.c: each wraps static inline
 * kernel functions (or bitfield and union accesses) that Rust cannot call.
 */
#ifndef SOCKGROUP_HELPERS_H
#define SOCKGROUP_HELPERS_H

#include <linux/sockptr.h>
#include <linux/types.h>
#include <net/netfilter/nf_nat.h>

struct ftrace_regs;
struct nf_conn;
struct nf_hook_ops;
struct module;
struct net;
struct seq_file;
struct sk_buff;
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

/* struct socket from a file descriptor */
void sg_sockfd_put(struct socket *sock);

/* sockptr_t: 0 or -EFAULT */
int sg_copy_from_sockptr(void *dst, sockptr_t src, size_t size);
int sg_copy_to_sockptr(sockptr_t dst, const void *src, size_t size);

/* RCU and modules */
void sg_rcu_read_lock(void);
void sg_rcu_read_unlock(void);
bool sg_try_module_get_live(struct module *mod);
void sg_module_put(struct module *mod);
bool sg_sockopt_from_task(void);

/* ftrace */
unsigned long sg_ftrace_regs_get_argument(struct ftrace_regs *fregs, unsigned int n);
void sg_ftrace_regs_set_ip(struct ftrace_regs *fregs, unsigned long ip);

/* network namespaces */
void *sg_net_generic(const struct net *net, unsigned int id);
struct net *sg_seq_file_single_net(struct seq_file *seq);

/* packets: the TCP flags byte and header offset, or -1 if not TCP */
int sg_skb_tcp_flags(struct sk_buff *skb, u8 pf, int *thoff);
struct sock *sg_skb_lookup_listener(struct net *net, struct sk_buff *skb, u8 pf, int thoff);
bool sg_skb_has_sk(const struct sk_buff *skb);
bool sg_skb_assign_sock(struct sk_buff *skb, struct sock *sk);

typedef int (*sg_nat_reg)(struct net *net, const struct nf_hook_ops *ops);
typedef void (*sg_nat_unreg)(struct net *net, const struct nf_hook_ops *ops);

/*
 * Connection tracking and NAT, looked up at run time (symbol_get) so that
 * the module loads, and steer groups work, on a kernel without NF_NAT.
 */
struct sg_nat_ops {
	int (*ct_netns_get)(struct net *net, u8 nfproto);
	void (*ct_netns_put)(struct net *net, u8 nfproto);
	sg_nat_reg v4_register;
	sg_nat_unreg v4_unregister;
	sg_nat_reg v6_register;
	sg_nat_unreg v6_unregister;
	unsigned int (*setup_info)(struct nf_conn *ct, const struct nf_nat_range2 *range,
				   enum nf_nat_manip_type maniptype);
};

bool sg_nat_ops_get(struct sg_nat_ops *ops);
/* Serializes turning NAT on and off for a namespace. */
void sg_nat_lock(void);
void sg_nat_unlock(void);
void sg_nat_ops_put(struct sg_nat_ops *ops);
/* The packet's connection, if new and its destination not yet mapped. */
struct nf_conn *sg_nf_ct_new(struct sk_buff *skb);
/* Maps the destination of a new connection to addr (if map_addr) and port. */
unsigned int sg_nat_setup_dst(const struct sg_nat_ops *ops, struct nf_conn *ct, u8 pf,
			      const u8 addr[16], bool map_addr, u16 port);
/* Whether the packet's destination is an address of this host. */
bool sg_skb_daddr_is_local(struct net *net, struct sk_buff *skb, u8 pf);

#endif
