/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * sockgroup: service groups of listening TCP sockets.
 *
 * setsockopt(fd, SOL_SOCKET, SO_SERVICE_GROUP, req, len) links fd and the
 * listening sockets req->fds[] into one group, a ring in that order (fd
 * first).  When a SYN arrives for a member whose accept queue is full
 * (counting the handshakes already under way), the module hands it to a
 * sibling that can take it, chosen by the group's policy.  When every member
 * is full, the kernel's own overflow handling applies and the group counts it.
 * A SYN for a 4-tuple that TCP already has a socket for (a retransmission
 * while the handshake is under way, a new connection on a TIME_WAIT 4-tuple)
 * is always left to TCP on the addressed member.  In steer mode no SYN is
 * redirected while net.ipv4.tcp_syncookies is 2, and a sibling that would
 * answer with a SYN cookie (its request queue over its backlog) takes none:
 * the cookie's ACK would be looked up on the addressed member.
 *
 * A request with count 0 takes fd out of its group.  A request on a member
 * of an existing group re-forms that group with the new list (members left
 * out leave it; counters of members that stay are kept).  A group lives
 * while it has members: the last one left stays a group of one until it
 * leaves or re-forms a group.  A member that stops listening (close(),
 * shutdown()) leaves its group within moments, even if it listens again.
 *
 * Two ways to redirect, per group: steer (flags 0) hands the SYN to the
 * sibling as addressed (getsockname() on the accepted socket shows the
 * address the client dialled); rewrite (SOCKGROUP_F_REWRITE) maps the
 * connection's destination to the sibling's bound address and port with the
 * kernel's conntrack NAT, and replies are translated back: the client sees
 * only the address it dialled, getsockname() shows the sibling's.  A rewrite
 * group turns connection tracking and NAT on in the network namespace, so it
 * needs CAP_NET_ADMIN in the user namespace that owns fd's network namespace
 * (root, or the owner of a user namespace in a network namespace of its
 * own); a steer group needs no privilege (the caller owns every fd).
 *
 * Both calls pass the checks every socket option passes: the LSM hooks
 * (security_socket_setsockopt/getsockopt) may refuse either; a cgroup BPF
 * setsockopt program may refuse a setsockopt (EPERM when it returns 0) or
 * change its buffer; cgroup BPF getsockopt programs see, and may override,
 * a getsockopt's result.
 *
 * Stall rescue (version 2 of the request, struct sockgroup_req_v2, with
 * stall_ms > 0): a member is stalled when its accept queue has held the same
 * oldest connection for stall_ms milliseconds, that is, its queue was not
 * empty and it accepted nothing for that long.  New SYNs for a stalled member
 * are treated as for a full one (they go to a sibling), and the connections
 * waiting in its accept queue are moved, oldest first, to the accept queues of
 * serving siblings that have room (chosen by the group's policy), as the
 * kernel moves them between SO_REUSEPORT listeners when one closes; bytes the
 * client sent stay with the connection.  A moved connection keeps its
 * addresses in both modes (steer: the address the client dialled; rewrite:
 * the address conntrack translated it to, if it was translated): the socket
 * moves, not the connection.  An IPv4 connection moves only to an AF_INET
 * member, an IPv6 one only to an AF_INET6 member (an IPv4-mapped one not to
 * an IPV6_V6ONLY member); a TCP Fast Open connection whose handshake is not
 * complete stays.  A member that accepts again is serving at once.  While a
 * stalled member's queue is empty, one new connection per max(stall_ms, 1 s)
 * is let through to it as a probe: accepted, the member serves again; not
 * accepted, it is rescued like the others.  Groups with stall_ms 0 (and
 * version 1 requests) pay nothing for it.
 *
 * getsockopt(fd, SOL_SOCKET, SO_SERVICE_GROUP, buf, &len) reads fd's group:
 * a struct sockgroup_info followed by info.count struct sockgroup_member.
 * A caller that puts SOCKGROUP_VERSION_2 in the first __u32 of buf (len at
 * least 4) gets a struct sockgroup_info_v2 followed by info.count struct
 * sockgroup_member_v2 (info.member_size bytes each) instead; any other
 * value gets the version 1 reply.  When len is too small for all of it, len
 * is set to the size needed and the call fails with ERANGE (as SO_PEERGROUPS
 * does).
 *
 * Errors of setsockopt (a failed call changes no group):
 *   EFAULT        req is not readable
 *   EINVAL        len shorter than the header or not header + 4 * count;
 *                 unknown version, flags or policy; stall_ms not 0 and not
 *                 within SOCKGROUP_STALL_MIN_MS..SOCKGROUP_STALL_MAX_MS;
 *                 reserved not 0; an fd listed twice (or
 *                 fd itself listed); a member that is not listening
 *   E2BIG         count > SOCKGROUP_MAX_MEMBERS - 1
 *   EBADF         an fd that is not open
 *   ENOTSOCK      an fd that is not a socket
 *   EOPNOTSUPP    a socket that is not TCP over IPv4 or IPv6
 *   EXDEV         a socket of another network namespace than fd's
 *   EAFNOSUPPORT  a socket of another address family than fd's (an IPv6
 *                 socket that is not IPV6_V6ONLY may join IPv4 sockets)
 *   EBUSY         a socket that is in another group
 *   EPERM         SOCKGROUP_F_REWRITE with count > 0, and the caller lacks
 *                 CAP_NET_ADMIN in the user namespace that owns fd's network
 *                 namespace (checked before any fd); or a cgroup BPF
 *                 setsockopt program refused the call
 *   ENOSPC        the network namespace would have more than
 *                 SOCKGROUP_MAX_GROUPS groups, or more than
 *                 SOCKGROUP_MAX_NET_MEMBERS members in all its groups
 *   ENOMEM        no memory (the groups' memory is charged to the caller's
 *                 memory cgroup)
 *   ENOPKG        SOCKGROUP_F_REWRITE, and the kernel has no connection
 *                 tracking or NAT (CONFIG_NF_NAT; as a module, load nf_nat
 *                 before sockgroup)
 *   ENOPROTOOPT   the sockgroup module is not loaded
 * Errors of getsockopt:
 *   ENOENT        fd is in no group
 *   EPERM         a cgroup BPF getsockopt program refused the call
 *   ERANGE        len too small (len is set to the size needed)
 *   EINVAL        len negative; EFAULT: buf or len not writable
 */
