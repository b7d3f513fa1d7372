/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel headers our bindgen run covers (see Kbuild): networking,
 * netfilter and ftrace, which the kernel crate's own bindings leave out.
 */
#include <crypto/hash.h>
#include <linux/crc32.h>
#include <linux/ftrace.h>
#include <linux/net.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/proc_fs.h>
#include <linux/random.h>
#include <linux/seq_file.h>
#include <linux/skbuff.h>
#include <linux/tcp.h>
#include <linux/workqueue.h>
#include <net/genetlink.h>
#include <net/inet_connection_sock.h>
#include <net/inet_hashtables.h>
#include <net/inet6_hashtables.h>
#include <net/ip_tunnels.h>
#include <net/ipv6.h>
#include <net/net_namespace.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/netfilter/nf_nat.h>
#include <net/netlink.h>
#include <net/netns/generic.h>
#include <net/sock.h>
#include <net/route.h>
#include <net/tcp.h>
#include <net/udp_tunnel.h>

#include "helpers.h"
#include "kunit.h"
