// SPDX-License-Identifier: GPL-2.0
/*
 * kselftest of sockgroup's service groups (SO_SERVICE_GROUP, SPEC section 1).
 *
 * Every test uses real TCP connections over loopback (127.0.0.x and ::1
 * only) and checks outcomes a user can see: a connection completes, is
 * accepted on the expected listener, carries the client's bytes intact and
 * shows the expected local address; the counters read with getsockopt; the
 * errno of a refused request, with the groups left as they were.  Every wait
 * is a poll() with a timeout, so no test can hang.
 *
 *   sockgroup_test                      the module must be loaded
 *   sockgroup_test --expect-no-module   only checks that SO_SERVICE_GROUP
 *                                       answers ENOPROTOOPT (module absent)
 *
 * The usual harness options (-l, -t NAME, -f FIXTURE, -v VARIANT, ...) work
 * in the first form.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/magic.h>
#include <linux/sockgroup.h>

/*
 * The build uses -Wextra -Werror; the harness (6.12) leaves parameters unused
 * in its TEST() wrappers and timeout handler, and its TEST_F() wrapper keeps
 * a local across setjmp().  Those two warnings are about the harness's code.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

#define REQ_HDR		16	/* version, flags, policy, count */
#define STATE_LISTEN	10	/* TCP_LISTEN */
#define MSG_LEN		64	/* bytes each client sends */
/*
 * Waits for something that must happen end as soon as it does, so they are
 * generous: under TCG on a loaded host a vCPU can stall for a second.  A
 * wait for something that must NOT happen lasts its whole length: HANG_MS
 * outlasts the first SYN retransmission (1 s), which must be dropped too.
 */
#define CONNECT_MS	5000	/* a loopback connect that must complete */
#define ACCEPT_MS	5000	/* a connection that must be waiting */
#define HANG_MS		1500	/* a connect that must NOT complete */
#define SETTLE_MS	5000	/* counters to reach a value */

_Static_assert(sizeof(struct sockgroup_req) == REQ_HDR, "request header");
_Static_assert(sizeof(struct sockgroup_info) == 32, "info layout");
_Static_assert(sizeof(struct sockgroup_member) == 72, "member layout");
_Static_assert(sizeof(struct sockgroup_req_v2) == 24, "request header, version 2");
_Static_assert(sizeof(struct sockgroup_info_v2) == 40, "info layout, version 2");
_Static_assert(sizeof(struct sockgroup_member_v2) == 96, "member layout, version 2");
_Static_assert(offsetof(struct sockgroup_member_v2, status) == 72, "member v2 status");
_Static_assert(offsetof(struct sockgroup_member_v2, rescued_in) == 88, "member v2 rescued_in");

/* ---------------------------------------------------------------- helpers */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
					  sizeof(struct sockaddr_in6);
}

static void make_sa(struct sockaddr_storage *ss, int family, const char *ip,
		    uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, ip, &sin->sin_addr);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &sin6->sin6_addr);
	}
}

static uint16_t sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static const void *sa_addr(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return &((const struct sockaddr_in *)ss)->sin_addr;
	return &((const struct sockaddr_in6 *)ss)->sin6_addr;
}

static size_t sa_addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? 4 : 16;
}

/* A v4-mapped IPv6 address as the IPv4 one; anything else unchanged. */
static void sa_unmap(const struct sockaddr_storage *in,
		     struct sockaddr_storage *out)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)in;

	*out = *in;
	if (in->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		struct in_addr a;

		memcpy(&a, &sin6->sin6_addr.s6_addr[12], 4);
		memset(out, 0, sizeof(*out));
		sin->sin_family = AF_INET;
		sin->sin_port = sin6->sin6_port;
		sin->sin_addr = a;
	}
}

/* Same family, address and port (exactly: no v4-mapped equivalence). */
static bool sa_equal(const struct sockaddr_storage *a,
		     const struct sockaddr_storage *b)
{
	return a->ss_family == b->ss_family && sa_port(a) == sa_port(b) &&
	       !memcmp(sa_addr(a), sa_addr(b), sa_addr_len(a));
}

static const char *sa_str(const struct sockaddr_storage *ss)
{
	static char bufs[4][INET6_ADDRSTRLEN + 16];
	static int next;
	char *b = bufs[next++ % 4];
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6) {
		snprintf(b, sizeof(bufs[0]), "(family %d)", ss->ss_family);
		return b;
	}
	inet_ntop(ss->ss_family, sa_addr(ss), ip, sizeof(ip));
	snprintf(b, sizeof(bufs[0]), ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 ip, sa_port(ss));
	return b;
}

static int local_of(int fd, struct sockaddr_storage *ss)
{
	socklen_t l = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	return getsockname(fd, (struct sockaddr *)ss, &l);
}

static uint64_t cookie_of(int fd)
{
	uint64_t c = 0;
	socklen_t l = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &l))
		return 0;
	return c;
}

enum {
	L_REUSEPORT = 1,	/* SO_REUSEPORT */
	L_DUAL = 2,		/* AF_INET6 with IPV6_V6ONLY 0 (else 1) */
};

/* A nonblocking TCP listener on ip:port (port 0: any), or -1 with errno. */
static int listener(int family, const char *ip, uint16_t port, int backlog,
		    int opts)
{
	struct sockaddr_storage ss;
	int one = 1, v6only = !(opts & L_DUAL);
	int fd, e;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto fail;
	if ((opts & L_REUSEPORT) &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	if (family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)))
		goto fail;
	make_sa(&ss, family, ip, port);
	if (bind(fd, (struct sockaddr *)&ss, sa_len(&ss)))
		goto fail;
	if (listen(fd, backlog))
		goto fail;
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

/*
 * Nonblocking connect to dst from src (NULL: any; else bound first, with
 * SO_REUSEADDR so that several clients may share it), waiting at most
 * timeout_ms for the handshake.  Returns 0 with *fdp connected (and made
 * blocking), or an errno: ETIMEDOUT when the connection did not complete in
 * time, in which case *fdp is left open (the attempt goes on until the
 * caller closes it); *fdp is -1 on any other error.
 */
static int connect_from(const struct sockaddr_storage *src,
			const struct sockaddr_storage *dst, int timeout_ms,
			int *fdp)
{
	struct pollfd p = { .events = POLLOUT };
	int fd, e, r, one = 1, err = 0;
	socklen_t l = sizeof(err);

	fd = socket(dst->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	*fdp = fd;
	if (fd < 0)
		return errno;
	if (src && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(fd, (const struct sockaddr *)src, sa_len(src))))
		goto fail;
	if (connect(fd, (const struct sockaddr *)dst, sa_len(dst))) {
		if (errno != EINPROGRESS)
			goto fail;
		p.fd = fd;
		do
			r = poll(&p, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			goto fail;
		if (r == 0)
			return ETIMEDOUT;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l))
			goto fail;
		if (err) {
			close(fd);
			*fdp = -1;
			return err;
		}
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return 0;
fail:
	e = errno;
	close(fd);
	*fdp = -1;
	return e;
}

static int connect_nb(const struct sockaddr_storage *dst, int timeout_ms,
		      int *fdp)
{
	return connect_from(NULL, dst, timeout_ms, fdp);
}

/* Whether a connection is waiting on listener fd within ms. */
static bool pending(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) > 0;
}

struct client {
	int fd;
	struct sockaddr_storage local;	/* the client's own address */
	struct sockaddr_storage dst;	/* the address it dialled */
	char msg[MSG_LEN];
	bool seen;			/* accepted by the test */
};

static void client_init(struct client *c, int n)
{
	for (int i = 0; i < n; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].fd = -1;
	}
}

/* Close the open fds of clients c[0..nc) and listeners m[0..nm) (-1: closed). */
static void close_all(struct client *c, int nc, const int *m, int nm)
{
	for (int i = 0; i < nc; i++)
		if (c[i].fd >= 0)
			close(c[i].fd);
	for (int i = 0; i < nm; i++)
		if (m[i] >= 0)
			close(m[i]);
}

/*
 * Connect to dst from src (NULL: any; see connect_from), which must complete
 * within CONNECT_MS, then send MSG_LEN bytes.
 */
static int client_run_from(struct client *c, const struct sockaddr_storage *src,
			   const struct sockaddr_storage *dst, unsigned int tag)
{
	int err, i;

	c->seen = false;
	c->dst = *dst;
	err = connect_from(src, dst, CONNECT_MS, &c->fd);
	if (err)
		return err;
	if (local_of(c->fd, &c->local))
		return errno;
	i = snprintf(c->msg, MSG_LEN, "sockgroup %u %u to %s ", tag,
		     (unsigned int)getpid(), sa_str(dst));
	for (; i < MSG_LEN; i++)
		c->msg[i] = 'a' + (tag * 7 + i) % 26;
	if (send(c->fd, c->msg, MSG_LEN, MSG_NOSIGNAL) != MSG_LEN)
		return errno ? errno : EIO;
	return 0;
}

static int client_run(struct client *c, const struct sockaddr_storage *dst,
		      unsigned int tag)
{
	return client_run_from(c, NULL, dst, tag);
}

#define CONNECT_OK(_c, _dst, _tag) do { \
	int __err = client_run((_c), (_dst), (_tag)); \
	ASSERT_EQ(0, __err) \
		TH_LOG("connect %u to %s: %s", (unsigned int)(_tag), \
		       sa_str(_dst), strerror(__err)); \
} while (0)

/*
 * Accept one connection on listener lfd (it must be waiting within
 * ACCEPT_MS): it must come from one of cl[0..n) that dialled *addressed and
 * was not accepted before, have the local address *addressed (family
 * included) and carry that client's bytes intact.  Returns the client's
 * index; *peer_out (if not NULL) gets the accepted socket's peer address as
 * the kernel reports it.
 *
 * A client is known by both ends of its connection: the kernel may give two
 * clients that dial different addresses the same source address and port.
 */
static int accept_check(struct __test_metadata *_metadata, int lfd,
			const struct sockaddr_storage *addressed,
			struct client *cl, int n,
			struct sockaddr_storage *peer_out)
{
	struct sockaddr_storage local, peer, peer4, cl4, want4, dst4;
	char buf[MSG_LEN];
	socklen_t l;
	int afd, i, got = 0;

	ASSERT_TRUE(pending(lfd, ACCEPT_MS))
		TH_LOG("no connection waiting on the expected listener (%s)",
		       (local_of(lfd, &local), sa_str(&local)));
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_LE(0, afd) TH_LOG("accept: %s", strerror(errno));
	ASSERT_EQ(0, local_of(afd, &local));
	EXPECT_TRUE(sa_equal(&local, addressed))
		TH_LOG("accepted socket's local address is %s, expected the addressed %s",
		       sa_str(&local), sa_str(addressed));
	l = sizeof(peer);
	memset(&peer, 0, sizeof(peer));
	ASSERT_EQ(0, getpeername(afd, (struct sockaddr *)&peer, &l));
	if (peer_out)
		*peer_out = peer;
	sa_unmap(&peer, &peer4);
	sa_unmap(addressed, &want4);
	for (i = 0; i < n; i++) {
		if (cl[i].fd < 0)
			continue;
		sa_unmap(&cl[i].local, &cl4);
		sa_unmap(&cl[i].dst, &dst4);
		if (sa_equal(&peer4, &cl4) && sa_equal(&want4, &dst4))
			break;
	}
	ASSERT_LT(i, n) TH_LOG("accepted a connection from %s to %s, none of this test's clients",
			       sa_str(&peer), sa_str(addressed));
	EXPECT_FALSE(cl[i].seen) TH_LOG("client %d accepted twice", i);
	cl[i].seen = true;
	while (got < MSG_LEN) {
		ssize_t r;

		ASSERT_TRUE(pending(afd, ACCEPT_MS))
			TH_LOG("client %d: %d of %d bytes arrived", i, got, MSG_LEN);
		r = recv(afd, buf + got, MSG_LEN - got, 0);
		ASSERT_LT(0, r) TH_LOG("client %d: recv: %s", i,
				       r ? strerror(errno) : "EOF");
		got += r;
	}
	EXPECT_EQ(0, memcmp(buf, cl[i].msg, MSG_LEN))
		TH_LOG("client %d: bytes differ: got '%.*s' expected '%.*s'",
		       i, MSG_LEN, buf, MSG_LEN, cl[i].msg);
	close(afd);
	return i;
}

/* ---------------------------------------------------------------- groups */

struct group {
	struct sockgroup_info info;
	struct sockgroup_member m[SOCKGROUP_MAX_MEMBERS];
};

#define GROUP_LEN(n) ((socklen_t)(sizeof(struct sockgroup_info) + \
				  (n) * sizeof(struct sockgroup_member)))

/*
 * A request of len bytes: the header words hdr[0..nhdr) (version, flags,
 * policy, count, then version 2's stall_ms and reserved), then nfds fds.
 */
static int set_group_words(int fd, const uint32_t *hdr, int nhdr,
			   const int *fds, int nfds, socklen_t len)
{
	uint32_t buf[6 + 2 * SOCKGROUP_MAX_MEMBERS] = { 0 };

	memcpy(buf, hdr, nhdr * sizeof(*hdr));
	if (nfds > 2 * SOCKGROUP_MAX_MEMBERS)
		nfds = 2 * SOCKGROUP_MAX_MEMBERS;
	if (nfds > 0)
		memcpy(&buf[nhdr], fds, nfds * sizeof(int));
	return setsockopt(fd, SOL_SOCKET, SO_SERVICE_GROUP, buf, len);
}

static int set_group_raw(int fd, uint32_t version, uint32_t flags,
			 uint32_t policy, uint32_t count, const int *fds,
			 int nfds, socklen_t len)
{
	const uint32_t hdr[] = { version, flags, policy, count };

	return set_group_words(fd, hdr, 4, fds, nfds, len);
}

/*
 * A version 2 request of len bytes: {version, flags, policy, count, stall_ms,
 * reserved} and nfds fds.
 */
static int set_group_v2_raw(int fd, uint32_t version, uint32_t flags,
			    uint32_t policy, uint32_t count, uint32_t stall_ms,
			    uint32_t reserved, const int *fds, int nfds,
			    socklen_t len)
{
	const uint32_t hdr[] = { version, flags, policy, count, stall_ms, reserved };

	return set_group_words(fd, hdr, 6, fds, nfds, len);
}

/* setsockopt(fd, ..., {2, flags, policy, n, stall_ms, 0, fds}). */
static int set_group_v2(int fd, uint32_t flags, uint32_t policy,
			uint32_t stall_ms, const int *fds, int n)
{
	return set_group_v2_raw(fd, SOCKGROUP_VERSION_2, flags, policy, n,
				stall_ms, 0, fds, n,
				sizeof(struct sockgroup_req_v2) + 4 * n);
}

/* setsockopt(fd, ..., {1, 0, policy, n, fds}): 0, or -1 with errno. */
static int set_group(int fd, uint32_t policy, const int *fds, int n)
{
	return set_group_raw(fd, SOCKGROUP_VERSION, 0, policy, n, fds, n,
			     REQ_HDR + 4 * n);
}

/*
 * getsockopt into buf (size bytes, zeroed, its first __u32 set to version:
 * 0 or 1 asks for the version 1 reply, 2 for version 2's): 0 or an errno;
 * *lenp (if not NULL) gets the length.
 */
static int get_group_buf(int fd, void *buf, socklen_t size, uint32_t version,
			 socklen_t *lenp)
{
	socklen_t len = size;
	int rc;

	memset(buf, 0, size);
	memcpy(buf, &version, sizeof(version));
	rc = getsockopt(fd, SOL_SOCKET, SO_SERVICE_GROUP, buf, &len);
	if (lenp)
		*lenp = len;
	return rc ? errno : 0;
}

/* getsockopt into *g: 0 or an errno; *lenp (if not NULL) gets the length. */
static int get_group(int fd, struct group *g, socklen_t *lenp)
{
	return get_group_buf(fd, g, sizeof(*g), 0, lenp);
}

static void read_group(struct __test_metadata *_metadata, int fd, struct group *g)
{
	socklen_t len;
	int err = get_group(fd, g, &len);

	ASSERT_EQ(0, err) TH_LOG("getsockopt(SO_SERVICE_GROUP): %s%s", strerror(err),
				 err == ENOPROTOOPT ? " (is the sockgroup module loaded?)" : "");
	ASSERT_GE((uint32_t)SOCKGROUP_MAX_MEMBERS, g->info.count);
	ASSERT_EQ(GROUP_LEN(g->info.count), len)
		TH_LOG("reply length for %u members", g->info.count);
}

/*
 * The record, of count records of stride bytes from first, that starts
 * with a struct sockgroup_member of fd's cookie; NULL if none.
 */
static void *record_of(void *first, size_t stride, uint32_t count, int fd)
{
	uint64_t c = cookie_of(fd);

	for (uint32_t i = 0; i < count && i < SOCKGROUP_MAX_MEMBERS; i++) {
		struct sockgroup_member *m = (void *)((char *)first + i * stride);

		if (m->cookie == c)
			return m;
	}
	return NULL;
}

static struct sockgroup_member *member_of(struct group *g, int fd)
{
	return record_of(g->m, sizeof(g->m[0]), g->info.count, fd);
}

/* The record _find found for _fd, which must be listed. */
#define LISTED(_find, _fd) ({ \
	__typeof__(_find) __m = (_find); \
	ASSERT_NE(NULL, __m) TH_LOG("fd %d (cookie %llu) is not listed in the group", \
				    (_fd), (unsigned long long)cookie_of(_fd)); \
	__m; \
})

#define MEMBER(_g, _fd) LISTED(member_of((_g), (_fd)), (_fd))

/*
 * Read the group through qfd and check that it holds exactly fds[0..n) as a
 * ring in that order (the reply may start at any member), each described
 * correctly (family, port, address, v6only, LISTEN, cookie), that
 * info.dropped is the sum of the members' and that every member reports
 * the same nonzero group id.  Returns the group id; *out gets the reply.
 */
static uint64_t check_ring(struct __test_metadata *_metadata, int qfd,
			   const int *fds, int n, struct group *out)
{
	struct group other;
	uint64_t dropped = 0, c0;
	int r, k;

	read_group(_metadata, qfd, out);
	EXPECT_EQ((uint32_t)SOCKGROUP_VERSION, out->info.version);
	ASSERT_EQ((uint32_t)n, out->info.count);
	EXPECT_NE(0ULL, out->info.group_id);
	c0 = cookie_of(fds[0]);
	for (r = 0; r < n; r++)
		if (out->m[r].cookie == c0)
			break;
	ASSERT_LT(r, n) TH_LOG("the first member is not listed");
	for (k = 0; k < n; k++) {
		struct sockgroup_member *m = &out->m[(r + k) % n];
		struct sockaddr_storage ss;

		ASSERT_EQ(cookie_of(fds[k]), m->cookie)
			TH_LOG("member %d is not in ring order (reply starts at %d)", k, r);
		ASSERT_EQ(0, local_of(fds[k], &ss));
		EXPECT_EQ(ss.ss_family, m->family);
		EXPECT_EQ(sa_port(&ss), m->port) TH_LOG("member %d port", k);
		EXPECT_EQ(STATE_LISTEN, m->state) TH_LOG("member %d state", k);
		EXPECT_EQ(0, memcmp(m->addr, sa_addr(&ss), sa_addr_len(&ss)))
			TH_LOG("member %d address (expected %s)", k, sa_str(&ss));
		if (ss.ss_family == AF_INET6) {
			int v6only = -1;
			socklen_t l = sizeof(v6only);

			ASSERT_EQ(0, getsockopt(fds[k], IPPROTO_IPV6, IPV6_V6ONLY,
						&v6only, &l));
			EXPECT_EQ(v6only, m->v6only) TH_LOG("member %d v6only", k);
		}
		dropped += m->dropped;
	}
	EXPECT_EQ(dropped, out->info.dropped) TH_LOG("info.dropped is not the members' sum");
	for (k = 1; k < n; k++) {
		read_group(_metadata, fds[k], &other);
		EXPECT_EQ(out->info.group_id, other.info.group_id)
			TH_LOG("member %d reports another group id", k);
		EXPECT_EQ((uint32_t)n, other.info.count);
	}
	return out->info.group_id;
}

/*
 * Wait until member_fd's accept queue (read through qfd) is want, with no
 * handshake under way.
 */
