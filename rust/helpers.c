// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C helpers for static inline kernel functions: one line each, no
 * logic.  The logic lives in Rust.
 */
#include <net/inet_connection_sock.h>
#include <net/sock.h>

#include "helpers.h"

void sg_sock_hold(struct sock *sk)
{
	sock_hold(sk);
}

void sg_sock_put(struct sock *sk)
{
	sock_put(sk);
}

u32 sg_sk_ack_backlog(const struct sock *sk)
{
	return READ_ONCE(sk->sk_ack_backlog);
}

u32 sg_sk_max_ack_backlog(const struct sock *sk)
{
	return READ_ONCE(sk->sk_max_ack_backlog);
}

u32 sg_reqsk_queue_len(const struct sock *sk)
{
	return inet_csk_reqsk_queue_len(sk);
}

int sg_sk_state(const struct sock *sk)
{
	return READ_ONCE(sk->sk_state);
}
