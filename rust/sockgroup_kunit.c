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

/* RFC 4231, test case 2. */
static void sg_test_hmac_sha256(struct kunit *test)
{
	static const u8 key[] = "Jefe";
	static const u8 data[] = "what do ya want for nothing?";
	static const u8 want[32] = {
		0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
		0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
		0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
	};
	struct sg_hmac_report r = { .err = 1 };

	sg_kunit_hmac(&r, key, sizeof(key) - 1, data, sizeof(data) - 1);
	KUNIT_ASSERT_EQ(test, r.err, 0);
	KUNIT_EXPECT_MEMEQ(test, r.digest, want, sizeof(want));
	KUNIT_EXPECT_MEMEQ(test, r.digest_parts, want, sizeof(want));
	KUNIT_EXPECT_FALSE(test, r.memneq_equal);
	KUNIT_EXPECT_TRUE(test, r.memneq_differ);
}

/*
 * Nodes 1 (127.0.0.1) and 2 (127.0.0.2) in the initial namespace: the
 * channel comes up on both sides and heartbeats flow; then node 2 changes
 * its key for node 1: the channel restarts, node 1's HELLO fails node 2's
 * tag check (rejected), and it never comes up.
 */
static void sg_test_channel_pair(struct kunit *test)
{
	struct sg_channel_report r = { .err = 1 };

	sg_kunit_channel_pair(&r);
	KUNIT_ASSERT_EQ(test, r.err, 0);
	KUNIT_EXPECT_EQ(test, r.state1, 2U);
	KUNIT_EXPECT_EQ(test, r.state2, 2U);
	KUNIT_EXPECT_GT(test, r.heartbeats_rx1, 0ULL);
	KUNIT_EXPECT_GT(test, r.heartbeats_rx2, 0ULL);
	KUNIT_EXPECT_EQ(test, r.members1, 2U);
	KUNIT_EXPECT_GT(test, r.generation1, 1ULL);
	KUNIT_EXPECT_NE(test, r.wrong_key_state2, 2U);
	KUNIT_EXPECT_GT(test, r.wrong_key_rejected2, 0ULL);
}

/*
 * A service's rules compiled for the packet path (src/cluster/rules.rs):
 * requests decided by the first match by prio, then id, or the default;
 * hash and peer targets with peers up and down; the counters; a rule
 * added or removed recompiles its own service's rules only, the counters
 * kept (0: every check of sg_rs_kunit_rules held, else the first that
 * failed).
 */
static void sg_test_rules(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, sg_kunit_rules(), 0);
}

/*
 * The dispatchers' scores (src/dispatch/owner.rs) with the kernel's
 * __crc32c_le: CRC32C's check value, the scores of one connection and its
 * owner and backup as the host tests computed them (0: all held, else the
 * number of the first check that failed).
 */
static void sg_test_owner(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, sg_kunit_owner(), 0);
}

/*
 * The SYN decision's microbenchmark: the module's steer decision, for a SYN
 * packet (the LOCAL_IN hook's: the namespace's groups, the packet's TCP
 * header and listener lookup, the listener's group, the ring choice, and
 * for a redirect the established lookup; NetGroups::steer_packet) and from
 * its listener on (NetGroups::steer_choice), on ring groups of 2, 8 and 64
 * real loopback listeners, all full but the last, and on a listener in no
 * group and a namespace's state without groups.  It reports the time per
 * decision (kunit_info lines, which `make bench` reads from the results
 * file) and asserts only what the decisions chose, never a time.
 * `make check` runs few decisions; `make bench` loads the module with
 * syn_bench_iters=100000.
 */
static unsigned int syn_bench_iters = 1000;
module_param(syn_bench_iters, uint, 0444);
MODULE_PARM_DESC(syn_bench_iters, "decisions per case and round of sg_test_syn_decision");
static unsigned int syn_bench_rounds = 3;
module_param(syn_bench_rounds, uint, 0444);
MODULE_PARM_DESC(syn_bench_rounds, "rounds of sg_test_syn_decision (at most 64)");