static void wait_queue(struct __test_metadata *_metadata, int qfd,
		       int member_fd, uint32_t want)
{
	int64_t deadline = now_ms() + SETTLE_MS;
	struct group g;
	struct sockgroup_member *m;

	for (;;) {
		read_group(_metadata, qfd, &g);
		m = MEMBER(&g, member_fd);
		if (m->accept_queue == want && m->handshakes == 0)
			return;
		if (now_ms() > deadline)
			break;
		usleep(10000);
	}
	ASSERT_EQ(want, m->accept_queue) TH_LOG("accept queue did not settle");
	ASSERT_EQ(0U, m->handshakes) TH_LOG("handshakes did not settle");
}

/* A version 2 getsockopt reply. */
struct group2 {
	struct sockgroup_info_v2 info;
	struct sockgroup_member_v2 m[SOCKGROUP_MAX_MEMBERS];
};

#define GROUP2_LEN(n) ((socklen_t)(sizeof(struct sockgroup_info_v2) + \
				   (n) * sizeof(struct sockgroup_member_v2)))

/* getsockopt asking for the version 2 reply: 0 or an errno. */
static int get_group2(int fd, struct group2 *g, socklen_t *lenp)
{
	return get_group_buf(fd, g, sizeof(*g), SOCKGROUP_VERSION_2, lenp);
}

static void read_group2(struct __test_metadata *_metadata, int fd, struct group2 *g)
{
	socklen_t len;
	int err = get_group2(fd, g, &len);

	ASSERT_EQ(0, err) TH_LOG("getsockopt(SO_SERVICE_GROUP, v2): %s", strerror(err));
	ASSERT_EQ((uint32_t)SOCKGROUP_VERSION_2, g->info.version);
	ASSERT_EQ((uint32_t)sizeof(struct sockgroup_member_v2), g->info.member_size);
	ASSERT_GE((uint32_t)SOCKGROUP_MAX_MEMBERS, g->info.count);
	ASSERT_EQ(GROUP2_LEN(g->info.count), len)
		TH_LOG("v2 reply length for %u members", g->info.count);
}

static struct sockgroup_member_v2 *member2_of(struct group2 *g, int fd)
{
	return record_of(g->m, sizeof(g->m[0]), g->info.count, fd);
}

#define MEMBER2(_g, _fd) LISTED(member2_of((_g), (_fd)), (_fd))

/* Wait (bounded) until fd is in no group. */
static int wait_ungrouped(int fd)
{
	int64_t deadline = now_ms() + SETTLE_MS;
	struct group g;
	int err;

	while ((err = get_group(fd, &g, NULL)) == 0 && now_ms() < deadline)
		usleep(10000);
	return err;
}

/* Wait (bounded) until the group read through fd has n members. */
static uint32_t wait_count(int fd, uint32_t n)
{
	int64_t deadline = now_ms() + SETTLE_MS;
	struct group g;

	for (;;) {
		if (get_group(fd, &g, NULL))
			return 0;
		if (g.info.count == n || now_ms() > deadline)
			return g.info.count;
		usleep(10000);
	}
}

#define SET_OK(_call) do { \
	int __rc = (_call); \
	int __e = errno; \
	ASSERT_EQ(0, __rc) TH_LOG("%s: %s%s", #_call, strerror(__e), \
				  __e == ENOPROTOOPT ? \
				  " (is the sockgroup module loaded?)" : ""); \
} while (0)

#define EXPECT_UNGROUPED(_fd) do { \
	struct group __g; \
	int __err = get_group((_fd), &__g, NULL); \
	EXPECT_EQ(ENOENT, __err) TH_LOG("%s should be in no group: %s", #_fd, \
					__err ? strerror(__err) : "it is in one"); \
} while (0)

static int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int s, rc;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	rc = ioctl(s, SIOCGIFFLAGS, &ifr);
	if (!rc) {
		ifr.ifr_flags |= IFF_UP;
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
	return rc;
}

/* The accept queue of listener fd (tcp_info of a listener), or -1. */
static int acceptq_of(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l))
		return -1;
	return ti.tcpi_unacked;
}

/* Wait (bounded) until listener fd's accept queue holds n; true if it does. */
static bool wait_acceptq(int fd, int n)
{
	int64_t deadline = now_ms() + SETTLE_MS;

	while (acceptq_of(fd) != n) {
		if (now_ms() > deadline)
			return false;
		usleep(10000);
	}
	return true;
}

/* The debug kernel (SOCKGROUP_FLAVOUR=debug in the test VM) gets less load. */
static bool debug_kernel(void)
{
	const char *f = getenv("SOCKGROUP_FLAVOUR");

	return f && !strcmp(f, "debug");
}

/* ---------------------------------------------------------- no module */

/*
 * Without the module the option is unknown: ENOPROTOOPT for both calls, and
 * the socket's other SOL_SOCKET options still work.  Runs only when asked
 * (--expect-no-module or SOCKGROUP_EXPECT_NO_MODULE=1).
 */
TEST(no_module)
{
	static const struct { int family; const char *ip; } fam[] = {
		{ AF_INET, "127.0.0.1" }, { AF_INET6, "::1" },
	};
	const char *env = getenv("SOCKGROUP_EXPECT_NO_MODULE");
	struct group g;

	if (!env || strcmp(env, "1"))
		SKIP(return, "runs with --expect-no-module (SOCKGROUP_EXPECT_NO_MODULE=1)");
	for (int i = 0; i < 2; i++) {
		int a = listener(fam[i].family, fam[i].ip, 0, 4, 0);
		int b = listener(fam[i].family, fam[i].ip, 0, 4, 0);
		int rc, err;

		if (a < 0 && fam[i].family == AF_INET6) {
			TH_LOG("no IPv6 loopback here (%s); IPv4 only", strerror(errno));
			break;
		}
		ASSERT_LE(0, a);
		ASSERT_LE(0, b);
		errno = 0;
		rc = set_group(a, SOCKGROUP_POLICY_RING, &b, 1);
		err = errno;
		EXPECT_EQ(-1, rc);
		EXPECT_EQ(ENOPROTOOPT, err) TH_LOG("setsockopt: %s", strerror(err));
		rc = set_group(a, SOCKGROUP_POLICY_RING, NULL, 0);
		err = errno;
		EXPECT_EQ(-1, rc);
		EXPECT_EQ(ENOPROTOOPT, err) TH_LOG("setsockopt count 0: %s", strerror(err));
		err = get_group(a, &g, NULL);
		EXPECT_EQ(ENOPROTOOPT, err) TH_LOG("getsockopt: %s", strerror(err));
		err = get_group(b, &g, NULL);
		EXPECT_EQ(ENOPROTOOPT, err) TH_LOG("getsockopt: %s", strerror(err));
		EXPECT_NE(0ULL, cookie_of(a)) TH_LOG("SO_COOKIE no longer answers");
		close(a);
		close(b);
	}
}

/* ------------------------------------------------------- group and reads */

/* The module answers for a socket in no group: ENOENT, not ENOPROTOOPT. */
TEST(ungrouped_enoent)
{
	int l = listener(AF_INET, "127.0.0.1", 0, 4, 0);
	struct group g;
	int err;

	ASSERT_LE(0, l);
	err = get_group(l, &g, NULL);
	ASSERT_EQ(ENOENT, err) TH_LOG("getsockopt on a listener in no group: %s%s",
				      strerror(err), err == ENOPROTOOPT ?
				      " (is the sockgroup module loaded?)" : "");
}

/* Every field of the reply: header, members in ring order, ids. */
TEST(group_info)
{
	static const char *ip[3] = { "127.0.0.1", "127.0.0.2", "127.0.0.3" };
	static const int backlog[3] = { 5, 7, 9 };
	struct group g, h;
	uint64_t id, id6;
	int m[3], v6[2];

	for (int i = 0; i < 3; i++) {
		m[i] = listener(AF_INET, ip[i], 0, backlog[i], 0);
		ASSERT_LE(0, m[i]) TH_LOG("listener on %s: %s", ip[i], strerror(errno));
	}
	SET_OK(set_group(m[0], SOCKGROUP_POLICY_PRIMARY, &m[1], 2));
	id = check_ring(_metadata, m[0], m, 3, &g);
	EXPECT_EQ(0U, g.info.flags);
	EXPECT_EQ((uint32_t)SOCKGROUP_POLICY_PRIMARY, g.info.policy);
	EXPECT_EQ(0ULL, g.info.dropped);
	for (int i = 0; i < 3; i++) {
		struct sockgroup_member *mb = MEMBER(&g, m[i]);

		EXPECT_EQ(AF_INET, mb->family);
		EXPECT_EQ(0, mb->v6only);
		EXPECT_EQ((uint32_t)backlog[i], mb->accept_limit) TH_LOG("member %d", i);
		EXPECT_EQ(0U, mb->accept_queue);
		EXPECT_EQ(0U, mb->handshakes);
		EXPECT_NE(0ULL, mb->cookie);
		EXPECT_EQ(0ULL, mb->redirected_away);
		EXPECT_EQ(0ULL, mb->redirected_in);
		EXPECT_EQ(0ULL, mb->dropped);
	}
	/* Read through another member: same group. */
	read_group(_metadata, m[2], &h);
	EXPECT_EQ(id, h.info.group_id);
	EXPECT_EQ((uint32_t)SOCKGROUP_POLICY_PRIMARY, h.info.policy);

	/* A second group (IPv6): its own id, its own policy. */
	v6[0] = listener(AF_INET6, "::1", 0, 3, 0);
	v6[1] = listener(AF_INET6, "::1", 0, 4, 0);
	ASSERT_LE(0, v6[0]) TH_LOG("IPv6 listener on ::1: %s", strerror(errno));
	ASSERT_LE(0, v6[1]);
	SET_OK(set_group(v6[0], SOCKGROUP_POLICY_RING, &v6[1], 1));
	id6 = check_ring(_metadata, v6[1], v6, 2, &h);
	EXPECT_NE(id, id6) TH_LOG("two groups share an id");
	EXPECT_EQ((uint32_t)SOCKGROUP_POLICY_RING, h.info.policy);
	for (int i = 0; i < 2; i++) {
		struct sockgroup_member *mb = MEMBER(&h, v6[i]);

		EXPECT_EQ(AF_INET6, mb->family);
		EXPECT_EQ(1, mb->v6only);
		EXPECT_EQ((uint32_t)(3 + i), mb->accept_limit);
	}
	/* The first group did not change. */
	check_ring(_metadata, m[1], m, 3, &h);
	EXPECT_EQ(id, h.info.group_id);
}

/* getsockopt: ENOENT, ERANGE with the needed length, exact fit, EINVAL, EFAULT. */
TEST(getsockopt_errors)
{
	struct group g;
	socklen_t len, need = GROUP_LEN(3);
	int m[3], rc;

	for (int i = 0; i < 3; i++) {
		m[i] = listener(AF_INET, "127.0.0.1", 0, 4, 0);
		ASSERT_LE(0, m[i]);
	}
	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 2));

	static const socklen_t small[] = { 0, 1, sizeof(struct sockgroup_info),
					   GROUP_LEN(1), GROUP_LEN(3) - 1 };
	for (unsigned int i = 0; i < ARRAY_SIZE(small); i++) {
		len = small[i];
		errno = 0;
		rc = getsockopt(m[1], SOL_SOCKET, SO_SERVICE_GROUP, &g, &len);
		EXPECT_EQ(-1, rc) TH_LOG("len %u", small[i]);
		EXPECT_EQ(ERANGE, errno) TH_LOG("len %u: %s", small[i], strerror(errno));
		EXPECT_EQ(need, len) TH_LOG("len %u: needed length not reported", small[i]);
	}
	/* Exactly the size needed, and more than needed. */
	len = need;
	ASSERT_EQ(0, getsockopt(m[1], SOL_SOCKET, SO_SERVICE_GROUP, &g, &len))
		TH_LOG("exact length: %s", strerror(errno));
	EXPECT_EQ(need, len);
	EXPECT_EQ(3U, g.info.count);
	len = sizeof(g);
	ASSERT_EQ(0, getsockopt(m[1], SOL_SOCKET, SO_SERVICE_GROUP, &g, &len));
	EXPECT_EQ(need, len);
	/* Negative length. */
	len = (socklen_t)-1;
	errno = 0;
	EXPECT_EQ(-1, getsockopt(m[1], SOL_SOCKET, SO_SERVICE_GROUP, &g, &len));
	EXPECT_EQ(EINVAL, errno) TH_LOG("negative len: %s", strerror(errno));
	/* Unwritable buffer, unwritable length. */
	len = sizeof(g);
	errno = 0;
	EXPECT_EQ(-1, getsockopt(m[1], SOL_SOCKET, SO_SERVICE_GROUP, (void *)8, &len));
	EXPECT_EQ(EFAULT, errno) TH_LOG("bad buffer: %s", strerror(errno));
	errno = 0;
	EXPECT_EQ(-1, getsockopt(m[1], SOL_SOCKET, SO_SERVICE_GROUP, &g, (socklen_t *)8));
	EXPECT_EQ(EFAULT, errno) TH_LOG("bad len pointer: %s", strerror(errno));
	/* The group is still whole. */
	check_ring(_metadata, m[0], m, 3, &g);
}

/* The largest group: SOCKGROUP_MAX_MEMBERS members, all listed in order. */
TEST(max_members)
{
	int m[SOCKGROUP_MAX_MEMBERS];
	struct group g;
	socklen_t len;

	for (int i = 0; i < SOCKGROUP_MAX_MEMBERS; i++) {
		m[i] = listener(AF_INET, "127.0.0.1", 0, 2, 0);
		ASSERT_LE(0, m[i]);
	}
	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], SOCKGROUP_MAX_MEMBERS - 1));
	check_ring(_metadata, m[SOCKGROUP_MAX_MEMBERS - 1], m, SOCKGROUP_MAX_MEMBERS, &g);
	len = GROUP_LEN(SOCKGROUP_MAX_MEMBERS - 1);
	errno = 0;
	EXPECT_EQ(-1, getsockopt(m[5], SOL_SOCKET, SO_SERVICE_GROUP, &g, &len));
	EXPECT_EQ(ERANGE, errno);
	EXPECT_EQ(GROUP_LEN(SOCKGROUP_MAX_MEMBERS), len);
}

/* ------------------------------------------------- checks of every option */

/*
 * cgroup BPF sockopt programs, loaded without libbpf: eight instructions that
 * answer `verdict` for SOL_SOCKET/SO_SERVICE_GROUP and 1 (go on) for every
 * other option.  0 refuses the call (EPERM); 1 with the length untouched
 * hands setsockopt a kernel copy of the buffer (KERNEL_SOCKPTR).
 */
#define INSN(_code, _dst, _src, _off, _imm) ((struct bpf_insn) { \
	.code = (_code), .dst_reg = (_dst), .src_reg = (_src), \
	.off = (_off), .imm = (_imm) })

static int sockopt_prog(int attach_type, int verdict, char *log, size_t log_len)
{
	const struct bpf_insn insns[] = {
		INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, offsetof(struct bpf_sockopt, level), 0),
		INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 4, SOL_SOCKET),
		INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, offsetof(struct bpf_sockopt, optname), 0),
		INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 2, SO_SERVICE_GROUP),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, verdict),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_SOCKOPT;
	attr.expected_attach_type = attach_type;
	attr.insns = (uintptr_t)insns;
	attr.insn_cnt = ARRAY_SIZE(insns);
	attr.license = (uintptr_t)"GPL";
	attr.log_buf = (uintptr_t)log;
	attr.log_size = log_len;
	attr.log_level = 1;
	log[0] = 0;
	return syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
}

static int prog_attach(int cmd, int cgroup, int prog, int attach_type)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = cgroup;
	attr.attach_bpf_fd = prog;
	attr.attach_type = attach_type;
	return syscall(__NR_bpf, cmd, &attr, sizeof(attr));
}

/* Writes "pid" to the cgroup.procs of dir: moves this process there. */
static int cgroup_enter(const char *dir)
{
	char path[PATH_MAX], pid[16];
	int fd, n, rc;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = snprintf(pid, sizeof(pid), "%d", getpid());
	rc = write(fd, pid, n) == n ? 0 : -1;
	close(fd);
	return rc;
}

#define CGROUP_ROOT "/sys/fs/cgroup"

/*
 * A cgroup of its own, the test process in it (sockets made after setup
 * belong to it), and the programs it loads attached there; teardown
 * detaches them and leaves and removes the cgroup.
 */
FIXTURE(cgroup_bpf) {
	char dir[PATH_MAX];
	char home[PATH_MAX + 16];	/* the cgroup the process came from */
	int cg;
	int prog[3];
	int type[3];
	bool attached[3];
};

FIXTURE_SETUP(cgroup_bpf)
{
	char line[PATH_MAX];
	struct statfs sfs;
	FILE *f;

	self->cg = -1;
	for (int i = 0; i < 3; i++) {
		self->prog[i] = -1;
		self->attached[i] = false;
	}
	self->dir[0] = 0;
	if (geteuid())
		SKIP(return, "needs root (cgroup and BPF)");
	if (statfs(CGROUP_ROOT, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC)
		ASSERT_EQ(0, mount("none", CGROUP_ROOT, "cgroup2", 0, NULL))
			TH_LOG("mount cgroup2 on %s: %s", CGROUP_ROOT, strerror(errno));
	f = fopen("/proc/self/cgroup", "re");
	ASSERT_NE(NULL, f);
	snprintf(self->home, sizeof(self->home), CGROUP_ROOT);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(self->home, sizeof(self->home), "%s%s", CGROUP_ROOT,
				 strcmp(line + 3, "/") ? line + 3 : "");
		}
	fclose(f);
	snprintf(self->dir, sizeof(self->dir), "%s/sockgroup-test-%d", CGROUP_ROOT, getpid());
	ASSERT_EQ(0, mkdir(self->dir, 0755)) TH_LOG("mkdir %s: %s", self->dir, strerror(errno));
	/* A failed setup has no teardown: leave nothing behind. */
	self->cg = open(self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (self->cg < 0 || cgroup_enter(self->dir)) {
		int e = errno;

		rmdir(self->dir);
		ASSERT_TRUE(false) TH_LOG("join %s: %s", self->dir, strerror(e));
	}
}

FIXTURE_TEARDOWN(cgroup_bpf)
{
	for (int i = 0; i < 3; i++) {
		if (self->attached[i])
			prog_attach(BPF_PROG_DETACH, self->cg, self->prog[i], self->type[i]);
		if (self->prog[i] >= 0)
			close(self->prog[i]);
	}
	if (self->cg >= 0)
		close(self->cg);
	if (self->dir[0]) {
		cgroup_enter(self->home);
		rmdir(self->dir);
	}
}

/* Loads program i (attach type, verdict for our option) into the fixture. */
static void load_prog(struct __test_metadata *_metadata,
		      FIXTURE_DATA(cgroup_bpf) *self, int i, int type, int verdict)
{
	static char log[65536];

	self->type[i] = type;
	self->prog[i] = sockopt_prog(type, verdict, log, sizeof(log));
	ASSERT_LE(0, self->prog[i]) TH_LOG("BPF_PROG_LOAD: %s\n%s", strerror(errno), log);
}

static void attach(struct __test_metadata *_metadata,
		   FIXTURE_DATA(cgroup_bpf) *self, int i, bool on)
{
	ASSERT_EQ(0, prog_attach(on ? BPF_PROG_ATTACH : BPF_PROG_DETACH, self->cg,
				 self->prog[i], self->type[i]))
		TH_LOG("%s program %d: %s", on ? "attach" : "detach", i, strerror(errno));
	self->attached[i] = on;
}

/*
 * SO_SERVICE_GROUP passes the cgroup BPF sockopt programs, as every option
 * does: a setsockopt program that refuses it makes the call fail with EPERM
 * and change nothing, while other options still work; one that lets it
 * through hands the module a kernel copy of the request, which works; a
 * getsockopt program that refuses it makes getsockopt fail with EPERM.
 */
TEST_F(cgroup_bpf, programs_apply)
{
	int m[3], one = 1, val = 0;
	socklen_t len = sizeof(val);
	struct group g;

	load_prog(_metadata, self, 0, BPF_CGROUP_SETSOCKOPT, 0);
	load_prog(_metadata, self, 1, BPF_CGROUP_SETSOCKOPT, 1);
	load_prog(_metadata, self, 2, BPF_CGROUP_GETSOCKOPT, 0);
	for (int i = 0; i < 3; i++) {
		m[i] = listener(AF_INET, "127.0.0.1", 0, 4, 0);
		ASSERT_LE(0, m[i]);
	}

	attach(_metadata, self, 0, true);
	errno = 0;
	EXPECT_EQ(-1, set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 1))
		TH_LOG("a refusing setsockopt program did not stop SO_SERVICE_GROUP");
	EXPECT_EQ(EPERM, errno) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, setsockopt(m[0], SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)))
		TH_LOG("SO_KEEPALIVE under the program: %s", strerror(errno));
	ASSERT_EQ(0, getsockopt(m[0], SOL_SOCKET, SO_KEEPALIVE, &val, &len));
	EXPECT_EQ(1, val);
	EXPECT_UNGROUPED(m[0]);
	EXPECT_UNGROUPED(m[1]);
	attach(_metadata, self, 0, false);

	/* Without it, the same call works. */
	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 1));
	check_ring(_metadata, m[0], m, 2, &g);

	/* A program that lets it through: the request arrives as a kernel copy. */
	attach(_metadata, self, 1, true);
	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 2));
	attach(_metadata, self, 1, false);
	check_ring(_metadata, m[0], m, 3, &g);

	/* A getsockopt program sees our result and may refuse it. */
	attach(_metadata, self, 2, true);
	EXPECT_EQ(EPERM, get_group(m[0], &g, NULL))
		TH_LOG("a refusing getsockopt program did not stop SO_SERVICE_GROUP");
	len = sizeof(val);
	EXPECT_EQ(0, getsockopt(m[0], SOL_SOCKET, SO_KEEPALIVE, &val, &len));
	attach(_metadata, self, 2, false);
	check_ring(_metadata, m[0], m, 3, &g);
}

