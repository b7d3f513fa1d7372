/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Rust functions that the KUnit suite (sockgroup_kunit.c) calls, and
 * the report they fill in.  bindgen reads this header too, so the Rust side
 * (rust/kunit.rs) uses the very same struct layout.
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

void sg_kunit_listener_probe(struct sg_listener_report *out, int backlog);
int sg_kunit_ring_choose(bool primary, u32 len, u32 addressed, u64 full_mask);

#endif
