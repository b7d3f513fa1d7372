/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prototypes of the thin C helpers in helpers.c: each wraps one static
 * inline kernel function (or a bitfield access) that Rust cannot call.
 */
#ifndef SOCKGROUP_HELPERS_H
#define SOCKGROUP_HELPERS_H

#include <linux/types.h>

struct sock;

void sg_sock_hold(struct sock *sk);
void sg_sock_put(struct sock *sk);
u32 sg_sk_ack_backlog(const struct sock *sk);
u32 sg_sk_max_ack_backlog(const struct sock *sk);
u32 sg_reqsk_queue_len(const struct sock *sk);
int sg_sk_state(const struct sock *sk);

#endif