/* <grp.h> would clash with this file's struct group. */
extern int setgroups(size_t size, const gid_t *list);

/* Drops to uid/gid 65534 without supplementary groups: no capability left. */
static int drop_privileges(void)
{
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
	    setresuid(65534, 65534, 65534))
		return -1;
	return 0;
}

/*
 * unshare(CLONE_NEWUSER) fails with EPERM in a chroot, and the test VM runs
 * the tests in one (selftests/vm-init): leave it for init's root (as root).
 */
static int leave_chroot(void)
{
	struct stat root, init_root;

	if (stat("/", &root) || stat("/proc/1/root/", &init_root))
		return -1;
	if (root.st_dev == init_root.st_dev && root.st_ino == init_root.st_ino)
		return 0;
	return chroot("/proc/1/root") || chdir("/") ? -1 : 0;
}

/* The connections conntrack tracks, read from an open nf_conntrack_count. */
static int conntrack_count(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = 0;
	return atoi(buf);
}

/*
 * A rewrite group turns conntrack and NAT on in the namespace: it needs
 * CAP_NET_ADMIN over the namespace.  An unprivileged user gets EPERM and
 * turns nothing on (no connection is tracked afterwards), yet may make a
 * steer group; the same user, owner of a user namespace with a network
 * namespace of its own, may make a rewrite group there.
 */
TEST(rewrite_needs_net_admin)
{
	int status = 0;
	pid_t pid;

	if (geteuid())
		SKIP(return, "needs root (to become another user)");
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct sockaddr_storage a0;
		struct group g;
		int m[2], c, ct;

		/* A namespace of the initial user namespace, where none is on yet. */
		ASSERT_EQ(0, unshare(CLONE_NEWNET)) TH_LOG("unshare: %s", strerror(errno));
		ASSERT_EQ(0, lo_up());
		/* Opened here: after leave_chroot(), uid 65534 could not reach it. */
		ct = open("/proc/sys/net/netfilter/nf_conntrack_count", O_RDONLY | O_CLOEXEC);
		ASSERT_LE(0, ct) TH_LOG("nf_conntrack_count: %s", strerror(errno));
		ASSERT_EQ(0, leave_chroot()) TH_LOG("%s", strerror(errno));
		ASSERT_EQ(0, drop_privileges()) TH_LOG("%s", strerror(errno));
		m[0] = listener(AF_INET, "127.0.0.1", 0, 4, 0);
		m[1] = listener(AF_INET, "127.0.0.2", 0, 4, 0);
		ASSERT_LE(0, m[0]);
		ASSERT_LE(0, m[1]);
		errno = 0;
		EXPECT_EQ(-1, set_group_raw(m[0], SOCKGROUP_VERSION, SOCKGROUP_F_REWRITE,
					    SOCKGROUP_POLICY_RING, 1, &m[1], 1, REQ_HDR + 4))
			TH_LOG("an unprivileged user made a rewrite group");
		EXPECT_EQ(EPERM, errno) TH_LOG("%s", strerror(errno));
		EXPECT_UNGROUPED(m[0]);
		/* Nothing was turned on: a connection is not tracked. */
		ASSERT_EQ(0, local_of(m[0], &a0));
		ASSERT_EQ(0, connect_nb(&a0, CONNECT_MS, &c));
		EXPECT_EQ(0, conntrack_count(ct)) TH_LOG("conntrack is on in the namespace");
		close(c);
		/* A steer group needs no privilege. */
		SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 1));
		read_group(_metadata, m[0], &g);
		EXPECT_EQ(0U, g.info.flags);

		/* Owner of a user namespace and of its network namespace. */
		ASSERT_EQ(0, unshare(CLONE_NEWUSER | CLONE_NEWNET))
			TH_LOG("unshare(CLONE_NEWUSER | CLONE_NEWNET) as uid 65534: %s",
			       strerror(errno));
		ASSERT_EQ(0, lo_up()) TH_LOG("lo up in the new namespace: %s", strerror(errno));
		m[0] = listener(AF_INET, "127.0.0.1", 0, 4, 0);
		m[1] = listener(AF_INET, "127.0.0.2", 0, 4, 0);
		ASSERT_LE(0, m[0]);
		ASSERT_LE(0, m[1]);
		SET_OK(set_group_raw(m[0], SOCKGROUP_VERSION, SOCKGROUP_F_REWRITE,
				     SOCKGROUP_POLICY_RING, 1, &m[1], 1, REQ_HDR + 4));
		read_group(_metadata, m[0], &g);
		EXPECT_EQ((uint32_t)SOCKGROUP_F_REWRITE, g.info.flags);
		_exit(_metadata->exit_code ? 1 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("child ended by signal %d",
					      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/* ------------------------------------------------------------ redirects */

FIXTURE(redirect) {
	int m[3];
	struct sockaddr_storage a[3];
	struct client cl[16];
	int n;
};

FIXTURE_VARIANT(redirect) {
	int family;
	uint32_t policy;
};

FIXTURE_VARIANT_ADD(redirect, ring_ipv4) {
	.family = AF_INET, .policy = SOCKGROUP_POLICY_RING,
};

FIXTURE_VARIANT_ADD(redirect, primary_ipv4) {
	.family = AF_INET, .policy = SOCKGROUP_POLICY_PRIMARY,
};

FIXTURE_VARIANT_ADD(redirect, ring_ipv6) {
	.family = AF_INET6, .policy = SOCKGROUP_POLICY_RING,
};

FIXTURE_VARIANT_ADD(redirect, primary_ipv6) {
	.family = AF_INET6, .policy = SOCKGROUP_POLICY_PRIMARY,
};

/*
 * Three listeners M0, M1, M2 (127.0.0.1/.2/.3 or ::1, own ports), backlog 16,
 * not grouped yet.
 */
FIXTURE_SETUP(redirect)
{
	static const char *v4[3] = { "127.0.0.1", "127.0.0.2", "127.0.0.3" };

	client_init(self->cl, 16);
	self->n = 0;
	for (int i = 0; i < 3; i++) {
		const char *ip = variant->family == AF_INET ? v4[i] : "::1";

		self->m[i] = listener(variant->family, ip, 0, 16, 0);
		ASSERT_LE(0, self->m[i]) TH_LOG("listener on %s: %s", ip, strerror(errno));
		ASSERT_EQ(0, local_of(self->m[i], &self->a[i]));
	}
}

FIXTURE_TEARDOWN(redirect)
{
	close_all(self->cl, 16, self->m, 3);
}

/*
 * Make member i full: backlog 1 (set before grouping), then two connections
 * addressed to it, which it keeps.  Uses qfd to read the group.
 */
static void fill_member(struct __test_metadata *_metadata,
			FIXTURE_DATA(redirect) *self, int qfd, int i)
{
	for (int k = 0; k < 2; k++) {
		CONNECT_OK(&self->cl[self->n], &self->a[i], self->n);
		self->n++;
	}
	wait_queue(_metadata, qfd, self->m[i], 2);
}

/*
 * Ring [M0, M1, M2], M1 backlog 1 and never accepting.  M1 keeps two
 * connections; the next ones addressed to M1 are accepted on M2 (ring: the
 * next member) or M0 (primary: the first member in list order), as
 * addressed (steer: local address is M1's), bytes intact; nothing reaches
 * the third member; counters match.
 */
TEST_F(redirect, overflow_to_sibling)
{
	int target = variant->policy == SOCKGROUP_POLICY_RING ? 2 : 0;
	int other = 2 - target;
	struct sockgroup_member *mb;
	struct group g;
	int k, idx;

	ASSERT_EQ(0, listen(self->m[1], 1));
	SET_OK(set_group(self->m[0], variant->policy, &self->m[1], 2));
	check_ring(_metadata, self->m[0], self->m, 3, &g);

	fill_member(_metadata, self, self->m[0], 1);
	EXPECT_FALSE(pending(self->m[0], 0));
	EXPECT_FALSE(pending(self->m[2], 0));

	for (k = 0; k < 3; k++) {
		CONNECT_OK(&self->cl[self->n], &self->a[1], self->n);
		self->n++;
		idx = accept_check(_metadata, self->m[target], &self->a[1],
				   self->cl, self->n, NULL);
		EXPECT_EQ(self->n - 1, idx);
	}
	EXPECT_FALSE(pending(self->m[other], 0))
		TH_LOG("a connection reached M%d, the wrong sibling", other);

	check_ring(_metadata, self->m[1], self->m, 3, &g);
	EXPECT_EQ(0ULL, g.info.dropped);
	mb = MEMBER(&g, self->m[1]);
	EXPECT_EQ(2U, mb->accept_queue);
	EXPECT_EQ(1U, mb->accept_limit);
	EXPECT_EQ(3ULL, mb->redirected_away);
	EXPECT_EQ(0ULL, mb->redirected_in);
	EXPECT_EQ(0ULL, mb->dropped);
	mb = MEMBER(&g, self->m[target]);
	EXPECT_EQ(3ULL, mb->redirected_in);
	EXPECT_EQ(0ULL, mb->redirected_away);
	EXPECT_EQ(0U, mb->accept_queue);
	mb = MEMBER(&g, self->m[other]);
	EXPECT_EQ(0ULL, mb->redirected_in);
	EXPECT_EQ(0ULL, mb->redirected_away);
	EXPECT_EQ(0U, mb->accept_queue);

	/* The two M1 kept are there, intact. */
	for (k = 0; k < 2; k++) {
		idx = accept_check(_metadata, self->m[1], &self->a[1], self->cl,
				   self->n, NULL);
		EXPECT_GT(2, idx);
	}
	EXPECT_FALSE(pending(self->m[1], 0));
}

/*
 * Two clients on one source address and port: X dials the member the
 * policy redirects to (T: M2 for ring, M0 for primary) and waits in its
 * queue; Y dials the full M1 and is redirected to T.  T then holds two
 * connections from the same peer address, each with the local address its
 * client dialled and its own bytes (accepted in arrival order).
 */
TEST_F(redirect, same_source_port)
{
	int target = variant->policy == SOCKGROUP_POLICY_RING ? 2 : 0;
	struct sockaddr_storage src;
	struct client *x, *y;
	struct group g;
	int err;

	ASSERT_EQ(0, listen(self->m[1], 1));
	SET_OK(set_group(self->m[0], variant->policy, &self->m[1], 2));
	fill_member(_metadata, self, self->m[0], 1);

	/* Both bind with SO_REUSEADDR: X to any port, Y to X's. */
	make_sa(&src, variant->family, variant->family == AF_INET ? "127.0.0.1" : "::1", 0);
	x = &self->cl[self->n];
	err = client_run_from(x, &src, &self->a[target], self->n);
	ASSERT_EQ(0, err) TH_LOG("first client to %s: %s", sa_str(&self->a[target]),
				 strerror(err));
	self->n++;
	src = x->local;
	y = &self->cl[self->n];
	err = client_run_from(y, &src, &self->a[1], self->n);
	ASSERT_EQ(0, err) TH_LOG("second client from %s to %s: %s", sa_str(&src),
				 sa_str(&self->a[1]), strerror(err));
	self->n++;
	ASSERT_TRUE(sa_equal(&x->local, &y->local))
		TH_LOG("the clients have %s and %s", sa_str(&x->local), sa_str(&y->local));

	EXPECT_EQ(self->n - 2, accept_check(_metadata, self->m[target], &self->a[target],
					    self->cl, self->n, NULL));
	EXPECT_EQ(self->n - 1, accept_check(_metadata, self->m[target], &self->a[1],
					    self->cl, self->n, NULL));
	read_group(_metadata, self->m[0], &g);
	EXPECT_EQ(1ULL, MEMBER(&g, self->m[1])->redirected_away);
	EXPECT_EQ(1ULL, MEMBER(&g, self->m[target])->redirected_in);
}

/*
 * M1 full and the sibling the policy picks first full too: the connection
 * goes on to the remaining member (ring: M2 full -> M0; primary: M0 full -> M2).
 */
TEST_F(redirect, skips_full_sibling)
{
	bool ring = variant->policy == SOCKGROUP_POLICY_RING;
	int first = ring ? 2 : 0, last = ring ? 0 : 2;
	struct sockgroup_member *mb;
	struct group g;
	int k;

	ASSERT_EQ(0, listen(self->m[1], 1));
	ASSERT_EQ(0, listen(self->m[first], 1));
	SET_OK(set_group(self->m[0], variant->policy, &self->m[1], 2));
	fill_member(_metadata, self, self->m[1], first);
	fill_member(_metadata, self, self->m[0], 1);

	for (k = 0; k < 2; k++) {
		CONNECT_OK(&self->cl[self->n], &self->a[1], self->n);
		self->n++;
		EXPECT_EQ(self->n - 1, accept_check(_metadata, self->m[last], &self->a[1],
						   self->cl, self->n, NULL));
	}
	check_ring(_metadata, self->m[2], self->m, 3, &g);
	EXPECT_EQ(0ULL, g.info.dropped);
	mb = MEMBER(&g, self->m[1]);
	EXPECT_EQ(2ULL, mb->redirected_away);
	EXPECT_EQ(2U, mb->accept_queue);
	mb = MEMBER(&g, self->m[first]);
	EXPECT_EQ(0ULL, mb->redirected_in);
	EXPECT_EQ(2U, mb->accept_queue);
	mb = MEMBER(&g, self->m[last]);
	EXPECT_EQ(2ULL, mb->redirected_in);
	EXPECT_EQ(0U, mb->accept_queue);
}

/*
 * Every member backlog 1, full, never accepting: one more connection does
 * not complete within HANG_MS; the addressed member and the group count the
 * drop; nothing was redirected.
 */
TEST_F(redirect, all_full_drops)
{
	struct sockgroup_member *mb;
	struct group g;
	int fd, err, i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, listen(self->m[i], 1));
	SET_OK(set_group(self->m[0], variant->policy, &self->m[1], 2));
	for (i = 0; i < 3; i++)
		fill_member(_metadata, self, self->m[0], i);

	err = connect_nb(&self->a[1], HANG_MS, &fd);
	EXPECT_EQ(ETIMEDOUT, err)
		TH_LOG("a connection to a full group %s: %s", err ? "failed" : "completed",
		       err ? strerror(err) : "");
	if (fd >= 0)
		close(fd);

	check_ring(_metadata, self->m[0], self->m, 3, &g);
	EXPECT_LE(1ULL, g.info.dropped);
	for (i = 0; i < 3; i++) {
		mb = MEMBER(&g, self->m[i]);
		EXPECT_EQ(2U, mb->accept_queue) TH_LOG("M%d", i);
		EXPECT_EQ(0ULL, mb->redirected_away) TH_LOG("M%d", i);
		EXPECT_EQ(0ULL, mb->redirected_in) TH_LOG("M%d", i);
		if (i == 1) {
			EXPECT_LE(1ULL, mb->dropped);
		} else {
			EXPECT_EQ(0ULL, mb->dropped) TH_LOG("M%d", i);
		}
	}
	/* Each member still holds its own two, intact. */
	for (i = 0; i < 3; i++)
		for (int k = 0; k < 2; k++)
			EXPECT_EQ(i, accept_check(_metadata, self->m[i], &self->a[i],
						  self->cl, self->n, NULL) / 2);
}

/*
 * A full listener in no group is left to the kernel: no redirect to any
 * group, the connection does not complete, group counters stay zero.
 */
TEST(ungrouped_untouched)
{
	struct sockaddr_storage la;
	struct client cl[2];
	struct group g;
	int l, m[2], fd, err;

	client_init(cl, 2);
	l = listener(AF_INET, "127.0.0.1", 0, 1, 0);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, local_of(l, &la));
	for (int i = 0; i < 2; i++) {
		m[i] = listener(AF_INET, "127.0.0.1", 0, 16, 0);
		ASSERT_LE(0, m[i]);
	}
	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 1));
	CONNECT_OK(&cl[0], &la, 0);
	CONNECT_OK(&cl[1], &la, 1);
	ASSERT_TRUE(wait_acceptq(l, 2)) TH_LOG("the listener's queue holds %d, not 2",
					       acceptq_of(l));
	err = connect_nb(&la, HANG_MS, &fd);
	EXPECT_EQ(ETIMEDOUT, err) TH_LOG("third connection to a full ungrouped listener: %s",
					 err ? strerror(err) : "completed");
	if (fd >= 0)
		close(fd);
	EXPECT_FALSE(pending(m[0], 0));
	EXPECT_FALSE(pending(m[1], 0));
	check_ring(_metadata, m[0], m, 2, &g);
	EXPECT_EQ(0ULL, g.info.dropped);
	for (int i = 0; i < 2; i++) {
		EXPECT_EQ(0ULL, g.m[i].redirected_in);
		EXPECT_EQ(0ULL, g.m[i].redirected_away);
	}
	EXPECT_UNGROUPED(l);
	for (int i = 0; i < 2; i++)
		accept_check(_metadata, l, &la, cl, 2, NULL);
}

/*
 * Two SO_REUSEPORT listeners on one 127.0.0.1 port, grouped: A backlog 1
 * never accepting, B backlog 64.  Twenty sequential connections all
 * complete; A holds at most two, B accepts the rest; every client's bytes
 * arrive on some accepted socket.
 */
TEST(reuseport_same_port)
{
	enum { N = 20 };
	struct sockaddr_storage addr;
	struct client cl[N];
	struct sockgroup_member *ma, *mbb;
	struct group g;
	int a, b, i, held, seen = 0;
	int64_t deadline;

	client_init(cl, N);
	a = listener(AF_INET, "127.0.0.1", 0, 1, L_REUSEPORT);
	ASSERT_LE(0, a);
	ASSERT_EQ(0, local_of(a, &addr));
	b = listener(AF_INET, "127.0.0.1", sa_port(&addr), 64, L_REUSEPORT);
	ASSERT_LE(0, b) TH_LOG("second SO_REUSEPORT listener: %s", strerror(errno));
	SET_OK(set_group(a, SOCKGROUP_POLICY_RING, &b, 1));

	for (i = 0; i < N; i++)
		CONNECT_OK(&cl[i], &addr, i);

	/* All twenty are queued somewhere. */
	deadline = now_ms() + SETTLE_MS;
	do {
		read_group(_metadata, a, &g);
		ma = MEMBER(&g, a);
		mbb = MEMBER(&g, b);
		if (ma->accept_queue + mbb->accept_queue == N)
			break;
		usleep(10000);
	} while (now_ms() < deadline);
	held = ma->accept_queue;
	TH_LOG("A holds %d, B %u; A redirected away %llu", held, mbb->accept_queue,
	       (unsigned long long)ma->redirected_away);
	EXPECT_EQ((uint32_t)N, ma->accept_queue + mbb->accept_queue);
	EXPECT_GE(2, held);
	EXPECT_EQ(ma->redirected_away, mbb->redirected_in);
	EXPECT_EQ(0ULL, mbb->redirected_away);
	EXPECT_EQ(0ULL, ma->redirected_in);
	EXPECT_EQ(0ULL, g.info.dropped);

	for (i = 0; i < N - held; i++) {
		accept_check(_metadata, b, &addr, cl, N, NULL);
		seen++;
	}
	EXPECT_FALSE(pending(b, 0)) TH_LOG("B has more than %d", N - held);
	for (i = 0; i < held; i++) {
		accept_check(_metadata, a, &addr, cl, N, NULL);
		seen++;
	}
	EXPECT_FALSE(pending(a, 0));
	EXPECT_EQ(N, seen);
	for (i = 0; i < N; i++)
		EXPECT_TRUE(cl[i].seen) TH_LOG("client %d never accepted", i);
}