#ifndef _UAPI_LINUX_SOCKGROUP_H
#define _UAPI_LINUX_SOCKGROUP_H

#include <linux/types.h>

/*
 * The kernel numbers its SOL_SOCKET options densely from 1 (up to about 80
 * in 6.12, include/uapi/asm-generic/socket.h) and adds new ones at the end.
 * A loadable module cannot reserve a number there, so it takes one far above
 * that range ('S' 'G'), where no kernel option will arrive for a long time.
 */
#define SO_SERVICE_GROUP	0x5347

#define SOCKGROUP_VERSION	1	/* struct sockgroup_req; v1 replies */
#define SOCKGROUP_VERSION_2	2	/* struct sockgroup_req_v2; v2 replies */
#define SOCKGROUP_MAX_MEMBERS	64	/* per group */
#define SOCKGROUP_MAX_GROUPS	256	/* per network namespace */
#define SOCKGROUP_MAX_NET_MEMBERS	2048	/* in all groups of a network namespace */

/* Policies: how an overflowing connection's sibling is chosen. */
#define SOCKGROUP_POLICY_RING		0	/* next member in ring order */
#define SOCKGROUP_POLICY_PRIMARY	1	/* first member in list order */

/* Flags of a group. */
#define SOCKGROUP_F_REWRITE	(1U << 0)	/* rewrite the destination (conntrack NAT) */
#define SOCKGROUP_F_ALL		SOCKGROUP_F_REWRITE	/* flags this version accepts */

/* setsockopt request: a header followed by count fds. */
struct sockgroup_req {
	__u32 version;		/* SOCKGROUP_VERSION */
	__u32 flags;		/* SOCKGROUP_F_* */
	__u32 policy;		/* SOCKGROUP_POLICY_* */
	__u32 count;		/* number of fds that follow */
	__s32 fds[];
};

/* Stall rescue's threshold (sockgroup_req_v2.stall_ms), when not 0. */
#define SOCKGROUP_STALL_MIN_MS	10
#define SOCKGROUP_STALL_MAX_MS	60000

/* setsockopt request, version 2: version 1's header with stall rescue. */
struct sockgroup_req_v2 {
	__u32 version;		/* SOCKGROUP_VERSION_2 */
	__u32 flags;		/* SOCKGROUP_F_* */
	__u32 policy;		/* SOCKGROUP_POLICY_* */
	__u32 count;		/* number of fds that follow */
	__u32 stall_ms;		/* stall rescue threshold (0: off) */
	__u32 reserved;		/* 0 */
	__s32 fds[];
};

/* getsockopt reply: the group... */
struct sockgroup_info {
	__u32 version;		/* SOCKGROUP_VERSION */
	__u32 flags;
	__u32 policy;
	__u32 count;		/* members that follow */
	__u64 group_id;		/* unique in the network namespace */
	__u64 dropped;		/* SYNs that found every member full */
};

/* ...then each member, in ring order. */
struct sockgroup_member {
	__u16 family;		/* AF_INET or AF_INET6 */
	__u16 port;		/* local port, host byte order */
	__u8 state;		/* TCP state (10: listening) */
	__u8 v6only;		/* IPV6_V6ONLY set (AF_INET6) */
	__u16 reserved;
	__u8 addr[16];		/* local address: 4 bytes (AF_INET) or 16, network order */
	__u32 accept_queue;	/* connections waiting for accept() */
	__u32 accept_limit;	/* the listen() backlog */
	__u32 handshakes;	/* handshakes under way */
	__u32 reserved2;
	__u64 cookie;		/* socket cookie (SO_COOKIE, ss -e) */
	__u64 redirected_away;	/* SYNs for this member given to a sibling */
	__u64 redirected_in;	/* SYNs for a sibling taken by this member */
	__u64 dropped;		/* SYNs for this member that found every member full */
};

/* Member states of a version 2 reply. */
#define SOCKGROUP_MEMBER_SERVING	0
#define SOCKGROUP_MEMBER_STALLED	1

/* getsockopt reply, version 2 (asked for with SOCKGROUP_VERSION_2 in buf)... */
struct sockgroup_info_v2 {
	__u32 version;		/* SOCKGROUP_VERSION_2 */
	__u32 flags;
	__u32 policy;
	__u32 count;		/* members that follow */
	__u64 group_id;
	__u64 dropped;
	__u32 stall_ms;		/* stall rescue threshold (0: off) */
	__u32 member_size;	/* sizeof(struct sockgroup_member_v2) */
};

/* ...then each member, in ring order. */
struct sockgroup_member_v2 {
	struct sockgroup_member m;	/* as in version 1 */
	__u32 status;		/* SOCKGROUP_MEMBER_* */
	__u32 stalled_ms;	/* how long it has been stalled (0: serving) */
	__u64 rescued_away;	/* connections moved from its accept queue to a sibling */
	__u64 rescued_in;	/* connections moved to its accept queue from a sibling */
};

#endif /* _UAPI_LINUX_SOCKGROUP_H */
