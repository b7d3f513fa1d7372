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

void sg_kunit_listener_probe(struct sg_listener_report *out, int backlog);
int sg_kunit_ring_choose(bool primary, u32 len, u32 addressed, u64 full_mask);

/* rust/kunit.rs, with CONFIG_KUNIT */
void sg_rs_kunit_listener_probe(struct sg_listener_report *out, int backlog);
int sg_rs_kunit_ring_choose(bool primary, u32 len, u32 addressed, u64 full_mask);

#endif