/*
 * Dual stack: an IPv4 listener (127.0.0.1, backlog 1) grouped with an IPv6
 * one on [::] (IPV6_V6ONLY 0, another port).  IPv4 connections overflowing
 * the IPv4 member are accepted on the IPv6 one: family AF_INET6, local
 * ::ffff:127.0.0.1 and the IPv4 member's port, v4-mapped peer.
 */
TEST(dual_stack)
{
	struct sockaddr_storage a4, a6, mapped, loop6, peer;
	struct client cl[8];
	struct sockgroup_member *mb;
	struct group g;
	int v4, v6, fds[2], n = 0;
	const uint8_t any[16] = { 0 };

	client_init(cl, 8);
	v4 = listener(AF_INET, "127.0.0.1", 0, 1, 0);
	ASSERT_LE(0, v4);
	v6 = listener(AF_INET6, "::", 0, 16, L_DUAL);
	ASSERT_LE(0, v6) TH_LOG("dual-stack listener: %s", strerror(errno));
	ASSERT_EQ(0, local_of(v4, &a4));
	ASSERT_EQ(0, local_of(v6, &a6));
	make_sa(&mapped, AF_INET6, "::ffff:127.0.0.1", sa_port(&a4));
	make_sa(&loop6, AF_INET6, "::1", sa_port(&a6));

	SET_OK(set_group(v4, SOCKGROUP_POLICY_RING, &v6, 1));
	fds[0] = v4;
	fds[1] = v6;
	check_ring(_metadata, v6, fds, 2, &g);
	mb = MEMBER(&g, v6);
	EXPECT_EQ(AF_INET6, mb->family);
	EXPECT_EQ(0, mb->v6only);
	EXPECT_EQ(0, memcmp(mb->addr, any, 16));

	CONNECT_OK(&cl[n], &a4, n);
	n++;
	CONNECT_OK(&cl[n], &a4, n);
	n++;
	wait_queue(_metadata, v4, v4, 2);
	for (int k = 0; k < 3; k++) {
		struct sockaddr_in6 *p6 = (struct sockaddr_in6 *)&peer;

		CONNECT_OK(&cl[n], &a4, n);
		n++;
		EXPECT_EQ(n - 1, accept_check(_metadata, v6, &mapped, cl, n, &peer));
		EXPECT_EQ(AF_INET6, peer.ss_family);
		EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&p6->sin6_addr))
			TH_LOG("peer %s is not v4-mapped", sa_str(&peer));
	}
	read_group(_metadata, v4, &g);
	EXPECT_EQ(3ULL, MEMBER(&g, v4)->redirected_away);
	EXPECT_EQ(3ULL, MEMBER(&g, v6)->redirected_in);
	EXPECT_EQ(2U, MEMBER(&g, v4)->accept_queue);
	EXPECT_EQ(0ULL, g.info.dropped);

	/* IPv6 to the IPv6 member still lands there. */
	CONNECT_OK(&cl[n], &loop6, n);
	n++;
	EXPECT_EQ(n - 1, accept_check(_metadata, v6, &loop6, cl, n, NULL));
	/* The IPv4 member kept its two. */
	for (int k = 0; k < 2; k++)
		EXPECT_GT(2, accept_check(_metadata, v4, &a4, cl, n, NULL));
}

/* ----------------------------------------------------------- bad input */

FIXTURE(badinput) {
	int m0, m1, n;		/* group [m0, m1]; n listening, in no group */
	struct group snap0, snap1;
	socklen_t len0, len1;
};

FIXTURE_SETUP(badinput)
{
	self->m0 = listener(AF_INET, "127.0.0.1", 0, 4, 0);
	self->m1 = listener(AF_INET, "127.0.0.1", 0, 4, 0);
	self->n = listener(AF_INET, "127.0.0.1", 0, 4, 0);
	ASSERT_LE(0, self->m0);
	ASSERT_LE(0, self->m1);
	ASSERT_LE(0, self->n);
	SET_OK(set_group(self->m0, SOCKGROUP_POLICY_RING, &self->m1, 1));
	ASSERT_EQ(0, get_group(self->m0, &self->snap0, &self->len0));
	ASSERT_EQ(0, get_group(self->m1, &self->snap1, &self->len1));
}

FIXTURE_TEARDOWN(badinput)
{
	close(self->m0);
	close(self->m1);
	close(self->n);
}

/* The call failed with errno want, and no group changed. */
static void expect_rejected(struct __test_metadata *_metadata,
			    FIXTURE_DATA(badinput) *self, int rc, int err,
			    int want, int want2, const char *what)
{
	struct group g;
	socklen_t len;

	EXPECT_EQ(-1, rc) TH_LOG("%s: accepted, expected %s", what, strerror(want));
	if (rc == -1)
		EXPECT_TRUE(err == want || err == want2)
			TH_LOG("%s: %s, expected %s", what, strerror(err), strerror(want));
	ASSERT_EQ(0, get_group(self->m0, &g, &len)) TH_LOG("after %s", what);
	ASSERT_EQ(self->len0, len) TH_LOG("after %s: the group changed", what);
	ASSERT_EQ(0, memcmp(&g, &self->snap0, len)) TH_LOG("after %s: the group changed", what);
	ASSERT_EQ(0, get_group(self->m1, &g, &len));
	ASSERT_EQ(self->len1, len);
	ASSERT_EQ(0, memcmp(&g, &self->snap1, len)) TH_LOG("after %s: the group changed", what);
	ASSERT_EQ(ENOENT, get_group(self->n, &g, NULL)) TH_LOG("after %s: n joined a group", what);
}

#define REJECT2(_call, _want, _want2) do { \
	errno = 0; \
	int __rc = (_call); \
	int __err = errno; \
	expect_rejected(_metadata, self, __rc, __err, (_want), (_want2), #_call); \
} while (0)
#define REJECT(_call, _want) REJECT2(_call, _want, _want)

/* Header: EFAULT, length EINVAL, version/flags/policy EINVAL. */
TEST_F(badinput, header)
{
	int l2[2] = { self->m1, self->n };
	int m0 = self->m0;

	REJECT(setsockopt(m0, SOL_SOCKET, SO_SERVICE_GROUP, (void *)8, REQ_HDR + 4 * 2), EFAULT);
	REJECT(setsockopt(m0, SOL_SOCKET, SO_SERVICE_GROUP, NULL, REQ_HDR + 4 * 2), EFAULT);
	REJECT(set_group_raw(m0, 1, 0, 0, 2, l2, 2, 0), EINVAL);
	REJECT(set_group_raw(m0, 1, 0, 0, 0, l2, 0, 12), EINVAL);
	REJECT(set_group_raw(m0, 1, 0, 0, 0, l2, 0, REQ_HDR - 1), EINVAL);
	REJECT(set_group_raw(m0, 1, 0, 0, 2, l2, 2, REQ_HDR + 4 * 1), EINVAL);
	REJECT(set_group_raw(m0, 1, 0, 0, 1, l2, 2, REQ_HDR + 4 * 2), EINVAL);
	REJECT(set_group_raw(m0, 1, 0, 0, 2, l2, 2, REQ_HDR + 4 * 2 + 2), EINVAL);
	REJECT(set_group_raw(m0, 1, 0, 0, 0, l2, 2, REQ_HDR + 4), EINVAL);
	REJECT(set_group_raw(m0, 2, 0, 0, 2, l2, 2, REQ_HDR + 4 * 2), EINVAL);
	REJECT(set_group_raw(m0, 0, 0, 0, 2, l2, 2, REQ_HDR + 4 * 2), EINVAL);
	REJECT(set_group_raw(m0, 1, 1U << 7, 0, 2, l2, 2, REQ_HDR + 4 * 2), EINVAL);
	REJECT(set_group_raw(m0, 1, 1U << 31, 0, 2, l2, 2, REQ_HDR + 4 * 2), EINVAL);
	REJECT(set_group_raw(m0, 1, 0, 7, 2, l2, 2, REQ_HDR + 4 * 2), EINVAL);
	REJECT(set_group_raw(m0, 1, 0, 0xffffffffU, 2, l2, 2, REQ_HDR + 4 * 2), EINVAL);
	/* 16 + 4 * 0x40000000 wraps to 16 in 32 bits. */
	REJECT2(set_group_raw(m0, 1, 0, 0, 0x40000000U, l2, 0, REQ_HDR), EINVAL, E2BIG);
	/* The same errors on a socket in no group leave it in none. */
	REJECT(set_group_raw(self->n, 2, 0, 0, 1, &self->m1, 1, REQ_HDR + 4), EINVAL);
}

/*
 * Version 2's header: stall_ms outside 0 and 10..60000, reserved not 0, a
 * length shorter than its 24 bytes or not 24 + 4 * count: EINVAL, nothing
 * changed.
 */
TEST_F(badinput, header_v2)
{
	static const uint32_t bad_stall[] = { 1, 9, SOCKGROUP_STALL_MIN_MS - 1,
					      SOCKGROUP_STALL_MAX_MS + 1, 60001,
					      0xffffffffU };
	const socklen_t v2 = sizeof(struct sockgroup_req_v2);
	int l2[2] = { self->m1, self->n };
	int m0 = self->m0;

	for (unsigned int i = 0; i < ARRAY_SIZE(bad_stall); i++)
		REJECT(set_group_v2_raw(m0, 2, 0, 0, 2, bad_stall[i], 0, l2, 2, v2 + 4 * 2),
		       EINVAL);
	REJECT(set_group_v2_raw(m0, 2, 0, 0, 2, 100, 1, l2, 2, v2 + 4 * 2), EINVAL);
	REJECT(set_group_v2_raw(m0, 2, 0, 0, 2, 0, 0x80000000U, l2, 2, v2 + 4 * 2), EINVAL);
	/* Shorter than version 2's header (16 is version 1's length). */
	REJECT(set_group_v2_raw(m0, 2, 0, 0, 0, 100, 0, l2, 0, REQ_HDR), EINVAL);
	REJECT(set_group_v2_raw(m0, 2, 0, 0, 0, 100, 0, l2, 0, REQ_HDR + 4), EINVAL);
	REJECT(set_group_v2_raw(m0, 2, 0, 0, 0, 100, 0, l2, 0, v2 - 1), EINVAL);
	/* Length not header + 4 * count, both ways. */
	REJECT(set_group_v2_raw(m0, 2, 0, 0, 2, 100, 0, l2, 2, v2 + 4 * 2 - 1), EINVAL);
	REJECT(set_group_v2_raw(m0, 2, 0, 0, 2, 100, 0, l2, 2, v2 + 4 * 2 + 4), EINVAL);
	REJECT(set_group_v2_raw(m0, 2, 0, 0, 1, 100, 0, l2, 2, v2 + 4 * 2), EINVAL);
	/* A version 1 request of version 2's length (its count off by 2). */
	REJECT(set_group_raw(m0, 1, 0, 0, 2, l2, 2, v2 + 4 * 2), EINVAL);
	/* Flags and policy are checked as in version 1. */
	REJECT(set_group_v2_raw(m0, 2, 1U << 7, 0, 2, 100, 0, l2, 2, v2 + 4 * 2), EINVAL);
	REJECT(set_group_v2_raw(m0, 2, 0, 7, 2, 100, 0, l2, 2, v2 + 4 * 2), EINVAL);
	/* On a socket in no group: it stays in none. */
	REJECT(set_group_v2_raw(self->n, 2, 0, 0, 1, 5, 0, &self->m1, 1, v2 + 4), EINVAL);
}

/* count SOCKGROUP_MAX_MEMBERS (64 distinct listeners): E2BIG. */
TEST_F(badinput, too_many)
{
	int f[SOCKGROUP_MAX_MEMBERS];

	for (int i = 0; i < SOCKGROUP_MAX_MEMBERS; i++) {
		f[i] = listener(AF_INET, "127.0.0.1", 0, 2, 0);
		ASSERT_LE(0, f[i]);
	}
	REJECT(set_group(self->m0, SOCKGROUP_POLICY_RING, f, SOCKGROUP_MAX_MEMBERS), E2BIG);
	REJECT(set_group(self->n, SOCKGROUP_POLICY_RING, f, SOCKGROUP_MAX_MEMBERS), E2BIG);
	for (int i = 0; i < SOCKGROUP_MAX_MEMBERS; i++)
		EXPECT_UNGROUPED(f[i]);
}

/* Members that cannot be: listed twice, A itself, not listening: EINVAL. */
TEST_F(badinput, not_members)
{
	struct sockaddr_storage ss;
	int bound, unbound, client, d, c_err;
	int m0 = self->m0, m1 = self->m1, n = self->n;

	bound = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, bound);
	make_sa(&ss, AF_INET, "127.0.0.1", 0);
	ASSERT_EQ(0, bind(bound, (struct sockaddr *)&ss, sa_len(&ss)));
	unbound = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, unbound);
	ASSERT_EQ(0, local_of(m1, &ss));
	/*
	 * An established socket (its connection lands in m1's queue, which
	 * the snapshot covers: connect first, snapshot again).
	 */
	c_err = connect_nb(&ss, CONNECT_MS, &client);
	ASSERT_EQ(0, c_err) TH_LOG("connect: %s", strerror(c_err));
	wait_queue(_metadata, m0, m1, 1);
	ASSERT_EQ(0, get_group(m0, &self->snap0, &self->len0));
	ASSERT_EQ(0, get_group(m1, &self->snap1, &self->len1));
	d = dup(n);
	ASSERT_LE(0, d);

	REJECT(set_group(m0, 0, ((int[]){ m1, n, n }), 3), EINVAL);
	REJECT(set_group(m0, 0, ((int[]){ m1, m1 }), 2), EINVAL);
	REJECT(set_group(m0, 0, ((int[]){ m1, n, m0 }), 3), EINVAL);
	REJECT(set_group(m0, 0, ((int[]){ m0 }), 1), EINVAL);
	REJECT(set_group(m0, 0, ((int[]){ m1, n, d }), 3), EINVAL);
	REJECT(set_group(n, 0, ((int[]){ d }), 1), EINVAL);
	REJECT(set_group(m0, 0, ((int[]){ m1, n, bound }), 3), EINVAL);
	REJECT(set_group(m0, 0, ((int[]){ m1, n, unbound }), 3), EINVAL);
	REJECT(set_group(m0, 0, ((int[]){ m1, n, client }), 3), EINVAL);
	REJECT(set_group(bound, 0, ((int[]){ n }), 1), EINVAL);
	REJECT(set_group(client, 0, ((int[]){ n }), 1), EINVAL);
	EXPECT_UNGROUPED(bound);
	EXPECT_UNGROUPED(unbound);
	EXPECT_UNGROUPED(client);
}

/* fds that are not open (EBADF), not sockets (ENOTSOCK), not TCP (EOPNOTSUPP). */
TEST_F(badinput, bad_fds)
{
	struct sockaddr_storage ss;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int m0 = self->m0, m1 = self->m1, n = self->n;
	int devnull, p[2], udp, unx, udp6;

	ASSERT_EQ(-1, fcntl(9999, F_GETFD));
	REJECT(set_group(m0, 0, ((int[]){ m1, n, 9999 }), 3), EBADF);
	REJECT(set_group(m0, 0, ((int[]){ m1, n, -1 }), 3), EBADF);
	REJECT(set_group(n, 0, ((int[]){ 9999 }), 1), EBADF);

	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, devnull);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	REJECT(set_group(m0, 0, ((int[]){ m1, n, devnull }), 3), ENOTSOCK);
	REJECT(set_group(m0, 0, ((int[]){ m1, n, p[0] }), 3), ENOTSOCK);
	REJECT(set_group(m0, 0, ((int[]){ m1, n, p[1] }), 3), ENOTSOCK);

	udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, udp);
	make_sa(&ss, AF_INET, "127.0.0.1", 0);
	ASSERT_EQ(0, bind(udp, (struct sockaddr *)&ss, sa_len(&ss)));
	udp6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, udp6);
	unx = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, unx);
	snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "sockgroup-test-%d", getpid());
	ASSERT_EQ(0, bind(unx, (struct sockaddr *)&un, sizeof(un)));
	ASSERT_EQ(0, listen(unx, 4));
	REJECT(set_group(m0, 0, ((int[]){ m1, n, udp }), 3), EOPNOTSUPP);
	REJECT(set_group(m0, 0, ((int[]){ m1, n, udp6 }), 3), EOPNOTSUPP);
	REJECT(set_group(m0, 0, ((int[]){ m1, n, unx }), 3), EOPNOTSUPP);
	REJECT(set_group(udp, 0, ((int[]){ n }), 1), EOPNOTSUPP);
	REJECT(set_group(unx, 0, ((int[]){ n }), 1), EOPNOTSUPP);
}

/* A listener of another network namespace: EXDEV. */
TEST_F(badinput, other_netns)
{
	int orig, x;

	orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, orig);
	if (unshare(CLONE_NEWNET))
		SKIP(return, "unshare(CLONE_NEWNET): %s", strerror(errno));
	ASSERT_EQ(0, lo_up());
	x = listener(AF_INET, "127.0.0.1", 0, 4, 0);
	ASSERT_LE(0, x) TH_LOG("listener in the new netns: %s", strerror(errno));
	ASSERT_EQ(0, setns(orig, CLONE_NEWNET)) TH_LOG("setns back: %s", strerror(errno));
	close(orig);

	REJECT(set_group(self->m0, 0, ((int[]){ self->m1, self->n, x }), 3), EXDEV);
	REJECT(set_group(self->n, 0, ((int[]){ x }), 1), EXDEV);
	REJECT(set_group(x, 0, ((int[]){ self->n }), 1), EXDEV);
	EXPECT_UNGROUPED(x);
}

/* Another family: an IPV6_V6ONLY listener with IPv4 ones: EAFNOSUPPORT. */
TEST_F(badinput, other_family)
{
	int v6 = listener(AF_INET6, "::1", 0, 4, 0);

	ASSERT_LE(0, v6) TH_LOG("IPv6 listener: %s", strerror(errno));
	REJECT(set_group(self->m0, 0, ((int[]){ self->m1, self->n, v6 }), 3), EAFNOSUPPORT);
	REJECT(set_group(self->n, 0, ((int[]){ v6 }), 1), EAFNOSUPPORT);
	REJECT(set_group(v6, 0, ((int[]){ self->n }), 1), EAFNOSUPPORT);
	EXPECT_UNGROUPED(v6);
}

/* A socket already in another group: EBUSY; that group is unchanged too. */
TEST_F(badinput, busy)
{
	struct group xs, g;
	socklen_t xlen, len;
	int x[2];

	for (int i = 0; i < 2; i++) {
		x[i] = listener(AF_INET, "127.0.0.1", 0, 4, 0);
		ASSERT_LE(0, x[i]);
	}
	SET_OK(set_group(x[0], SOCKGROUP_POLICY_PRIMARY, &x[1], 1));
	ASSERT_EQ(0, get_group(x[0], &xs, &xlen));

	REJECT(set_group(self->m0, 0, ((int[]){ self->m1, self->n, x[1] }), 3), EBUSY);
	REJECT(set_group(self->n, 0, ((int[]){ x[0] }), 1), EBUSY);
	REJECT(set_group(self->n, 0, ((int[]){ self->m1 }), 1), EBUSY);
	REJECT(set_group(x[1], 0, ((int[]){ self->m0 }), 1), EBUSY);
	ASSERT_EQ(0, get_group(x[0], &g, &len));
	EXPECT_EQ(xlen, len);
	EXPECT_EQ(0, memcmp(&g, &xs, len)) TH_LOG("the other group changed");
}

