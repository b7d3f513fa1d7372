// SPDX-License-Identifier: GPL-2.0
/*
 * kselftest of the module reference a redirected SO_SERVICE_GROUP call
 * holds (run by modref.sh, as root, with the sockgroup module loaded).
 *
 * The option's buffer (setsockopt's request, getsockopt's reply) lies in a
 * page registered with userfaultfd(2) and not yet populated, so the call's
 * copy to or from user space, made inside the module's function, blocks on the
 * fault.  While it is blocked the module must not go: delete_module(2)
 * fails with EWOULDBLOCK (kernel/module/main.c, try_stop_module(): the
 * reference count is not zero; kmod's rmmod reports "in use") and the
 * module stays listed.  Then the page is filled (UFFDIO_COPY), the call
 * completes with the request's result, and the module unloads; the option
 * answers ENOPROTOOPT afterwards.  Each case loads the module first if it is
 * not loaded ($SOCKGROUP_KO) and leaves it unloaded.
 *
 * QEMU TCG can oops when a function's ftrace site is patched (insmod,
 * rmmod) while another CPU runs that function (README, Limits).  Here no
 * site is patched while the call is blocked: the failed delete_module()
 * stops at the reference count, before the module's exit function (which
 * unregisters the ftrace hooks) could run, and the blocked call passed the
 * patched site of sk_setsockopt()/sk_getsockopt() when it entered.  The successful
 * unload comes after the call has returned and its thread ended; insmod
 * comes before any call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockgroup.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"

#define MOD		"sockgroup"
#define FAULT_MS	10000	/* the call reaches the fault */
#define DONE_MS		10000	/* the call completes once the page is there */

static bool loaded(void)
{
	struct stat st;

	return !stat("/sys/module/" MOD "/refcnt", &st);
}

static int refcnt(void)
{
	FILE *f = fopen("/sys/module/" MOD "/refcnt", "r");
	int n = -1;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

/* Load the module from $SOCKGROUP_KO unless it is loaded: 0 or an errno. */
static int load(void)
{
	const char *ko = getenv("SOCKGROUP_KO");
	int fd, rc;

	if (loaded())
		return 0;
	if (!ko)
		return ENOENT;
	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	rc = syscall(__NR_finit_module, fd, "", 0);
	rc = rc ? errno : 0;
	close(fd);
	return rc;
}

static int unload(void)
{
	return syscall(__NR_delete_module, MOD, O_NONBLOCK) ? errno : 0;
}

static int tcp_listener(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 4))
		return -1;
	return fd;
}

/* The member count of fd's group, 0 if none. */
static uint32_t group_count(int fd)
{
	struct {
		struct sockgroup_info info;
		struct sockgroup_member m[2];
	} r;
	socklen_t l = sizeof(r);

	memset(&r, 0, sizeof(r));
	if (getsockopt(fd, SOL_SOCKET, SO_SERVICE_GROUP, &r, &l))
		return 0;
	return r.info.count;
}

struct call {
	int fd;
	int other;
	bool get;		/* getsockopt, else setsockopt */
	void *page;		/* the userfaultfd-registered page */
	volatile int done;
	int rc, err;
	uint32_t count;		/* getsockopt: the group's member count */
};

static void *caller(void *p)
{
	struct call *c = p;

	if (c->get) {
		/*
		 * The reply buffer is the missing page, the length ordinary:
		 * the kernel reads optlen itself before our function when a
		 * cgroup BPF getsockopt program is enabled, but it writes the
		 * reply only in our function.
		 */
		socklen_t len = sizeof(struct sockgroup_info) +
				2 * sizeof(struct sockgroup_member);

		c->rc = getsockopt(c->fd, SOL_SOCKET, SO_SERVICE_GROUP, c->page, &len);
		c->count = ((struct sockgroup_info *)c->page)->count;
	} else {
		c->rc = setsockopt(c->fd, SOL_SOCKET, SO_SERVICE_GROUP, c->page,
				   sizeof(struct sockgroup_req) + sizeof(int));
	}
	c->err = c->rc ? errno : 0;
	c->done = 1;
	return NULL;
}

