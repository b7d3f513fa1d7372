// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite of sockgroup.ko, as a test module of its own (built only for
 * kernels with CONFIG_KUNIT): it runs when sockgroup_kunit.ko is loaded,
 * after sockgroup.ko, and its results are in
 * /sys/kernel/debug/kunit/sockgroup/results.  The cases call the module's
 * Rust code (rust/kunit.rs, exported by helpers.c) and assert on what it
 * reports.
 */
#include <kunit/test.h>
#include <linux/module.h>
#include <net/tcp_states.h>

#include "kunit.h"

static void sg_test_listener_probe(struct kunit *test)
{
	struct sg_listener_report r = { .err = 1 };

	sg_kunit_listener_probe(&r, 7);
	KUNIT_ASSERT_EQ(test, r.err, 0);
	KUNIT_EXPECT_EQ(test, r.state, (u32)TCP_LISTEN);
	KUNIT_EXPECT_EQ(test, r.max_backlog, 7U);
	KUNIT_EXPECT_EQ(test, r.backlog, 0U);
	KUNIT_EXPECT_EQ(test, r.handshakes, 0U);
}

static void sg_test_ring_choice(struct kunit *test)
{
	/* Member 1 of 4 has room: it keeps the connection. */
	KUNIT_EXPECT_EQ(test, sg_kunit_ring_choose(false, 4, 1, 0x0), -1);
	/* Ring: 1 and 2 full, 3 has room. */
	KUNIT_EXPECT_EQ(test, sg_kunit_ring_choose(false, 4, 1, 0x6), 3);
	/* Ring wraps: 2 and 3 full, 0 has room. */
	KUNIT_EXPECT_EQ(test, sg_kunit_ring_choose(false, 4, 2, 0xe), 0);
	/* Primary: 2 full, the first in list order with room is 0. */
	KUNIT_EXPECT_EQ(test, sg_kunit_ring_choose(true, 4, 2, 0x4), 0);
	/* Everybody full. */
	KUNIT_EXPECT_EQ(test, sg_kunit_ring_choose(true, 3, 0, 0x7), -2);
}

static struct kunit_case sg_test_cases[] = {
	KUNIT_CASE(sg_test_listener_probe),
	KUNIT_CASE(sg_test_ring_choice),
	{}
};

static struct kunit_suite sg_test_suite = {
	.name = "sockgroup",
	.test_cases = sg_test_cases,
};

kunit_test_suite(sg_test_suite);

MODULE_DESCRIPTION("KUnit tests of sockgroup");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);