/* ------------------------------------------------------------ lifecycle */

FIXTURE(life) {
	int m[4];
	struct sockaddr_storage a[4];
	struct client cl[8];
	int n;
};

FIXTURE_SETUP(life)
{
	static const char *ip[4] = { "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4" };

	client_init(self->cl, 8);
	self->n = 0;
	for (int i = 0; i < 4; i++) {
		self->m[i] = listener(AF_INET, ip[i], 0, i == 0 ? 1 : 16, 0);
		ASSERT_LE(0, self->m[i]);
		ASSERT_EQ(0, local_of(self->m[i], &self->a[i]));
	}
}

FIXTURE_TEARDOWN(life)
{
	close_all(self->cl, 8, self->m, 4);
}

/*
 * Ring [M0 (backlog 1), M1, M2, M3]: close(M1) leaves [M0, M2, M3] and M0's
 * overflow now goes to M2; close(M0) with two connections queued leaves
 * [M2, M3].
 */
TEST_F(life, close_member)
{
	struct group g;
	int *m = self->m;

	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 3));
	check_ring(_metadata, m[3], m, 4, &g);
	close(m[1]);
	m[1] = -1;
	EXPECT_EQ(3U, wait_count(m[0], 3)) TH_LOG("close() did not take the member out");
	check_ring(_metadata, m[0], ((int[]){ m[0], m[2], m[3] }), 3, &g);

	for (int k = 0; k < 2; k++) {
		CONNECT_OK(&self->cl[self->n], &self->a[0], self->n);
		self->n++;
	}
	wait_queue(_metadata, m[2], m[0], 2);
	CONNECT_OK(&self->cl[self->n], &self->a[0], self->n);
	self->n++;
	EXPECT_EQ(2, accept_check(_metadata, m[2], &self->a[0], self->cl, self->n, NULL));
	EXPECT_FALSE(pending(m[3], 0));
	read_group(_metadata, m[2], &g);
	EXPECT_EQ(1ULL, MEMBER(&g, m[0])->redirected_away);
	EXPECT_EQ(1ULL, MEMBER(&g, m[2])->redirected_in);

	close(m[0]);
	m[0] = -1;
	EXPECT_EQ(2U, wait_count(m[3], 2)) TH_LOG("close() did not take the first member out");
	check_ring(_metadata, m[3], ((int[]){ m[2], m[3] }), 2, &g);
	EXPECT_EQ(1ULL, MEMBER(&g, m[2])->redirected_in) TH_LOG("counters of a member that stayed");
}

/* shutdown(SHUT_RDWR) of a listening member takes it out. */
TEST_F(life, shutdown_member)
{
	struct group g;
	int *m = self->m;

	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 3));
	ASSERT_EQ(0, shutdown(m[1], SHUT_RDWR));
	EXPECT_EQ(ENOENT, wait_ungrouped(m[1])) TH_LOG("still grouped after shutdown()");
	EXPECT_EQ(3U, wait_count(m[0], 3));
	check_ring(_metadata, m[0], ((int[]){ m[0], m[2], m[3] }), 3, &g);
	/* Listening again does not put it back in the group. */
	ASSERT_EQ(0, listen(m[1], 16)) TH_LOG("listen again after shutdown: %s", strerror(errno));
	EXPECT_UNGROUPED(m[1]);
}

/* count 0 takes A out; it may then join another group. */
TEST_F(life, count_zero)
{
	struct group g;
	int *m = self->m;

	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 3));
	SET_OK(set_group(m[1], SOCKGROUP_POLICY_RING, NULL, 0));
	EXPECT_UNGROUPED(m[1]);
	check_ring(_metadata, m[3], ((int[]){ m[0], m[2], m[3] }), 3, &g);
	/* Remove the first member as well. */
	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, NULL, 0));
	EXPECT_UNGROUPED(m[0]);
	check_ring(_metadata, m[2], ((int[]){ m[2], m[3] }), 2, &g);
	/* The two that left form a new group. */
	SET_OK(set_group(m[1], SOCKGROUP_POLICY_PRIMARY, &m[0], 1));
	check_ring(_metadata, m[0], ((int[]){ m[1], m[0] }), 2, &g);
	EXPECT_EQ((uint32_t)SOCKGROUP_POLICY_PRIMARY, g.info.policy);
}

/*
 * Ring [M0, M1 (backlog 1), M2]: two redirects M1 -> M2.  Re-form from M0 as
 * primary [M0, M1, M3]: M2 leaves (free to join another group), M1 keeps its
 * counters, and M1's overflow now goes to M0.
 */
TEST_F(life, regroup_keeps_counters)
{
	struct sockgroup_member *mb;
	struct group g;
	int m4, *m = self->m;

	ASSERT_EQ(0, listen(m[0], 16));
	ASSERT_EQ(0, listen(m[1], 1));
	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 2));
	for (int k = 0; k < 2; k++) {
		CONNECT_OK(&self->cl[self->n], &self->a[1], self->n);
		self->n++;
	}
	wait_queue(_metadata, m[0], m[1], 2);
	for (int k = 0; k < 2; k++) {
		CONNECT_OK(&self->cl[self->n], &self->a[1], self->n);
		self->n++;
		accept_check(_metadata, m[2], &self->a[1], self->cl, self->n, NULL);
	}
	read_group(_metadata, m[0], &g);
	ASSERT_EQ(2ULL, MEMBER(&g, m[1])->redirected_away);

	SET_OK(set_group(m[0], SOCKGROUP_POLICY_PRIMARY, ((int[]){ m[1], m[3] }), 2));
	check_ring(_metadata, m[3], ((int[]){ m[0], m[1], m[3] }), 3, &g);
	EXPECT_EQ((uint32_t)SOCKGROUP_POLICY_PRIMARY, g.info.policy);
	mb = MEMBER(&g, m[1]);
	EXPECT_EQ(2ULL, mb->redirected_away) TH_LOG("M1's counter was reset");
	EXPECT_EQ(2U, mb->accept_queue);
	EXPECT_EQ(0ULL, MEMBER(&g, m[3])->redirected_in);
	EXPECT_EQ(0ULL, MEMBER(&g, m[0])->redirected_in);
	EXPECT_UNGROUPED(m[2]);
	m4 = listener(AF_INET, "127.0.0.5", 0, 4, 0);
	ASSERT_LE(0, m4);
	SET_OK(set_group(m[2], SOCKGROUP_POLICY_RING, &m4, 1));

	CONNECT_OK(&self->cl[self->n], &self->a[1], self->n);
	self->n++;
	EXPECT_EQ(self->n - 1, accept_check(_metadata, m[0], &self->a[1], self->cl,
					    self->n, NULL));
	EXPECT_FALSE(pending(m[3], 0));
	read_group(_metadata, m[0], &g);
	EXPECT_EQ(3ULL, MEMBER(&g, m[1])->redirected_away);
	EXPECT_EQ(1ULL, MEMBER(&g, m[0])->redirected_in);
}

/* ------------------------------------------------ limits, races, failures */

/*
 * SOCKGROUP_MAX_GROUPS and SOCKGROUP_MAX_NET_MEMBERS count the groups of a
 * network namespace: each test has one of its own, so that groups of other
 * tests (or their members still being swept) do not count.
 */
FIXTURE(limits) {
	int *fd;
	int n;
};

FIXTURE_SETUP(limits)
{
	struct rlimit r = { 4 * SOCKGROUP_MAX_NET_MEMBERS, 4 * SOCKGROUP_MAX_NET_MEMBERS };

	self->fd = NULL;
	self->n = 0;
	if (unshare(CLONE_NEWNET))
		SKIP(return, "unshare(CLONE_NEWNET): %s", strerror(errno));
	ASSERT_EQ(0, lo_up());
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &r)) TH_LOG("RLIMIT_NOFILE: %s", strerror(errno));
}

FIXTURE_TEARDOWN(limits)
{
	for (int i = 0; i < self->n; i++)
		close(self->fd[i]);
	free(self->fd);
}

/* n more listeners on 127.0.0.1 (any port); returns the first's index. */
static int more_listeners(struct __test_metadata *_metadata,
			  FIXTURE_DATA(limits) *self, int n)
{
	int first = self->n;

	self->fd = realloc(self->fd, (self->n + n) * sizeof(int));
	ASSERT_NE(NULL, self->fd);
	for (int i = 0; i < n; i++) {
		int fd = listener(AF_INET, "127.0.0.1", 0, 4, 0);

		ASSERT_LE(0, fd) TH_LOG("listener %d: %s", self->n, strerror(errno));
		self->fd[self->n++] = fd;
	}
	return first;
}

/*
 * SOCKGROUP_MAX_GROUPS groups of two: one more is ENOSPC and changes
 * nothing; re-forming a group adds none; once a group is gone there is room.
 */
TEST_F_TIMEOUT(limits, groups, 120)
{
	int n = SOCKGROUP_MAX_GROUPS, x, *fd;

	more_listeners(_metadata, self, 2 * n);
	x = more_listeners(_metadata, self, 3);
	fd = self->fd;
	for (int i = 0; i < n; i++)
		SET_OK(set_group(fd[2 * i], SOCKGROUP_POLICY_RING, &fd[2 * i + 1], 1));
	EXPECT_EQ(-1, set_group(fd[x], SOCKGROUP_POLICY_RING, &fd[x + 1], 1));
	EXPECT_EQ(ENOSPC, errno) TH_LOG("group %d of %d: %s", n + 1, n, strerror(errno));
	EXPECT_UNGROUPED(fd[x]);
	EXPECT_UNGROUPED(fd[x + 1]);

	SET_OK(set_group(fd[0], SOCKGROUP_POLICY_RING, ((int[]){ fd[1], fd[x + 2] }), 2));
	EXPECT_EQ(3U, wait_count(fd[0], 3));

	SET_OK(set_group(fd[2], SOCKGROUP_POLICY_RING, NULL, 0));
	SET_OK(set_group(fd[3], SOCKGROUP_POLICY_RING, NULL, 0));
	SET_OK(set_group(fd[x], SOCKGROUP_POLICY_RING, &fd[x + 1], 1));
	EXPECT_EQ(2U, wait_count(fd[x], 2));
}

/*
 * Groups of SOCKGROUP_MAX_MEMBERS up to SOCKGROUP_MAX_NET_MEMBERS members in
 * the namespace: a group of two more is ENOSPC; shrinking a group by two
 * makes room for it.
 */
TEST_F_TIMEOUT(limits, members, 120)
{
	int per = SOCKGROUP_MAX_MEMBERS, ng = SOCKGROUP_MAX_NET_MEMBERS / per;
	int x, *fd;

	more_listeners(_metadata, self, ng * per);
	x = more_listeners(_metadata, self, 2);
	fd = self->fd;
	for (int g = 0; g < ng; g++)
		SET_OK(set_group(fd[g * per], SOCKGROUP_POLICY_RING, &fd[g * per + 1], per - 1));
	EXPECT_EQ(-1, set_group(fd[x], SOCKGROUP_POLICY_RING, &fd[x + 1], 1));
	EXPECT_EQ(ENOSPC, errno) TH_LOG("%d members + 2: %s", ng * per, strerror(errno));
	EXPECT_UNGROUPED(fd[x]);
	/* One member less is not enough room for two. */
	SET_OK(set_group(fd[0], SOCKGROUP_POLICY_RING, &fd[1], per - 2));
	EXPECT_EQ(-1, set_group(fd[x], SOCKGROUP_POLICY_RING, &fd[x + 1], 1));
	EXPECT_EQ(ENOSPC, errno);
	SET_OK(set_group(fd[0], SOCKGROUP_POLICY_RING, &fd[1], per - 3));
	SET_OK(set_group(fd[x], SOCKGROUP_POLICY_RING, &fd[x + 1], 1));
	EXPECT_EQ(2U, wait_count(fd[x], 2));
}

struct stopper {
	int fd;
	int go;
};

static void *stop_on_go(void *arg)
{
	struct stopper *c = arg;

	while (!__atomic_load_n(&c->go, __ATOMIC_ACQUIRE))
		;
	shutdown(c->fd, SHUT_RDWR);
	return NULL;
}

/*
 * A member stops listening while a request lists it (shutdown(): a close()
 * would wait for the request, which holds the file): the request fails
 * (EINVAL) or succeeds, and either way no socket that stopped stays listed.
 */
TEST_F_TIMEOUT(limits, close_races_request, 120)
{
	int rounds = 200;

	for (int r = 0; r < rounds; r++) {
		struct stopper c = { 0 };
		int64_t deadline;
		struct group g;
		pthread_t t;
		int i, err, *m;

		i = more_listeners(_metadata, self, 3);
		m = &self->fd[i];
		c.fd = m[2];
		ASSERT_EQ(0, pthread_create(&t, NULL, stop_on_go, &c));
		__atomic_store_n(&c.go, 1, __ATOMIC_RELEASE);
		if (set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 2))
			ASSERT_EQ(EINVAL, errno) TH_LOG("round %d: %s", r, strerror(errno));
		ASSERT_EQ(0, pthread_join(t, NULL));
		deadline = now_ms() + SETTLE_MS;
		for (;;) {
			bool closed = false;

			err = get_group(m[0], &g, NULL);
			ASSERT_TRUE(err == 0 || err == ENOENT) TH_LOG("%s", strerror(err));
			for (uint32_t k = 0; !err && k < g.info.count; k++)
				closed |= g.m[k].state != STATE_LISTEN;
			if (!closed)
				break;
			ASSERT_LT(now_ms(), deadline)
				TH_LOG("round %d: a socket that stopped stays listed", r);
			usleep(10000);
		}
		/* The next round reuses the slots. */
		for (int k = 0; k < 3; k++)
			close(m[k]);
		self->n -= 3;
	}
}

/*
 * Failed allocations (failslab, /proc/thread-self/fail-nth): every request
 * fails with ENOMEM at each of its allocations in turn and changes nothing,
 * and a member's removal after close() survives failing sweeps. Run by
 * alloc_fail.sh on the debug kernel, which sets failslab up and checks that
 * no socket or namespace is left behind; groups.sh leaves this fixture out.
 */
FIXTURE(alloc_fail) {
	int m[5];
	int nth;
};

#define FAILSLAB "/sys/kernel/debug/failslab/"
#define FAIL_SWEEP "/sys/kernel/debug/fail_sockgroup_sweep/"

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return rc;
}

static int read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

FIXTURE_SETUP(alloc_fail)
{
	char v[16];

	for (int i = 0; i < 5; i++)
		self->m[i] = -1;
	self->nth = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (self->nth < 0)
		SKIP(return, "no /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION)");
	if (read_str(FAILSLAB "ignore-gfp-wait", v, sizeof(v)) || v[0] != 'N')
		SKIP(return, "failslab must also fail sleeping allocations (alloc_fail.sh sets it up)");
	for (int i = 0; i < 5; i++) {
		self->m[i] = listener(AF_INET, "127.0.0.1", 0, 4, 0);
		ASSERT_LE(0, self->m[i]);
	}
}

FIXTURE_TEARDOWN(alloc_fail)
{
	write_str(FAIL_SWEEP "probability", "0");
	for (int i = 0; i < 5; i++)
		if (self->m[i] >= 0)
			close(self->m[i]);
	if (self->nth >= 0)
		close(self->nth);
}

/*
 * What a user sees of the groups of m[0..4], without group ids: for each,
 * "-" (no group) or the policy, flags and members' cookies in ring order.
 */
static void shape(const int *m, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (int i = 0; i < 5 && off < len; i++) {
		struct group g;
		int err = get_group(m[i], &g, NULL);

		if (err) {
			off += snprintf(buf + off, len - off, "%s|", err == ENOENT ? "-" : strerror(err));
			continue;
		}
		off += snprintf(buf + off, len - off, "%u/%u:", g.info.policy, g.info.flags);
		for (uint32_t k = 0; k < g.info.count && off < len; k++)
			off += snprintf(buf + off, len - off, "%llx,",
					(unsigned long long)g.m[k].cookie);
		if (off < len)
			off += snprintf(buf + off, len - off, "|");
	}
}

static int ungroup_all(const int *m)
{
	for (int i = 0; i < 5; i++)
		if (set_group(m[i], SOCKGROUP_POLICY_RING, NULL, 0))
			return -1;
	return 0;
}

static int op_form(const int *m)
{
	return set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 2);
}

static int op_reform(const int *m)
{
	return set_group(m[0], SOCKGROUP_POLICY_PRIMARY, ((int[]){ m[1], m[3] }), 2);
}

static int op_second(const int *m)
{
	return set_group(m[3], SOCKGROUP_POLICY_RING, &m[4], 1);
}

static int op_leave(const int *m)
{
	return set_group(m[1], SOCKGROUP_POLICY_RING, NULL, 0);
}

static int op_info(const int *m)
{
	struct group g;
	int err = get_group(m[0], &g, NULL);

	errno = err;
	return err ? -1 : 0;
}

static int op_rewrite(const int *m)
{
	return set_group_raw(m[3], SOCKGROUP_VERSION, SOCKGROUP_F_REWRITE,
			     SOCKGROUP_POLICY_RING, 1, &m[4], 1, REQ_HDR + 4);
}

/* op with the n-th failslab allocation of this thread failing; whether it was reached. */
static bool fail_nth(int nth, unsigned int n, int (*op)(const int *), const int *m,
		     int *rc, int *err)
{
	char b[16] = { 0 };
	int len = snprintf(b, sizeof(b), "%u", n);

	if (pwrite(nth, b, len, 0) != len)
		return false;
	*rc = op(m);
	*err = errno;
	memset(b, 0, sizeof(b));
	if (pread(nth, b, sizeof(b) - 1, 0) < 0)
		b[0] = '?';
	pwrite(nth, "0", 1, 0);
	return atoi(b) == 0 && b[0] == '0';
}

TEST_F_TIMEOUT(alloc_fail, requests, 300)
{
	static const struct {
		const char *name;
		int (*setup)(const int *m);
		int (*op)(const int *m);
	} sc[] = {
		{ "form a group", NULL, op_form },
		{ "re-form it", op_form, op_reform },
		{ "a second group", op_form, op_second },
		{ "leave it", op_form, op_leave },
		{ "getsockopt", op_form, op_info },
		{ "a rewrite group", op_form, op_rewrite },
	};
	char before[2048], ok[2048], after[2048];

	for (size_t s = 0; s < sizeof(sc) / sizeof(sc[0]); s++) {
		int enomem = 0, rc = 0, err = 0;
		unsigned int n;

		/* What the request does when nothing fails. */
		ASSERT_EQ(0, ungroup_all(self->m));
		if (sc[s].setup)
			SET_OK(sc[s].setup(self->m));
		shape(self->m, before, sizeof(before));
		rc = sc[s].op(self->m);
		if (rc && errno == ENOPKG && sc[s].op == op_rewrite)
			continue;
		ASSERT_EQ(0, rc) TH_LOG("%s: %s", sc[s].name, strerror(errno));
		shape(self->m, ok, sizeof(ok));

		for (n = 1; n < 1000; n++) {
			ASSERT_EQ(0, ungroup_all(self->m));
			if (sc[s].setup)
				SET_OK(sc[s].setup(self->m));
			shape(self->m, before, sizeof(before));
			if (!fail_nth(self->nth, n, sc[s].op, self->m, &rc, &err)) {
				/* The request made fewer than n allocations. */
				EXPECT_EQ(0, rc) TH_LOG("%s: %s", sc[s].name, strerror(err));
				break;
			}
			shape(self->m, after, sizeof(after));
			if (rc) {
				enomem++;
				EXPECT_EQ(ENOMEM, err) TH_LOG("%s, allocation %u failing: %s",
							      sc[s].name, n, strerror(err));
				EXPECT_STREQ(before, after)
					TH_LOG("%s, allocation %u failing, changed the groups",
					       sc[s].name, n);
			} else {
				/* Another allocation failed, one that is allowed to. */
				EXPECT_STREQ(ok, after) TH_LOG("%s, allocation %u", sc[s].name, n);
			}
		}
		EXPECT_LT(n, 1000U);
		EXPECT_LT(0, enomem) TH_LOG("%s never failed with ENOMEM", sc[s].name);
		TH_LOG("%s: %d of %u allocations failed it with ENOMEM", sc[s].name, enomem, n - 1);
	}
	ASSERT_EQ(0, ungroup_all(self->m));
}