/* What the page must hold for the call to succeed. */
static void fill(struct call *c, char *buf)
{
	if (c->get) {
		/* The reply overwrites whatever the page holds. */
		memset(buf, 0, sizeof(struct sockgroup_info));
	} else {
		struct sockgroup_req *r = (struct sockgroup_req *)buf;

		r->version = SOCKGROUP_VERSION;
		r->flags = 0;
		r->policy = SOCKGROUP_POLICY_RING;
		r->count = 1;
		r->fds[0] = c->other;
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void held_call(struct __test_metadata *_metadata, bool get)
{
	long psize = sysconf(_SC_PAGESIZE);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	struct uffdio_copy copy = { 0 };
	struct pollfd pfd = { .events = POLLIN };
	struct uffd_msg msg;
	struct call c = { .get = get };
	char src_req[sizeof(struct sockgroup_req)];
	pthread_t t;
	int64_t deadline;
	char *src;
	int uffd, a, b, err, status;

	err = load();
	ASSERT_EQ(0, err) TH_LOG("loading the module: %s", strerror(err));
	ASSERT_EQ(0, refcnt());
	a = tcp_listener();
	b = tcp_listener();
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	c.fd = a;
	c.other = b;
	if (get) {
		/* A group to read. */
		struct sockgroup_req r = { SOCKGROUP_VERSION, 0, SOCKGROUP_POLICY_RING, 1 };
		char buf[sizeof(r) + sizeof(int)];

		memcpy(buf, &r, sizeof(r));
		memcpy(buf + sizeof(r), &b, sizeof(int));
		ASSERT_EQ(0, setsockopt(a, SOL_SOCKET, SO_SERVICE_GROUP, buf, sizeof(buf)))
			TH_LOG("grouping: %s", strerror(errno));
	}

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		SKIP(goto out_socks, "userfaultfd: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_API, &api)) TH_LOG("UFFDIO_API: %s", strerror(errno));
	c.page = mmap(NULL, psize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, c.page);
	reg.range.start = (unsigned long)c.page;
	reg.range.len = psize;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg))
		TH_LOG("UFFDIO_REGISTER: %s", strerror(errno));

	ASSERT_EQ(0, pthread_create(&t, NULL, caller, &c));
	/* The call faults on the page from inside the module: it is held. */
	pfd.fd = uffd;
	ASSERT_EQ(1, poll(&pfd, 1, FAULT_MS)) TH_LOG("the call did not fault on its buffer");
	ASSERT_EQ((ssize_t)sizeof(msg), read(uffd, &msg, sizeof(msg)));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	ASSERT_EQ((unsigned long)c.page, msg.arg.pagefault.address & ~(psize - 1));
	ASSERT_EQ(0, c.done);

	EXPECT_LE(1, refcnt()) TH_LOG("no module reference during the call");
	err = unload();
	EXPECT_EQ(EWOULDBLOCK, err) TH_LOG("delete_module during the call: %s",
					   err ? strerror(err) : "succeeded");
	EXPECT_TRUE(loaded());
	status = system("rmmod " MOD " 2>/dev/null");
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0)
		TH_LOG("rmmod succeeded during the call");
	EXPECT_TRUE(loaded());
	EXPECT_EQ(0, c.done);

	/* Release the fault: the call completes. */
	src = calloc(1, psize);
	ASSERT_NE(NULL, src);
	fill(&c, src);
	copy.dst = (unsigned long)c.page;
	copy.src = (unsigned long)src;
	copy.len = psize;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_COPY, &copy)) TH_LOG("UFFDIO_COPY: %s", strerror(errno));
	deadline = now_ms() + DONE_MS;
	while (!c.done && now_ms() < deadline)
		usleep(10000);
	ASSERT_EQ(1, c.done) TH_LOG("the call did not complete once its page was there");
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(0, c.err) TH_LOG("the held call failed: %s", strerror(c.err));
	if (get) {
		EXPECT_EQ(2U, c.count) TH_LOG("getsockopt read %u members", c.count);
	} else {
		EXPECT_EQ(2U, group_count(a)) TH_LOG("the group the held call formed");
	}
	free(src);
	close(uffd);
	munmap(c.page, psize);

out_socks:
	close(a);
	close(b);
	/* The call has returned: its reference is gone, the module goes. */
	EXPECT_EQ(0, refcnt());
	err = unload();
	EXPECT_EQ(0, err) TH_LOG("delete_module after the call: %s", strerror(err));
	EXPECT_FALSE(loaded());
	a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, a);
	memset(src_req, 0, sizeof(src_req));
	EXPECT_EQ(-1, setsockopt(a, SOL_SOCKET, SO_SERVICE_GROUP, src_req, sizeof(src_req)));
	EXPECT_EQ(ENOPROTOOPT, errno);
	close(a);
}

/* A fixture only for the timeout: insmod runs the KUnit suite (slow on debug). */
FIXTURE(modref) {
	int unused;
};

FIXTURE_SETUP(modref)
{
}

FIXTURE_TEARDOWN(modref)
{
}

TEST_F_TIMEOUT(modref, setsockopt_holds_module, 120)
{
	held_call(_metadata, false);
}

TEST_F_TIMEOUT(modref, getsockopt_holds_module, 120)
{
	held_call(_metadata, true);
}

TEST_HARNESS_MAIN