static void sg_test_syn_decision(struct kunit *test)
{
	static const u32 sizes[] = { 2, 8, 64 };
	static const char *const modes[SG_SYN_MODES] = {
		[SG_SYN_PACKET] = "packet",
		[SG_SYN_LISTENER] = "listener",
	};
	static const char *const names[SG_SYN_CASES] = {
		[SG_SYN_KEEP] = "keep",
		[SG_SYN_NEXT] = "next",
		[SG_SYN_WALK] = "walk",
		[SG_SYN_NOT_MEMBER] = "not_member",
		[SG_SYN_NO_GROUP] = "no_group",
	};
	u32 iters = max(syn_bench_iters, 1U);
	u32 rounds = clamp(syn_bench_rounds, 1U, 64U);
	struct sg_syn_bench_report *r;
	int i, m, c;

	r = kunit_kzalloc(test, sizeof(*r), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, r);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		s32 last = sizes[i] - 1;

		memset(r, 0, sizeof(*r));
		r->err = 1;
		sg_kunit_syn_bench(r, sizes[i], iters, rounds);
		KUNIT_ASSERT_EQ_MSG(test, r->err, 0, "members=%u", sizes[i]);
		for (m = 0; m < SG_SYN_MODES; m++) {
			for (c = 0; c < SG_SYN_CASES; c++)
				kunit_info(test,
					   "syn_decision members=%u from=%s case=%s iters=%u rounds=%u chosen=%d ns_min=%llu ns_median=%llu\n",
					   sizes[i], modes[m], names[c], iters, rounds,
					   r->chosen[m][c], r->ns_min[m][c],
					   r->ns_median[m][c]);
			/* The last member has room: it keeps its connection. */
			KUNIT_EXPECT_EQ(test, r->chosen[m][SG_SYN_KEEP], -1);
			/* Every other member is full: the last takes theirs. */
			KUNIT_EXPECT_EQ(test, r->chosen[m][SG_SYN_NEXT], last);
			KUNIT_EXPECT_EQ(test, r->chosen[m][SG_SYN_WALK], last);
			/* No group of its own, or none at all: the kernel's path. */
			KUNIT_EXPECT_EQ(test, r->chosen[m][SG_SYN_NOT_MEMBER], -1);
			KUNIT_EXPECT_EQ(test, r->chosen[m][SG_SYN_NO_GROUP], -1);
		}
	}
}

/*
 * The back-end's replay (src/cluster/replay.rs) of a handed-off connection
 * from 192.0.2.2 (2001:db8:1::2) behind sgr0 to the service address
 * 198.51.100.1 (2001:db8:2::1) on lo, which kunit.sh sets up: accept()
 * returns a connection whose request was received, whose sequence numbers
 * and TSval clock continue the front-end's, with the options it
 * negotiated; TCP sent no RST.  A front-end window scale the host would not
 * choose fails the replay with no connection (TCP's RSTs for the replayed
 * ACKs dropped by the hook, never sent), and a host answering every SYN
 * with a cookie refuses it before anything is injected.
 */
