/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the KUnit suite (sockgroup_kunit.c, a module of its own) calls in
 * sockgroup.ko, and the report they fill in: sg_kunit_* (helpers.c,
 * exported to the test module) run sg_rs_kunit_* (rust/kunit.rs).  bindgen
 * reads this header too, so the Rust side uses the very same struct layout.
 */
#ifndef SOCKGROUP_KUNIT_H
#define SOCKGROUP_KUNIT_H

#include <linux/types.h>

struct sg_listener_report {
	int err;
	u32 state;
	u32 max_backlog;
	u32 backlog;
	u32 handshakes;
};

/* Two nodes' control channels over loopback, in the initial namespace. */
struct sg_channel_report {
	int err;		/* setting up: 0 or -errno */
	u32 state1, state2;	/* enum sockgroup_peer_state, each side's view of the other */
	u64 heartbeats_rx1, heartbeats_rx2;
	u64 generation1;
	u32 members1;		/* ids up as node 1 sees them */
	u32 wrong_key_state2;	/* node 2's view of 1 after node 2's key for 1 changed */
	u64 wrong_key_rejected2;
	u64 wrong_key_downs2;
};

struct sg_hmac_report {
	int err;
	u8 digest[32];		/* HMAC-SHA256(key, data), one buffer */
	u8 digest_parts[32];	/* the same, data in three parts */
	bool memneq_equal, memneq_differ;
};

/*
 * The SYN decision's microbenchmark (sg_test_syn_decision): one ring group
 * of `members` loopback listeners, all full but the last (in ring order),
 * in a group set of its own, and one listener in no group.  Per mode and
 * case, `iters` decisions timed with ktime in each of `rounds` rounds; the
 * fastest and the median round, and what the last decision chose: the
 * ring index of the member that takes the connection, -1 none (the
 * kernel's own path), -2 every member full, -3 a socket of no member.
 */
enum sg_syn_bench_mode {
	SG_SYN_PACKET,		/* the LOCAL_IN hook's decision for a SYN packet */
	SG_SYN_LISTENER,	/* the same once the packet's listener is known */
	SG_SYN_MODES
};

enum sg_syn_bench_case {
	SG_SYN_KEEP,		/* the last member, which has room */
	SG_SYN_NEXT,		/* the one before it: full, its next member has room */
	SG_SYN_WALK,		/* member 0: the ring walked to the last member */
	SG_SYN_NOT_MEMBER,	/* a listener in no group; the groups exist */
	SG_SYN_NO_GROUP,	/* member 0 in a namespace's state with no group */
	SG_SYN_CASES
};

struct sg_syn_bench_report {
	int err;
	s32 chosen[SG_SYN_MODES][SG_SYN_CASES];
	u64 ns_min[SG_SYN_MODES][SG_SYN_CASES];	/* for `iters` decisions */
	u64 ns_median[SG_SYN_MODES][SG_SYN_CASES];
};

/*
 * A replay of a synthesized HANDOFF_REQ into the initial namespace's TCP
 * (src/cluster/replay.rs): the listener on the test's service address,
 * the client behind sgr0 (kunit.sh sets both up).
 */
enum sg_replay_case {
	SG_REPLAY_OK,		/* the options the host negotiates */
	SG_REPLAY_MISMATCH,	/* the front-end's window scale differs */
	SG_REPLAY_COOKIE,	/* tcp_syncookies 2: every SYN would get a cookie */
};

struct sg_replay_report {
	int err;		/* setting up: 0 or -errno */
	u32 start;		/* 0, or the NACK reason the start gave */
	u32 outcome;		/* 1 adopted, 2 failed, 3 still pending, 4 unknown */
	u32 reason;		/* a failure's NACK reason */
	u32 want_snd_nxt, snd_nxt;	/* the child's, after accept() */
	u32 want_rcv_nxt, rcv_nxt;
	u32 ts_lag;		/* the child's TSval clock now minus fe_tsval_now */
	u32 elapsed_ms;		/* from the start to that reading */
	u8 want_rcv_wscale, snd_wscale, rcv_wscale;
	bool wscale_ok, sack_ok, tstamp_ok, ecn_ok, usec_ts;
	bool child;		/* an established socket for the tuple exists */
	bool accepted;		/* accept() returned a connection */
	bool bytes_equal;	/* it read the request, byte for byte */
	u32 req_len, read_len;
	u64 out_rsts;		/* TCP OutRsts of the namespace, delta */
	u64 dropped, rst_dropped;	/* the replay hook's drops, deltas */
};

void sg_kunit_listener_probe(struct sg_listener_report *out, int backlog);
int sg_kunit_ring_choose(bool primary, u32 len, u32 addressed, u64 full_mask);
void sg_kunit_channel_pair(struct sg_channel_report *out);
void sg_kunit_hmac(struct sg_hmac_report *out, const u8 *key, size_t key_len,
		   const u8 *data, size_t len);
int sg_kunit_rules(void);
void sg_kunit_syn_bench(struct sg_syn_bench_report *out, u32 members, u32 iters,
			u32 rounds);
void sg_kunit_replay(struct sg_replay_report *out, bool v6, u32 which);
int sg_kunit_owner(void);

/* rust/kunit.rs, with CONFIG_KUNIT */
void sg_rs_kunit_listener_probe(struct sg_listener_report *out, int backlog);
int sg_rs_kunit_ring_choose(bool primary, u32 len, u32 addressed, u64 full_mask);
void sg_rs_kunit_channel_pair(struct sg_channel_report *out);
void sg_rs_kunit_hmac(struct sg_hmac_report *out, const u8 *key, size_t key_len,
		      const u8 *data, size_t len);
int sg_rs_kunit_rules(void);
void sg_rs_kunit_syn_bench(struct sg_syn_bench_report *out, u32 members,
			   u32 iters, u32 rounds);

void sg_rs_kunit_replay(struct sg_replay_report *out, bool v6, u32 which);
int sg_rs_kunit_owner(void);

#endif