static int op_close(const int *fd)
{
	return close(*fd);
}

/*
 * close() of a member with each of the closing task's allocations failing
 * in turn (the listen-stop hook runs in that task): it still leaves.
 */
TEST_F(alloc_fail, close_member)
{
	int *m = self->m, rc = 0, err = 0;

	for (unsigned int n = 1; n < 100; n++) {
		int x = listener(AF_INET, "127.0.0.1", 0, 4, 0);
		bool reached;

		ASSERT_LE(0, x);
		SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, ((int[]){ m[1], x }), 2));
		ASSERT_EQ(3U, wait_count(m[0], 3));
		reached = fail_nth(self->nth, n, op_close, &x, &rc, &err);
		EXPECT_EQ(0, rc) TH_LOG("close: %s", strerror(err));
		EXPECT_EQ(2U, wait_count(m[0], 2))
			TH_LOG("close() with allocation %u failing: the member stays listed", n);
		if (!reached)
			break;
	}
}

/*
 * A member's close() while the sweep that takes it out fails (three times,
 * fail_sockgroup_sweep): the sweep retries until it succeeds.
 */
TEST_F(alloc_fail, sweep_retries)
{
	int *m = self->m;
	char v[16];

	if (access(FAIL_SWEEP "times", W_OK))
		SKIP(return, "no " FAIL_SWEEP " (CONFIG_FAULT_INJECTION_DEBUG_FS)");
	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 2));
	ASSERT_EQ(0, write_str(FAIL_SWEEP "verbose", "0"));
	ASSERT_EQ(0, write_str(FAIL_SWEEP "interval", "1"));
	ASSERT_EQ(0, write_str(FAIL_SWEEP "times", "3"));
	ASSERT_EQ(0, write_str(FAIL_SWEEP "probability", "100"));
	close(m[1]);
	m[1] = -1;
	EXPECT_EQ(2U, wait_count(m[0], 2)) TH_LOG("the closed member was not taken out");
	ASSERT_EQ(0, read_str(FAIL_SWEEP "times", v, sizeof(v)));
	EXPECT_EQ(0, atoi(v)) TH_LOG("the sweep did not fail three times: times %s", v);
	write_str(FAIL_SWEEP "probability", "0");
}

/*
 * A group (with a redirect done) in a network namespace that goes away
 * with its sockets still open at exit: the namespace's end must clean up
 * (KASAN/kmemleak watch this); the test checks the child worked and ended.
 */
TEST(netns_teardown)
{
	int64_t deadline;
	int status = 0;
	pid_t pid, w;

	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct sockaddr_storage a0;
		struct client cl[3];
		int m[2];

		client_init(cl, 3);
		if (unshare(CLONE_NEWNET))
			_exit(KSFT_SKIP);
		ASSERT_EQ(0, lo_up());
		m[0] = listener(AF_INET, "127.0.0.1", 0, 1, 0);
		m[1] = listener(AF_INET, "127.0.0.1", 0, 16, 0);
		ASSERT_LE(0, m[0]);
		ASSERT_LE(0, m[1]);
		ASSERT_EQ(0, local_of(m[0], &a0));
		SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 1));
		CONNECT_OK(&cl[0], &a0, 0);
		CONNECT_OK(&cl[1], &a0, 1);
		wait_queue(_metadata, m[0], m[0], 2);
		CONNECT_OK(&cl[2], &a0, 2);
		accept_check(_metadata, m[1], &a0, cl, 3, NULL);
		_exit(_metadata->exit_code ? 1 : 0);
	}
	deadline = now_ms() + 25000;	/* ends when the child does; the harness gives 30 s */
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		usleep(10000);
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ASSERT_TRUE(false) TH_LOG("the child in its own netns did not finish");
	}
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("child ended by signal %d",
					      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	if (WEXITSTATUS(status) == KSFT_SKIP)
		SKIP(return, "unshare(CLONE_NEWNET) not permitted");
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/* ---------------------------------------------------------------- storm */

struct storm_shared {
	volatile uint16_t port[3];
	volatile int stop;
	volatile int connected[3];	/* per client: connections made */
};

/* Bounded connect loop; 0 unless an error other than a failed connection. */
static int storm_client(struct storm_shared *sh, int id, int64_t deadline)
{
	unsigned int seed = getpid() ^ (id << 16);
	int ok = 0, failed = 0, i;

	for (i = 0; i < 300 && !sh->stop && now_ms() < deadline; i++) {
		struct sockaddr_storage dst;
		char b[16] = "storm";
		int fd, err;

		make_sa(&dst, AF_INET, "127.0.0.1", sh->port[rand_r(&seed) % 3]);
		err = connect_nb(&dst, 100, &fd);
		if (!err) {
			if (send(fd, b, sizeof(b), MSG_NOSIGNAL) < 0 &&
			    errno != EPIPE && errno != ECONNRESET) {
				fprintf(stderr, "# storm client %d: send: %s\n", id, strerror(errno));
				close(fd);
				return 1;
			}
			ok++;
		} else if (err == ECONNREFUSED || err == ETIMEDOUT || err == ECONNRESET ||
			   err == EADDRNOTAVAIL || err == EAGAIN) {
			failed++;
		} else {
			fprintf(stderr, "# storm client %d: connect: %s\n", id, strerror(err));
			if (fd >= 0)
				close(fd);
			return 1;
		}
		if (fd >= 0)
			close(fd);
	}
	fprintf(stderr, "# storm client %d: %d connected, %d failed\n", id, ok, failed);
	sh->connected[id] = ok;
	return 0;
}

/*
 * Accept every connection waiting on listener fd and close it; returns how
 * many carried a storm client's bytes (sent before it closed).
 */
static int storm_drain(int fd)
{
	int a, served = 0;

	while ((a = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		char b[16];

		if (recv(a, b, sizeof(b), MSG_DONTWAIT) == sizeof(b) && !strcmp(b, "storm"))
			served++;
		close(a);
	}
	return served;
}

/* fd's redirected_in counter (0 when it is in no group). */
static uint64_t redirected_in_of(int fd)
{
	struct sockgroup_member *mb;
	struct group g;

	if (get_group(fd, &g, NULL))
		return 0;
	mb = member_of(&g, fd);
	return mb ? mb->redirected_in : 0;
}

FIXTURE(storm) {
	int m[3];
};

FIXTURE_SETUP(storm)
{
	for (int i = 0; i < 3; i++)
		self->m[i] = -1;
}

FIXTURE_TEARDOWN(storm)
{
	for (int i = 0; i < 3; i++)
		if (self->m[i] >= 0)
			close(self->m[i]);
}

/*
 * Three processes connect (300 each, 100 ms timeouts, 10 s at most; 5 s on
 * the debug kernel) to the members of a group while this one closes, shuts
 * down or removes (count 0) a member, re-creates it on its port and re-forms
 * the group (alternating policies) every 20 ms: at least 40 times (15 on the
 * debug kernel), at most 400, while the clients run.  Member 0 (backlog 1)
 * is never accepted from, so it is full most of the time and its SYNs are
 * redirected; the others are drained every iteration.  Only connection
 * failures are allowed; redirects must have happened (the members'
 * redirected_in, each read before its socket goes and at the end), clients
 * must have connected and members accepted connections carrying their
 * bytes; at the end the group reads consistently and each member takes a
 * connection addressed to it.  KASAN/lockdep watch the kernel side.  An
 * iteration takes about 50 ms on the plain kernel and up to 250 ms on the
 * debug kernel of a loaded host under TCG: the 40 have 45 s.
 */
TEST_F_TIMEOUT(storm, close_regroup_under_load, 90)
{
	static const int backlog[3] = { 1, 2, 8 };
	struct storm_shared *sh;
	struct sockaddr_storage ss;
	struct client cl[3];
	struct group g;
	pid_t kids[3];
	int kstatus[3] = { 0 };
	bool reaped[3] = { false };
	int order[3] = { 0, 1, 2 }, errs = 0, it, alive = 3, i, *m = self->m;
	int min_it = debug_kernel() ? 15 : 40, served = 0, connected = 0;
	uint32_t policy = SOCKGROUP_POLICY_RING;
	int64_t kid_deadline, deadline, quiet_deadline;
	uint64_t redirects = 0;
	bool quiet;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	for (i = 0; i < 3; i++) {
		m[i] = listener(AF_INET, "127.0.0.1", 0, backlog[i], 0);
		ASSERT_LE(0, m[i]);
		ASSERT_EQ(0, local_of(m[i], &ss));
		sh->port[i] = sa_port(&ss);
	}
	SET_OK(set_group(m[0], policy, &m[1], 2));

	kid_deadline = now_ms() + (debug_kernel() ? 5000 : 10000);
	deadline = now_ms() + 45000;
	fflush(NULL);
	for (i = 0; i < 3; i++) {
		kids[i] = fork();
		ASSERT_LE(0, kids[i]);
		if (kids[i] == 0)
			_exit(storm_client(sh, i, kid_deadline));
	}

	for (it = 0; (it < min_it || alive) && it < 400 && now_ms() < deadline; it++) {
		int v = it % 3, how = (it / 3) % 3, q = (v + 1) % 3, r = (v + 2) % 3;

		for (i = 1; i < 3; i++)
			served += storm_drain(m[i]);
		redirects += redirected_in_of(m[v]);
		if (how == 1 && shutdown(m[v], SHUT_RDWR)) {
			TH_LOG("iteration %d: shutdown: %s", it, strerror(errno));
			errs++;
		}
		if (how == 2 && set_group(m[v], policy, NULL, 0)) {
			TH_LOG("iteration %d: count 0: %s", it, strerror(errno));
			errs++;
		}
		close(m[v]);
		m[v] = listener(AF_INET, "127.0.0.1", sh->port[v], backlog[v], 0);
		if (m[v] < 0) {
			m[v] = listener(AF_INET, "127.0.0.1", 0, backlog[v], 0);
			if (m[v] < 0 || local_of(m[v], &ss)) {
				TH_LOG("iteration %d: listener: %s", it, strerror(errno));
				errs++;
				break;
			}
			sh->port[v] = sa_port(&ss);
		}
		policy = it % 2 ? SOCKGROUP_POLICY_PRIMARY : SOCKGROUP_POLICY_RING;
		if (set_group(m[q], policy, ((int[]){ m[r], m[v] }), 2)) {
			TH_LOG("iteration %d: regroup: %s", it, strerror(errno));
			errs++;
			break;
		}
		order[0] = q;
		order[1] = r;
		order[2] = v;
		usleep(20000);	/* the pace of the regroups, not a wait */
		for (alive = 0, i = 0; i < 3; i++) {
			if (!reaped[i] && waitpid(kids[i], &kstatus[i], WNOHANG) == kids[i])
				reaped[i] = true;
			alive += !reaped[i];
		}
	}
	sh->stop = 1;
	for (i = 0; i < 3; i++) {
		if (!reaped[i] && waitpid(kids[i], &kstatus[i], 0) != kids[i]) {
			TH_LOG("storm client %d: waitpid: %s", i, strerror(errno));
			errs++;
			continue;
		}
		EXPECT_TRUE(WIFEXITED(kstatus[i]) && WEXITSTATUS(kstatus[i]) == 0)
			TH_LOG("storm client %d failed (status 0x%x)", i, kstatus[i]);
	}
	for (i = 0; i < 3; i++)
		connected += sh->connected[i];
	for (i = 1; i < 3; i++)
		served += storm_drain(m[i]);
	TH_LOG("%d close/regroup iterations", it);
	ASSERT_EQ(0, errs);
	ASSERT_LE(min_it, it);

	/* The final group reads consistently... */
	check_ring(_metadata, m[order[1]], ((int[]){ m[order[0]], m[order[1]], m[order[2]] }),
		   3, &g);
	EXPECT_EQ(policy, g.info.policy);
	for (i = 0; i < 3; i++)
		redirects += g.m[i].redirected_in;
	TH_LOG("%d connections made, %d served with their bytes, %llu redirects",
	       connected, served, (unsigned long long)redirects);
	EXPECT_LT(0, connected) TH_LOG("no storm client connected");
	EXPECT_LT(0, served) TH_LOG("no connection was served with its bytes");
	EXPECT_LT(0ULL, redirects) TH_LOG("no SYN was redirected during the storm");

	/*
	 * ...and works: once every queue is drained and no handshake of the
	 * storm is under way, one connection to each member lands there.
	 */
	quiet_deadline = now_ms() + SETTLE_MS;
	do {
		for (i = 0; i < 3; i++)
			storm_drain(m[i]);
		read_group(_metadata, m[0], &g);
		quiet = true;
		for (i = 0; i < 3; i++)
			quiet = quiet && !g.m[i].accept_queue && !g.m[i].handshakes;
		if (!quiet)
			usleep(10000);
	} while (!quiet && now_ms() < quiet_deadline);
	ASSERT_TRUE(quiet) TH_LOG("the storm's connections did not settle");
	client_init(cl, 3);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, local_of(m[i], &ss));
		CONNECT_OK(&cl[i], &ss, i);
		EXPECT_EQ(i, accept_check(_metadata, m[i], &ss, cl, i + 1, NULL));
	}
	for (i = 0; i < 3; i++)
		close(cl[i].fd);
	munmap(sh, sizeof(*sh));
}

/*
 * Regrouping from several threads under traffic, over IPv6 and with rewrite
 * groups.  Three listeners M0 (backlog 1, not accepted from until the end),
 * M1 and M2 on distinct ports.  Three threads re-form the group (each time
 * anchored on a random member, with the two others) or take a member out
 * (count 0), every 2 ms each, with the variant's flags; three client
 * threads connect, mostly to M0, send MSG_LEN tagged bytes and wait for
 * their echo; a server thread accepts on M1 and M2 and echoes.  For 3 s.
 *
 * Each connection must connect and get its bytes back intact, or fail to
 * connect (M0 full while in no group drops the SYN): those queued on M0, or
 * whose echo is late, are kept and must be served when M0 is drained at
 * the end.  The regroups may fail only with EBUSY (a member taken by a
 * concurrent regroup) or ENOENT (leaving no group).  Redirects must have
 * happened (a connection accepted on a member other than the one dialled),
 * each accepted at the address its mode implies: the one dialled (steer) or
 * the accepting member's own (rewrite).  The test runs in a network
 * namespace of its own, which a rewrite group puts connection tracking in.
 */
#define MT_THREADS	3
#define MT_PENDING	256

struct mt_conn {
	int fd;
	int got;
	char msg[MSG_LEN];
	char echo[MSG_LEN];
};

struct mt_state {
	int m[3];
	struct sockaddr_storage a[3];
	uint32_t flags;
	volatile int stop;		/* regroupers and clients */
	volatile int server_stop;
	volatile int drain_m0;		/* the server accepts on M0 too */
	/* regroupers */
	int regroups[MT_THREADS], busy[MT_THREADS], bad[MT_THREADS], bad_errno[MT_THREADS];
	/* clients */
	int connected[MT_THREADS], refused[MT_THREADS], served[MT_THREADS];
	int broken[MT_THREADS], corrupt[MT_THREADS], cbad_errno[MT_THREADS];
	struct mt_conn pending[MT_THREADS][MT_PENDING];
	int npending[MT_THREADS];
	/* server */
	int accepted, redirected, wrong_local, short_read;
	char wrong[160];
};

struct mt_arg {
	struct mt_state *st;
	int id;
};

static void *mt_regrouper(void *p)
{
	struct mt_arg *arg = p;
	struct mt_state *st = arg->st;
	unsigned int seed = arg->id * 7919 + getpid();
	int id = arg->id;

	while (!st->stop) {
		unsigned int r = rand_r(&seed);
		int a = r % 3, fds[2] = { st->m[(a + 1) % 3], st->m[(a + 2) % 3] };
		uint32_t policy = (r >> 8) % 2 ? SOCKGROUP_POLICY_PRIMARY : SOCKGROUP_POLICY_RING;
		int n = (r >> 4) % 4 ? 2 : 0, rc;

		rc = set_group_raw(st->m[a], SOCKGROUP_VERSION, st->flags, policy, n, fds, n,
				   REQ_HDR + 4 * n);
		if (!rc)
			st->regroups[id]++;
		else if (errno == EBUSY || (n == 0 && errno == ENOENT))
			st->busy[id]++;
		else if (!st->bad[id]++)
			st->bad_errno[id] = errno;
		usleep(2000);
	}
	return NULL;
}

/* Read what has arrived of c's echo; true once all of it has. */
static bool mt_read_echo(struct mt_conn *c, int ms)
{
	while (c->got < MSG_LEN) {
		ssize_t r;

		if (!pending(c->fd, ms))
			return false;
		r = recv(c->fd, c->echo + c->got, MSG_LEN - c->got, MSG_DONTWAIT);
		if (r <= 0)
			return false;
		c->got += r;
	}
	return true;
}

static void *mt_client(void *p)
{
	struct mt_arg *arg = p;
	struct mt_state *st = arg->st;
	unsigned int seed = arg->id * 104729 + getpid();
	int id = arg->id, seq = 0;

	while (!st->stop && st->npending[id] < MT_PENDING) {
		struct mt_conn *c = &st->pending[id][st->npending[id]];
		unsigned int r = rand_r(&seed);
		int target = r % 4 ? 0 : 1 + (r >> 4) % 2;
		int err, i;

		err = connect_nb(&st->a[target], 300, &c->fd);
		if (err) {
			if (c->fd >= 0)
				close(c->fd);
			if (err == ETIMEDOUT || err == ECONNREFUSED || err == ECONNRESET ||
			    err == EAGAIN)
				st->refused[id]++;
			else if (!st->broken[id]++)
				st->cbad_errno[id] = err;
			continue;
		}
		st->connected[id]++;
		c->got = 0;
		i = snprintf(c->msg, MSG_LEN, "mt %d %d %d ", target, id, seq++);
		for (; i < MSG_LEN; i++)
			c->msg[i] = 'a' + (r + i) % 26;
		if (send(c->fd, c->msg, MSG_LEN, MSG_NOSIGNAL) != MSG_LEN) {
			if (!st->broken[id]++)
				st->cbad_errno[id] = errno;
			close(c->fd);
			continue;
		}
		if (!mt_read_echo(c, 200)) {
			st->npending[id]++;	/* M0's queue, or a slow echo: later */
			continue;
		}
		if (memcmp(c->echo, c->msg, MSG_LEN))
			st->corrupt[id]++;
		else
			st->served[id]++;
		close(c->fd);
	}
	return NULL;
}

/* Serve one accepted connection on member k: check its address, echo. */
static void mt_serve(struct mt_state *st, int k, int afd)
{
	struct sockaddr_storage local;
	const struct sockaddr_storage *want;
	char buf[MSG_LEN];
	int got = 0, target;

	while (got < MSG_LEN && pending(afd, ACCEPT_MS)) {
		ssize_t r = recv(afd, buf + got, MSG_LEN - got, MSG_DONTWAIT);

		if (r <= 0)
			break;
		got += r;
	}
	if (got < MSG_LEN || sscanf(buf, "mt %d", &target) != 1 || target < 0 || target > 2) {
		st->short_read++;
		close(afd);
		return;
	}
	st->accepted++;
	st->redirected += target != k;
	/* Steer: accepted as addressed; rewrite: at the member's own address. */
	want = st->flags & SOCKGROUP_F_REWRITE ? &st->a[k] : &st->a[target];
	if (local_of(afd, &local) || !sa_equal(&local, want)) {
		if (!st->wrong_local++)
			snprintf(st->wrong, sizeof(st->wrong), "dialled M%d, accepted on M%d at %s",
				 target, k, sa_str(&local));
	}
	send(afd, buf, MSG_LEN, MSG_NOSIGNAL);
	close(afd);
}