static void sg_replay_case(struct kunit *test, bool v6, u32 which)
{
	struct sg_replay_report r = { .err = 1 };

	sg_kunit_replay(&r, v6, which);
	if (r.err == -ENETUNREACH)
		kunit_skip(test, "no route to the test client (kunit.sh sets up sgr0)");
	KUNIT_ASSERT_EQ(test, r.err, 0);
	kunit_info(test, "start %u outcome %u reason %u snd_nxt %u/%u rcv_nxt %u/%u ts_lag %u in %u ms wscale %u/%u rcv %u (want %u) read %u of %u rsts %llu dropped %llu (rst %llu)\n",
		   r.start, r.outcome, r.reason, r.snd_nxt, r.want_snd_nxt, r.rcv_nxt,
		   r.want_rcv_nxt, r.ts_lag, r.elapsed_ms, r.wscale_ok, r.snd_wscale,
		   r.rcv_wscale, r.want_rcv_wscale, r.read_len, r.req_len, r.out_rsts,
		   r.dropped, r.rst_dropped);
	if (which == SG_REPLAY_COOKIE) {
		KUNIT_EXPECT_EQ(test, r.start, 2U);	/* NO_RESOURCES */
		KUNIT_EXPECT_FALSE(test, r.child);
		KUNIT_EXPECT_FALSE(test, r.accepted);
		KUNIT_EXPECT_EQ(test, r.dropped, 0ULL);
		KUNIT_EXPECT_EQ(test, r.out_rsts, 0ULL);
		return;
	}
	KUNIT_ASSERT_EQ(test, r.start, 0U);
	if (which == SG_REPLAY_MISMATCH) {
		KUNIT_EXPECT_EQ(test, r.outcome, 2U);
		KUNIT_EXPECT_EQ(test, r.reason, 3U);	/* REFUSED */
		KUNIT_EXPECT_FALSE(test, r.child);
		KUNIT_EXPECT_FALSE(test, r.accepted);
		/* The SYN-ACK, and every RST TCP sent meanwhile, dropped. */
		KUNIT_EXPECT_GE(test, r.dropped, 1ULL);
		KUNIT_EXPECT_EQ(test, r.out_rsts, r.rst_dropped);
		return;
	}
	KUNIT_EXPECT_EQ(test, r.outcome, 1U);
	KUNIT_EXPECT_TRUE(test, r.child);
	KUNIT_EXPECT_TRUE(test, r.accepted);
	KUNIT_EXPECT_EQ(test, r.read_len, r.req_len);
	KUNIT_EXPECT_TRUE(test, r.bytes_equal);
	KUNIT_EXPECT_EQ(test, r.snd_nxt, r.want_snd_nxt);
	KUNIT_EXPECT_EQ(test, r.rcv_nxt, r.want_rcv_nxt);
	/* The TSval clock continues the front-end's: fe_tsval_now at the
	 * SYN-ACK, which came after the start.
	 */
	KUNIT_EXPECT_LE(test, r.ts_lag, r.elapsed_ms + 1);
	KUNIT_EXPECT_FALSE(test, r.usec_ts);
	KUNIT_EXPECT_TRUE(test, r.wscale_ok);
	KUNIT_EXPECT_EQ(test, r.snd_wscale, 7);
	KUNIT_EXPECT_EQ(test, r.rcv_wscale, r.want_rcv_wscale);
	KUNIT_EXPECT_TRUE(test, r.sack_ok);
	KUNIT_EXPECT_TRUE(test, r.tstamp_ok);
	KUNIT_EXPECT_TRUE(test, r.ecn_ok);
	/* Only the SYN-ACK was dropped; TCP sent no RST at all. */
	KUNIT_EXPECT_EQ(test, r.dropped, 1ULL);
	KUNIT_EXPECT_EQ(test, r.rst_dropped, 0ULL);
	KUNIT_EXPECT_EQ(test, r.out_rsts, 0ULL);
}

static void sg_test_replay_v4(struct kunit *test)
{
	sg_replay_case(test, false, SG_REPLAY_OK);
}

static void sg_test_replay_v6(struct kunit *test)
{
	sg_replay_case(test, true, SG_REPLAY_OK);
}

static void sg_test_replay_mismatch_v4(struct kunit *test)
{
	sg_replay_case(test, false, SG_REPLAY_MISMATCH);
}

static void sg_test_replay_mismatch_v6(struct kunit *test)
{
	sg_replay_case(test, true, SG_REPLAY_MISMATCH);
}

static void sg_test_replay_cookie(struct kunit *test)
{
	sg_replay_case(test, false, SG_REPLAY_COOKIE);
}

static struct kunit_case sg_test_cases[] = {
	KUNIT_CASE(sg_test_listener_probe),
	KUNIT_CASE(sg_test_ring_choice),
	KUNIT_CASE(sg_test_hmac_sha256),
	KUNIT_CASE(sg_test_rules),
	KUNIT_CASE(sg_test_owner),
	KUNIT_CASE_SLOW(sg_test_syn_decision),
	KUNIT_CASE(sg_test_replay_v4),
	KUNIT_CASE(sg_test_replay_v6),
	KUNIT_CASE(sg_test_replay_mismatch_v4),
	KUNIT_CASE(sg_test_replay_mismatch_v6),
	KUNIT_CASE(sg_test_replay_cookie),
	KUNIT_CASE_SLOW(sg_test_channel_pair),
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