static void *mt_server(void *p)
{
	struct mt_state *st = p;

	while (!st->server_stop) {
		struct pollfd pf[3];
		int k;

		for (k = 0; k < 3; k++) {
			pf[k].fd = k || st->drain_m0 ? st->m[k] : -1;
			pf[k].events = POLLIN;
			pf[k].revents = 0;
		}
		if (poll(pf, 3, 20) <= 0)
			continue;
		for (k = 0; k < 3; k++) {
			int afd;

			if (!(pf[k].revents & POLLIN))
				continue;
			afd = accept4(st->m[k], NULL, NULL, SOCK_CLOEXEC);
			if (afd >= 0)
				mt_serve(st, k, afd);
		}
	}
	return NULL;
}

FIXTURE(regroup_mt) {
	struct mt_state *st;
};

FIXTURE_VARIANT(regroup_mt) {
	int family;
	const char *ip[3];
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(regroup_mt, ipv6) {
	.family = AF_INET6, .ip = { "::1", "::1", "::1" }, .flags = 0,
};

FIXTURE_VARIANT_ADD(regroup_mt, ipv6_rewrite) {
	.family = AF_INET6, .ip = { "::1", "::1", "::1" }, .flags = SOCKGROUP_F_REWRITE,
};

FIXTURE_VARIANT_ADD(regroup_mt, ipv4_rewrite) {
	.family = AF_INET, .ip = { "127.0.0.1", "127.0.0.2", "127.0.0.3" },
	.flags = SOCKGROUP_F_REWRITE,
};

FIXTURE_SETUP(regroup_mt)
{
	struct mt_state *st;
	int fds[2], i;

	self->st = st = calloc(1, sizeof(*st));
	ASSERT_NE(NULL, st);
	for (i = 0; i < 3; i++)
		st->m[i] = -1;
	/* The harness runs each test in a process of its own. */
	if (unshare(CLONE_NEWNET))
		SKIP(return, "unshare(CLONE_NEWNET): %s", strerror(errno));
	ASSERT_EQ(0, lo_up());
	st->flags = variant->flags;
	for (i = 0; i < 3; i++) {
		st->m[i] = listener(variant->family, variant->ip[i], 0, i ? 64 : 1, 0);
		ASSERT_LE(0, st->m[i]) TH_LOG("listener on %s: %s", variant->ip[i], strerror(errno));
		ASSERT_EQ(0, local_of(st->m[i], &st->a[i]));
	}
	fds[0] = st->m[1];
	fds[1] = st->m[2];
	if (set_group_raw(st->m[0], SOCKGROUP_VERSION, st->flags, SOCKGROUP_POLICY_RING, 2,
			  fds, 2, REQ_HDR + 8) && errno == ENOPKG)
		SKIP(return, "rewrite groups need conntrack and NAT (ENOPKG)");
}

FIXTURE_TEARDOWN(regroup_mt)
{
	struct mt_state *st = self->st;

	if (!st)
		return;
	for (int i = 0; i < 3; i++)
		if (st->m[i] >= 0)
			close(st->m[i]);
	free(st);
}

TEST_F_TIMEOUT(regroup_mt, threads_under_traffic, 60)
{
	struct mt_state *st = self->st;
	pthread_t regrouper[MT_THREADS], client[MT_THREADS], server;
	struct mt_arg args[MT_THREADS];
	int i, regroups = 0, connected = 0, served = 0, refused = 0, lost = 0;
	int64_t deadline;

	ASSERT_EQ(0, pthread_create(&server, NULL, mt_server, st));
	for (i = 0; i < MT_THREADS; i++) {
		args[i].st = st;
		args[i].id = i;
		ASSERT_EQ(0, pthread_create(&regrouper[i], NULL, mt_regrouper, &args[i]));
		ASSERT_EQ(0, pthread_create(&client[i], NULL, mt_client, &args[i]));
	}
	deadline = now_ms() + 3000;
	while (now_ms() < deadline)
		usleep(50000);	/* the load's duration, not a wait for a condition */
	st->stop = 1;
	for (i = 0; i < MT_THREADS; i++) {
		pthread_join(regrouper[i], NULL);
		pthread_join(client[i], NULL);
	}

	/* Serve M0 too; every connection still waiting gets its echo. */
	st->drain_m0 = 1;
	deadline = now_ms() + 20000;	/* retransmitted ACKs of an overflowed queue */
	for (i = 0; i < MT_THREADS; i++)
		for (int k = 0; k < st->npending[i]; k++) {
			struct mt_conn *c = &st->pending[i][k];
			int left = deadline - now_ms();

			if (!mt_read_echo(c, left > 0 ? left : 0)) {
				if (!lost++)
					TH_LOG("client %d, '%.20s': %d of %d bytes echoed", i, c->msg,
					       c->got, MSG_LEN);
			} else if (memcmp(c->echo, c->msg, MSG_LEN)) {
				st->corrupt[i]++;
			} else {
				st->served[i]++;
			}
			close(c->fd);
		}
	st->server_stop = 1;
	pthread_join(server, NULL);

	for (i = 0; i < MT_THREADS; i++) {
		regroups += st->regroups[i];
		connected += st->connected[i];
		served += st->served[i];
		refused += st->refused[i];
		EXPECT_EQ(0, st->bad[i]) TH_LOG("regrouper %d: %d failed with %s", i, st->bad[i],
						strerror(st->bad_errno[i]));
		EXPECT_EQ(0, st->broken[i]) TH_LOG("client %d: %d failed with %s", i,
						   st->broken[i], strerror(st->cbad_errno[i]));
		EXPECT_EQ(0, st->corrupt[i]) TH_LOG("client %d: %d echoes differ", i,
						    st->corrupt[i]);
	}
	TH_LOG("%d regroups; %d connected, %d served, %d failed to connect; "
	       "server: %d accepted, %d redirected", regroups, connected, served, refused,
	       st->accepted, st->redirected);
	EXPECT_EQ(0, lost) TH_LOG("%d connections connected and never echoed", lost);
	EXPECT_EQ(0, st->short_read) TH_LOG("%d accepted connections without their bytes",
					     st->short_read);
	EXPECT_EQ(0, st->wrong_local) TH_LOG("%d accepted at the wrong address, first: %s",
					     st->wrong_local, st->wrong);
	EXPECT_LT(10, regroups);
	EXPECT_LT(0, served);
	EXPECT_EQ(connected, served) TH_LOG("every connection made must be served");
	EXPECT_LT(0, st->redirected) TH_LOG("no connection was redirected");
}

/* ------------------------------------------------------- stall rescue */

/*
 * Version 2 requests: accepted with stall_ms 0, the bounds and values
 * between; the version 2 reply (asked for with SOCKGROUP_VERSION_2 in the
 * buffer's first __u32): its layout, stall_ms echoed, every member serving
 * with zero counters, its version 1 part equal to the version 1 reply; any
 * other first __u32 gets the version 1 reply; ERANGE reports the length of
 * the version asked for; a version 1 request re-forms the group with stall
 * rescue off.
 */
TEST(group_v2)
{
	static const uint32_t stall[] = { SOCKGROUP_STALL_MIN_MS, 200,
					  SOCKGROUP_STALL_MAX_MS, 0, 100 };
	static const uint32_t other_first[] = { 0, 1, 3, 0xffffffffU };
	struct group2 g2;
	struct group g1;
	socklen_t len;
	int m[3], err;

	for (int i = 0; i < 3; i++) {
		m[i] = listener(AF_INET, "127.0.0.1", 0, 4 + i, 0);
		ASSERT_LE(0, m[i]);
	}
	for (unsigned int s = 0; s < ARRAY_SIZE(stall); s++) {
		SET_OK(set_group_v2(m[0], 0, SOCKGROUP_POLICY_PRIMARY, stall[s], &m[1], 2));
		check_ring(_metadata, m[0], m, 3, &g1);
		for (int k = 0; k < 3; k++) {
			read_group2(_metadata, m[k], &g2);
			EXPECT_EQ(stall[s], g2.info.stall_ms) TH_LOG("stall_ms %u, via member %d",
								     stall[s], k);
			EXPECT_EQ(3U, g2.info.count);
			EXPECT_EQ((uint32_t)SOCKGROUP_POLICY_PRIMARY, g2.info.policy);
			EXPECT_EQ(0U, g2.info.flags);
			EXPECT_EQ(g1.info.group_id, g2.info.group_id);
			EXPECT_EQ(g1.info.dropped, g2.info.dropped);
		}
	}
	/* Each member's first 72 bytes are the version 1 record. */
	read_group(_metadata, m[0], &g1);
	read_group2(_metadata, m[0], &g2);
	for (uint32_t i = 0; i < g2.info.count; i++) {
		struct sockgroup_member_v2 *mb = &g2.m[i];

		EXPECT_EQ(0, memcmp(&mb->m, &g1.m[i], sizeof(g1.m[i])))
			TH_LOG("member %u: v2 record differs from the v1 one", i);
		EXPECT_EQ((uint32_t)SOCKGROUP_MEMBER_SERVING, mb->status) TH_LOG("member %u", i);
		EXPECT_EQ(0U, mb->stalled_ms);
		EXPECT_EQ(0ULL, mb->rescued_away);
		EXPECT_EQ(0ULL, mb->rescued_in);
	}
	/* Any other first __u32: the version 1 reply, of version 1's length. */
	for (unsigned int i = 0; i < ARRAY_SIZE(other_first); i++) {
		struct group g;

		memset(&g, 0xa5, sizeof(g));
		g.info.version = other_first[i];
		len = sizeof(g);
		ASSERT_EQ(0, getsockopt(m[1], SOL_SOCKET, SO_SERVICE_GROUP, &g, &len))
			TH_LOG("first u32 %u: %s", other_first[i], strerror(errno));
		EXPECT_EQ(GROUP_LEN(3), len) TH_LOG("first u32 %u", other_first[i]);
		EXPECT_EQ((uint32_t)SOCKGROUP_VERSION, g.info.version);
		EXPECT_EQ(3U, g.info.count);
		EXPECT_EQ(g1.info.group_id, g.info.group_id);
	}
	/* ERANGE: the length of the reply asked for. */
	for (socklen_t l = 4; l < GROUP2_LEN(3); l += 52) {
		memset(&g2, 0, sizeof(g2));
		g2.info.version = SOCKGROUP_VERSION_2;
		len = l;
		errno = 0;
		EXPECT_EQ(-1, getsockopt(m[2], SOL_SOCKET, SO_SERVICE_GROUP, &g2, &len));
		EXPECT_EQ(ERANGE, errno) TH_LOG("v2, len %u: %s", l, strerror(errno));
		EXPECT_EQ(GROUP2_LEN(3), len) TH_LOG("v2, len %u", l);
	}
	len = GROUP2_LEN(3) - 1;
	errno = 0;
	g2.info.version = SOCKGROUP_VERSION_2;
	EXPECT_EQ(-1, getsockopt(m[2], SOL_SOCKET, SO_SERVICE_GROUP, &g2, &len));
	EXPECT_EQ(ERANGE, errno);
	EXPECT_EQ(GROUP2_LEN(3), len);
	/* Shorter than 4 bytes: version 1's ERANGE. */
	len = 3;
	errno = 0;
	EXPECT_EQ(-1, getsockopt(m[2], SOL_SOCKET, SO_SERVICE_GROUP, &g2, &len));
	EXPECT_EQ(ERANGE, errno);
	EXPECT_EQ(GROUP_LEN(3), len);
	/* Exactly the length: the whole reply. */
	memset(&g2, 0, sizeof(g2));
	g2.info.version = SOCKGROUP_VERSION_2;
	len = GROUP2_LEN(3);
	ASSERT_EQ(0, getsockopt(m[2], SOL_SOCKET, SO_SERVICE_GROUP, &g2, &len));
	EXPECT_EQ(GROUP2_LEN(3), len);
	EXPECT_EQ(100U, g2.info.stall_ms);

	/* Version 1 still works, and re-forms the group with rescue off. */
	SET_OK(set_group(m[0], SOCKGROUP_POLICY_RING, &m[1], 2));
	check_ring(_metadata, m[2], m, 3, &g1);
	EXPECT_EQ((uint32_t)SOCKGROUP_POLICY_RING, g1.info.policy);
	read_group2(_metadata, m[1], &g2);
	EXPECT_EQ(0U, g2.info.stall_ms);
	/* Version 2 with count 0 takes a socket out. */
	SET_OK(set_group_v2(m[2], 0, SOCKGROUP_POLICY_RING, 100, NULL, 0));
	EXPECT_UNGROUPED(m[2]);
	EXPECT_EQ(2U, wait_count(m[0], 2));
	err = get_group2(m[2], &g2, NULL);
	EXPECT_EQ(ENOENT, err);
}

FIXTURE(stall) {
	int m[2];			/* A (never accepts), B */
	struct sockaddr_storage a[2];
	struct client cl[24];
	int n;
};

FIXTURE_VARIANT(stall) {
	int family;
	const char *ip;
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(stall, steer_ipv4) {
	.family = AF_INET, .ip = "127.0.0.1",
};

FIXTURE_VARIANT_ADD(stall, steer_ipv6) {
	.family = AF_INET6, .ip = "::1",
};

FIXTURE_VARIANT_ADD(stall, rewrite_ipv4) {
	.family = AF_INET, .ip = "127.0.0.1", .flags = SOCKGROUP_F_REWRITE,
};

FIXTURE_VARIANT_ADD(stall, rewrite_ipv6) {
	.family = AF_INET6, .ip = "::1", .flags = SOCKGROUP_F_REWRITE,
};

/* The stall threshold of the stall tests: their clients connect well within it. */
#define STALL_MS	(debug_kernel() ? 500 : 100)

/* A (backlog 16) and B (backlog 16) on their own ports, not grouped yet. */
FIXTURE_SETUP(stall)
{
	client_init(self->cl, 24);
	self->n = 0;
	for (int i = 0; i < 2; i++) {
		self->m[i] = listener(variant->family, variant->ip, 0, 16, 0);
		ASSERT_LE(0, self->m[i]) TH_LOG("listener on %s: %s", variant->ip,
						 strerror(errno));
		ASSERT_EQ(0, local_of(self->m[i], &self->a[i]));
	}
}

FIXTURE_TEARDOWN(stall)
{
	close_all(self->cl, 24, self->m, 2);
}

/*
 * Wait (bounded: STALL_MS plus SETTLE_MS, times 6 on the debug kernel)
 * until A's status in the v2 reply is STALLED and its rescued_away is at
 * least want; *g gets the last reply.  Whether both happened.
 */
static bool wait_rescued(struct __test_metadata *_metadata, int a,
			 uint64_t want, struct group2 *g)
{
	int64_t deadline = now_ms() + (STALL_MS + SETTLE_MS) * (debug_kernel() ? 6 : 1);
	struct sockgroup_member_v2 *mb;

	for (;;) {
		if (get_group2(a, g, NULL))
			return false;
		mb = member2_of(g, a);
		if (mb && mb->status == SOCKGROUP_MEMBER_STALLED && mb->rescued_away >= want)
			return true;
		if (now_ms() > deadline)
			return false;
		usleep(5000);
	}
}

/*
 * Wait (bounded: ms) until fd's status in the v2 reply is status; *g gets
 * the last reply, and fd's record in it is returned.
 */
static struct sockgroup_member_v2 *wait_status(struct __test_metadata *_metadata, int fd,
					       uint32_t status, int64_t ms, struct group2 *g)
{
	int64_t deadline = now_ms() + ms;
	struct sockgroup_member_v2 *m;

	for (;;) {
		read_group2(_metadata, fd, g);
		m = MEMBER2(g, fd);
		if (m->status == status || now_ms() >= deadline)
			return m;
		usleep(2000);
	}
}

/*
 * Ring [A, B] with stall_ms STALL_MS; A never accepts.  Eight clients dial A and
 * send their bytes; A holds them in its queue until it is STALLED, then
 * every one is moved to B (a poll() on B wakes): accept() on B returns each once, with the
 * address the client dialled (the socket moved, in both modes) and its
 * bytes intact; A's rescued_away and B's rescued_in are 8, A's queue is
 * empty and A stays STALLED.  A client that dials A now ends on B too
 * (redirected, or let through as a probe and rescued).
 */
TEST_F(stall, rescue_all)
{
	struct sockgroup_member_v2 *ma, *mb;
	struct group2 g;
	int n = 8, k;
	bool ok;

	SET_OK(set_group_v2(self->m[0], variant->flags, SOCKGROUP_POLICY_RING, STALL_MS,
			    &self->m[1], 1));
	for (k = 0; k < n; k++) {
		CONNECT_OK(&self->cl[self->n], &self->a[0], self->n);
		self->n++;
	}
	/* A poll() on B, begun while its queue is empty, wakes with the rescue. */
	ASSERT_FALSE(pending(self->m[1], 0)) TH_LOG("a client reached B before A stalled");
	ASSERT_TRUE(pending(self->m[1], (STALL_MS + SETTLE_MS) * (debug_kernel() ? 6 : 1)))
		TH_LOG("B's poll() was not woken by the rescue");
	ok = wait_rescued(_metadata, self->m[0], n, &g);
	ma = MEMBER2(&g, self->m[0]);
	ASSERT_TRUE(ok) TH_LOG("A not STALLED with %d rescued in time: status %u, rescued_away %llu, queue %u",
			       n, ma->status, (unsigned long long)ma->rescued_away,
			       ma->m.accept_queue);
	for (k = 0; k < n; k++)
		accept_check(_metadata, self->m[1], &self->a[0], self->cl, self->n, NULL);
	for (k = 0; k < n; k++)
		EXPECT_TRUE(self->cl[k].seen) TH_LOG("client %d not accepted on B", k);
	EXPECT_FALSE(pending(self->m[1], 0)) TH_LOG("more connections on B than clients");
	EXPECT_FALSE(pending(self->m[0], 0)) TH_LOG("a connection is still waiting on A");

	read_group2(_metadata, self->m[0], &g);
	EXPECT_EQ((uint32_t)STALL_MS, g.info.stall_ms);
	EXPECT_EQ(variant->flags, g.info.flags);
	ma = MEMBER2(&g, self->m[0]);
	mb = MEMBER2(&g, self->m[1]);
	EXPECT_EQ((uint64_t)n, ma->rescued_away);
	EXPECT_EQ(0ULL, ma->rescued_in);
	EXPECT_EQ((uint64_t)n, mb->rescued_in);
	EXPECT_EQ(0ULL, mb->rescued_away);
	EXPECT_EQ(0U, ma->m.accept_queue);
	EXPECT_EQ(0U, mb->m.accept_queue);
	EXPECT_EQ((uint32_t)SOCKGROUP_MEMBER_SERVING, mb->status);
	EXPECT_EQ((uint32_t)SOCKGROUP_MEMBER_STALLED, ma->status)
		TH_LOG("A, which never accepted, is no longer stalled");
	EXPECT_EQ(0ULL, ma->m.redirected_away) TH_LOG("rescues counted as redirects");
	EXPECT_EQ(0ULL, g.info.dropped);

	/*
	 * A new client for the stalled A goes to B: redirected (steer: as
	 * addressed; rewrite: to B's address), or let through to A as the
	 * probe of an empty stalled queue and, not accepted, rescued (the
	 * address it dialled in both modes).
	 */
	CONNECT_OK(&self->cl[self->n], &self->a[0], self->n);
	self->n++;
	{
		int64_t wait = (ACCEPT_MS + 2 * STALL_MS) * (debug_kernel() ? 6 : 1);
		struct sockaddr_storage local;
		char buf[MSG_LEN];
		int afd;

		ASSERT_TRUE(pending(self->m[1], wait)) TH_LOG("the new client is not on B");
		afd = accept4(self->m[1], NULL, NULL, SOCK_CLOEXEC);
		ASSERT_LE(0, afd);
		ASSERT_EQ(0, local_of(afd, &local));
		EXPECT_TRUE(sa_equal(&local, &self->a[0]) ||
			    ((variant->flags & SOCKGROUP_F_REWRITE) && sa_equal(&local, &self->a[1])))
			TH_LOG("accepted on B with local address %s (A %s, B %s)", sa_str(&local),
			       sa_str(&self->a[0]), sa_str(&self->a[1]));
		ASSERT_TRUE(pending(afd, ACCEPT_MS));
		EXPECT_EQ(MSG_LEN, recv(afd, buf, MSG_LEN, MSG_WAITALL));
		EXPECT_EQ(0, memcmp(buf, self->cl[self->n - 1].msg, MSG_LEN));
		close(afd);
	}
	read_group2(_metadata, self->m[0], &g);
	ma = MEMBER2(&g, self->m[0]);
	mb = MEMBER2(&g, self->m[1]);
	EXPECT_EQ((uint64_t)n + 1, ma->rescued_away + ma->m.redirected_away)
		TH_LOG("rescued_away %llu, redirected_away %llu",
		       (unsigned long long)ma->rescued_away,
		       (unsigned long long)ma->m.redirected_away);
	EXPECT_EQ(ma->rescued_away, mb->rescued_in);
	EXPECT_EQ((uint32_t)SOCKGROUP_MEMBER_STALLED, ma->status);
}

/*
 * Ring [A, B], B with backlog 2 (room for 3) and not accepting either: of
 * six clients of A, the rescue moves what B has room for (at least one, at
 * most three) and the rest stay on A, which is STALLED.  Once A accepts
 * one it is SERVING (in the reply from the next sample on); then every client
 * is accepted exactly once, on A or B, with its bytes; the counters say
 * how many moved.
 */
TEST_F(stall, accept_unstalls)
{
	struct sockgroup_member_v2 *ma, *mb;
	uint64_t moved;
	struct group2 g;
	int n = 6, k, on_a = 0, on_b = 0, idx;
	int64_t deadline, t0;

	ASSERT_EQ(0, listen(self->m[1], 2));
	SET_OK(set_group_v2(self->m[0], variant->flags, SOCKGROUP_POLICY_RING, STALL_MS,
			    &self->m[1], 1));
	for (k = 0; k < n; k++) {
		CONNECT_OK(&self->cl[self->n], &self->a[0], self->n);
		self->n++;
	}
	ASSERT_TRUE(wait_rescued(_metadata, self->m[0], 1, &g))
		TH_LOG("A not STALLED and rescued in time");
	/* B is full: the rescue stops there (wait for it to settle). */
	deadline = now_ms() + SETTLE_MS;
	do {
		usleep(20000);
		read_group2(_metadata, self->m[0], &g);
		ma = MEMBER2(&g, self->m[0]);
		mb = MEMBER2(&g, self->m[1]);
	} while (mb->m.accept_queue < 3 && ma->m.accept_queue > 0 && now_ms() < deadline);
	moved = ma->rescued_away;
	EXPECT_EQ(moved, mb->rescued_in);
	EXPECT_LE(1ULL, moved);
	EXPECT_GE(3ULL, moved) TH_LOG("B took more than its backlog allows");
	EXPECT_EQ((uint32_t)moved, mb->m.accept_queue);
	EXPECT_EQ((uint32_t)(n - moved), ma->m.accept_queue);
	ASSERT_LT(0U, ma->m.accept_queue) TH_LOG("nothing left on A to accept");
	ASSERT_EQ((uint32_t)SOCKGROUP_MEMBER_STALLED, ma->status);
	EXPECT_LT(0U, ma->stalled_ms) TH_LOG("stalled for 0 ms after 20 ms of waiting");

	/*
	 * A accepts one: serving at once on the packet path, and in the reply
	 * from the next sample on (every STALL_MS / 4): within STALL_MS.
	 */
	idx = accept_check(_metadata, self->m[0], &self->a[0], self->cl, self->n, NULL);
	ASSERT_LE(0, idx);
	on_a++;
	t0 = now_ms();
	ma = wait_status(_metadata, self->m[0], SOCKGROUP_MEMBER_SERVING, STALL_MS, &g);
	EXPECT_EQ((uint32_t)SOCKGROUP_MEMBER_SERVING, ma->status)
		TH_LOG("A accepted and is still STALLED %lld ms later (stalled_ms %u)",
		       (long long)(now_ms() - t0), ma->stalled_ms);
	EXPECT_EQ(0U, ma->stalled_ms);
	TH_LOG("SERVING in the reply %lld ms after the accept", (long long)(now_ms() - t0));

	/* Everyone else, from wherever they are now. */
	while (on_a + on_b < n) {
		if (pending(self->m[0], 0)) {
			accept_check(_metadata, self->m[0], &self->a[0], self->cl, self->n, NULL);
			on_a++;
		} else if (pending(self->m[1], ACCEPT_MS)) {
			accept_check(_metadata, self->m[1], &self->a[0], self->cl, self->n, NULL);
			on_b++;
		} else {
			break;
		}
	}
	EXPECT_EQ(n, on_a + on_b) TH_LOG("%d on A, %d on B", on_a, on_b);
	read_group2(_metadata, self->m[0], &g);
	ma = MEMBER2(&g, self->m[0]);
	mb = MEMBER2(&g, self->m[1]);
	EXPECT_EQ((uint64_t)on_b, mb->rescued_in) TH_LOG("%d accepted on B", on_b);
	EXPECT_EQ(ma->rescued_away, mb->rescued_in);
	EXPECT_EQ((uint32_t)SOCKGROUP_MEMBER_SERVING, ma->status);
}

/*
 * Probes: ring [A, B], A stalled and its queue rescued (empty).  A client
 * for A once the probe interval (max(stall_ms, 1 s)) has passed is let
 * through to A as a probe; A does not accept it: A is reported STALLED all
 * along (it never accepted) and the client is rescued to B.  The next
 * probe A accepts: it is SERVING again, and a client for it then stays
 * with it (accepted on A, nothing more moved or redirected).
 */
TEST_F_TIMEOUT(stall, probe, 60)
{
	int64_t interval = STALL_MS > 1000 ? STALL_MS : 1000;
	int64_t deadline, stalled_at;
	struct sockgroup_member_v2 *ma;
	struct group2 g;
	uint64_t moved;
	int serving_seen = 0, k, idx;

	if (variant->flags || variant->family != AF_INET)
		SKIP(return, "steer over IPv4 only");
	SET_OK(set_group_v2(self->m[0], 0, SOCKGROUP_POLICY_RING, STALL_MS, &self->m[1], 1));
	CONNECT_OK(&self->cl[self->n], &self->a[0], self->n);
	self->n++;
	ASSERT_TRUE(wait_rescued(_metadata, self->m[0], 1, &g));
	stalled_at = now_ms();
	accept_check(_metadata, self->m[1], &self->a[0], self->cl, self->n, NULL);

	/* A probe that A does not accept. */
	while (now_ms() < stalled_at + interval + 50)
		usleep(10000);
	read_group2(_metadata, self->m[0], &g);
	moved = MEMBER2(&g, self->m[0])->rescued_away;
	CONNECT_OK(&self->cl[self->n], &self->a[0], self->n);
	self->n++;
	deadline = now_ms() + (ACCEPT_MS + 2 * STALL_MS) * (debug_kernel() ? 6 : 1);
	while (!pending(self->m[1], 0) && now_ms() < deadline) {
		read_group2(_metadata, self->m[0], &g);
		ma = MEMBER2(&g, self->m[0]);
		if (ma->status != SOCKGROUP_MEMBER_STALLED)
			serving_seen++;
		usleep(1000);
	}
	idx = accept_check(_metadata, self->m[1], &self->a[0], self->cl, self->n, NULL);
	EXPECT_EQ(self->n - 1, idx);
	read_group2(_metadata, self->m[0], &g);
	ma = MEMBER2(&g, self->m[0]);
	EXPECT_EQ(moved + 1, ma->rescued_away) TH_LOG("the probe was not let through to A");
	EXPECT_EQ(0, serving_seen)
		TH_LOG("A, which never accepted, was reported serving in %d replies while its probe waited",
		       serving_seen);

	/* The next probe: A accepts it, and serves again. */
	stalled_at = now_ms();
	while (now_ms() < stalled_at + interval + 50)
		usleep(10000);
	CONNECT_OK(&self->cl[self->n], &self->a[0], self->n);
	self->n++;
	idx = accept_check(_metadata, self->m[0], &self->a[0], self->cl, self->n, NULL);
	EXPECT_EQ(self->n - 1, idx);
	ma = wait_status(_metadata, self->m[0], SOCKGROUP_MEMBER_SERVING, STALL_MS, &g);
	EXPECT_EQ((uint32_t)SOCKGROUP_MEMBER_SERVING, ma->status)
		TH_LOG("A accepted its probe and is still STALLED");
	moved = ma->rescued_away;
	for (k = 0; k < 3; k++) {
		CONNECT_OK(&self->cl[self->n], &self->a[0], self->n);
		self->n++;
		EXPECT_EQ(self->n - 1, accept_check(_metadata, self->m[0], &self->a[0], self->cl,
						    self->n, NULL));
	}
	read_group2(_metadata, self->m[0], &g);
	ma = MEMBER2(&g, self->m[0]);
	EXPECT_EQ(moved, ma->rescued_away);
	EXPECT_EQ(0ULL, ma->m.redirected_away);
	EXPECT_FALSE(pending(self->m[1], 0));
}

/*
 * Rewrite mode, a translated connection moved: ring [B (backlog 1), A, C],
 * rewrite, stall_ms STALL_MS, none accepting until C does.  Two clients
 * fill B; three more dial B and are translated to A (B's next), where they
 * wait.  A (and B) stall, and their queues move to C: C accepts all five,
 * each with the address its socket had (B's for B's own two, A's for the
 * translated three: the socket moves, not the mapping), the client's bytes
 * intact; C's reply reaches each client (a translated one through the
 * conntrack entry of its 4-tuple, which did not change).
 */
TEST(stall_rewrite_translated)
{
	struct sockaddr_storage aa, ab, local, peer;
	struct sockgroup_member_v2 *mc;
	struct client cl[5];
	struct group2 g;
	int a, b, c, fds[2], n = 5, k;
	char buf[MSG_LEN];

	client_init(cl, 5);
	b = listener(AF_INET, "127.0.0.2", 0, 1, 0);
	a = listener(AF_INET, "127.0.0.1", 0, 16, 0);
	c = listener(AF_INET, "127.0.0.3", 0, 16, 0);
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, local_of(a, &aa));
	ASSERT_EQ(0, local_of(b, &ab));
	fds[0] = a;
	fds[1] = c;
	SET_OK(set_group_v2(b, SOCKGROUP_F_REWRITE, SOCKGROUP_POLICY_RING, STALL_MS, fds, 2));
	for (k = 0; k < 2; k++)
		CONNECT_OK(&cl[k], &ab, k);
	ASSERT_TRUE(wait_acceptq(b, 2));
	for (; k < n; k++)
		CONNECT_OK(&cl[k], &ab, k);
	for (k = 0; k < n; k++) {
		struct client *me;
		socklen_t l = sizeof(peer);
		int afd, i;

		ASSERT_TRUE(pending(c, (STALL_MS + SETTLE_MS) * (debug_kernel() ? 6 : 1)))
			TH_LOG("%d of %d connections moved to C", k, n);
		afd = accept4(c, NULL, NULL, SOCK_CLOEXEC);
		ASSERT_LE(0, afd);
		ASSERT_EQ(0, local_of(afd, &local));
		ASSERT_EQ(0, getpeername(afd, (struct sockaddr *)&peer, &l));
		for (i = 0; i < n; i++)
			if (!cl[i].seen && sa_equal(&peer, &cl[i].local))
				break;
		me = i < n ? &cl[i] : NULL;
		ASSERT_NE(NULL, me) TH_LOG("a connection from %s, none of the clients",
					   sa_str(&peer));
		me->seen = true;
		/* B's own two kept B's address; the others were translated to A. */
		EXPECT_TRUE(sa_equal(&local, i < 2 ? &ab : &aa))
			TH_LOG("client %d: local address %s on C, expected %s", i, sa_str(&local),
			       sa_str(i < 2 ? &ab : &aa));
		ASSERT_TRUE(pending(afd, ACCEPT_MS));
		EXPECT_EQ(MSG_LEN, recv(afd, buf, MSG_LEN, MSG_WAITALL));
		EXPECT_EQ(0, memcmp(buf, me->msg, MSG_LEN)) TH_LOG("client %d: bytes differ", i);
		EXPECT_EQ(6, send(afd, "moved\n", 6, MSG_NOSIGNAL));
		ASSERT_TRUE(pending(me->fd, ACCEPT_MS)) TH_LOG("client %d: no reply from C", i);
		EXPECT_EQ(6, recv(me->fd, buf, sizeof(buf), 0));
		EXPECT_EQ(0, memcmp(buf, "moved\n", 6));
		close(afd);
	}
	read_group2(_metadata, a, &g);
	mc = MEMBER2(&g, c);
	EXPECT_EQ((uint64_t)n, mc->rescued_in);
	EXPECT_EQ(3ULL, MEMBER2(&g, b)->m.redirected_away);
	EXPECT_EQ(0U, MEMBER2(&g, a)->m.accept_queue);
	EXPECT_EQ(0U, MEMBER2(&g, b)->m.accept_queue);
	for (k = 0; k < n; k++)
		close(cl[k].fd);
	close(a);
	close(b);
	close(c);
}

/*
 * Families: ring [A (IPv4, 127.0.0.1), D (IPv6 dual-stack on ::), C (IPv4,
 * 127.0.0.2)], stall_ms STALL_MS, A never accepting.  A's IPv4 children
 * move only to an AF_INET member: all four go to C, none to D although D
 * is next in the ring and has room.
 */
TEST(stall_families)
{
	struct sockaddr_storage aa;
	struct sockgroup_member_v2 *ma, *md, *mc;
	struct client cl[4];
	struct group2 g;
	int a, d, c, fds[2], n = 4;

	client_init(cl, 4);
	a = listener(AF_INET, "127.0.0.1", 0, 16, 0);
	d = listener(AF_INET6, "::", 0, 16, L_DUAL);
	c = listener(AF_INET, "127.0.0.2", 0, 16, 0);
	ASSERT_LE(0, a);
	ASSERT_LE(0, d) TH_LOG("dual-stack listener: %s", strerror(errno));
	ASSERT_LE(0, c);
	ASSERT_EQ(0, local_of(a, &aa));
	fds[0] = d;
	fds[1] = c;
	SET_OK(set_group_v2(a, 0, SOCKGROUP_POLICY_RING, STALL_MS, fds, 2));
	for (int k = 0; k < n; k++)
		CONNECT_OK(&cl[k], &aa, k);
	ASSERT_TRUE(wait_rescued(_metadata, a, n, &g)) TH_LOG("A's clients not rescued");
	for (int k = 0; k < n; k++)
		accept_check(_metadata, c, &aa, cl, n, NULL);
	EXPECT_FALSE(pending(d, 0)) TH_LOG("an IPv4 child moved to the AF_INET6 member");
	read_group2(_metadata, a, &g);
	ma = MEMBER2(&g, a);
	md = MEMBER2(&g, d);
	mc = MEMBER2(&g, c);
	EXPECT_EQ((uint64_t)n, ma->rescued_away);
	EXPECT_EQ((uint64_t)n, mc->rescued_in);
	EXPECT_EQ(0ULL, md->rescued_in);
	EXPECT_EQ(0U, md->m.accept_queue);
	for (int k = 0; k < n; k++)
		close(cl[k].fd);
	close(a);
	close(c);
	close(d);
}

/*
 * The stalled member closes while its queue is being rescued (run by
 * stall.sh; groups.sh leaves it out).  Rounds of: ring [A, B] with
 * stall_ms S, A never accepting; N clients dial A and send their bytes;
 * A is closed at a point around its rescue (as soon as it is seen STALLED,
 * or at S + an offset that grows each round), B with room for all or (every
 * third round) half of them.  The rescue holds A's lock while it moves, so
 * the close comes before or after a batch of moves.  Then every client is in
 * exactly one state: accepted on B once, its bytes intact, or reset by A's
 * close (ECONNRESET, or EOF); none is left connected and unserved, none is
 * accepted twice; B's rescued_in plus its redirected_in is what B
 * accepted.
 */
FIXTURE(stall_close) {
	struct client cl[64];
};

FIXTURE_SETUP(stall_close)
{
	client_init(self->cl, 64);
}

FIXTURE_TEARDOWN(stall_close)
{
	for (int i = 0; i < 64; i++)
		if (self->cl[i].fd >= 0)
			close(self->cl[i].fd);
}

/* After A's close, a client nobody accepted: was it reset (within HANG_MS)? */
static bool client_reset(struct client *c)
{
	char buf[8];
	ssize_t r;

	if (!pending(c->fd, HANG_MS))
		return false;
	r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	return r == 0 || (r < 0 && errno == ECONNRESET);
}

TEST_F_TIMEOUT(stall_close, close_while_rescuing, 300)
{
	bool debug = debug_kernel();
	int rounds = debug ? 4 : 12, n = debug ? 16 : 48;
	uint32_t stall_ms = debug ? 200 : 50;
	int total_b = 0, total_reset = 0;

	for (int r = 0; r < rounds; r++) {
		int family = r % 2 ? AF_INET6 : AF_INET;
		const char *ip = family == AF_INET ? "127.0.0.1" : "::1";
		struct sockaddr_storage aa;
		int a, b, k, on_b = 0, reset = 0, lost = 0;
		struct sockgroup_member_v2 *mb;
		struct group2 g;
		int64_t t0, close_at;

		/* Every third round B has room for half of them only. */
		a = listener(family, ip, 0, 64, 0);
		b = listener(family, ip, 0, r % 3 == 2 ? n / 2 - 1 : 128, 0);
		ASSERT_LE(0, a);
		ASSERT_LE(0, b);
		ASSERT_EQ(0, local_of(a, &aa));
		SET_OK(set_group_v2(a, 0, SOCKGROUP_POLICY_RING, stall_ms, &b, 1));
		t0 = now_ms();
		for (k = 0; k < n; k++)
			CONNECT_OK(&self->cl[k], &aa, r * 100 + k);
		if (r % 3 == 0) {
			/* As soon as A is seen stalled. */
			int64_t deadline = now_ms() + (stall_ms + SETTLE_MS) * (debug ? 6 : 1);
			struct sockgroup_member_v2 *ma;

			do {
				ASSERT_EQ(0, get_group2(a, &g, NULL));
				ma = member2_of(&g, a);
			} while (ma && ma->status != SOCKGROUP_MEMBER_STALLED &&
				 now_ms() < deadline);
			close_at = now_ms();
		} else {
			close_at = t0 + stall_ms - 10 + (r * 7) % 40;
			while (now_ms() < close_at)
				usleep(1000);
		}
		close(a);
		/*
		 * Every connection on B: the moves are done under A's lock, so
		 * by the time close() returns they are all there.
		 */
		while (pending(b, debug ? 2000 : 300)) {
			k = accept_check(_metadata, b, &aa, self->cl, n, NULL);
			ASSERT_LE(0, k);
			on_b++;
		}
		ASSERT_EQ(0, get_group2(b, &g, NULL));
		mb = member2_of(&g, b);
		ASSERT_NE(NULL, mb);
		EXPECT_EQ((uint64_t)on_b, mb->rescued_in + mb->m.redirected_in)
			TH_LOG("round %d: %d accepted on B, rescued_in %llu, redirected_in %llu", r,
			       on_b, (unsigned long long)mb->rescued_in,
			       (unsigned long long)mb->m.redirected_in);
		for (k = 0; k < n; k++) {
			if (self->cl[k].seen)
				continue;
			if (client_reset(&self->cl[k]))
				reset++;
			else
				lost++;
		}
		EXPECT_EQ(0, lost) TH_LOG("round %d: %d clients neither accepted nor reset", r, lost);
		TH_LOG("round %d (%s, close %lld ms after the first connect): %d on B "
		       "(%llu rescued, %llu redirected), %d reset", r,
		       family == AF_INET ? "IPv4" : "IPv6", (long long)(close_at - t0), on_b,
		       (unsigned long long)mb->rescued_in,
		       (unsigned long long)mb->m.redirected_in, reset);
		total_b += on_b;
		total_reset += reset;
		for (k = 0; k < n; k++) {
			close(self->cl[k].fd);
			self->cl[k].fd = -1;
			self->cl[k].seen = false;
		}
		close(b);
	}
	TH_LOG("%d rounds: %d accepted on B, %d reset by the close", rounds, total_b, total_reset);
	EXPECT_LT(0, total_b) TH_LOG("no round moved anything before the close");
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--expect-no-module")) {
		char *args[] = { argv[0], "-t", "no_module", NULL };

		setenv("SOCKGROUP_EXPECT_NO_MODULE", "1", 1);
		return test_harness_run(3, args);
	}
	return test_harness_run(argc, argv);
}
