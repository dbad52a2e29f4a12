/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Multipath TCP data scrambling: per-connection state, and the hooks an
 * out-of-tree module (mptcp_scramble.ko) puts kprobes on.
 *
 * The MPTCP core only carries this state and calls the hooks, which do
 * nothing: the scrambler and its policy live in the module.  Without the
 * module nothing sets @active, which every data path call site tests
 * first, and MPTCP behaves as before.
 */
#ifndef __NET_MPTCP_SCRAMBLE_H
#define __NET_MPTCP_SCRAMBLE_H

#include <linux/types.h>

struct sock;

#define MPTCP_SCRAMBLE_RING_LEN	64

/* One direction of a connection: the last 64 plaintext bytes of the data
 * stream (seeded at establishment), the index of the newest one and the XOR
 * of all 64.  Only the module reads or writes it.
 */
struct mptcp_scramble_dir {
	u8	ring[MPTCP_SCRAMBLE_RING_LEN];
	u8	idx;
	u8	x;
};

struct mptcp_scramble {
	struct mptcp_scramble_dir tx;
	struct mptcp_scramble_dir rx;
	/* Set by the module in mptcp_scramble_hook_established(), cleared by
	 * the core after mptcp_scramble_hook_destroy(): the connection is
	 * scrambled.
	 */
	u8	active;
	/* Set by the core before each call of the tx (rx) hook with data,
	 * cleared by the module once it has handled that data.  Still set
	 * after the call, the module never saw the bytes (its kprobe was
	 * disarmed or skipped): the stream is lost and the core resets the
	 * connection.
	 */
	u8	tx_unhandled;
	u8	rx_unhandled;
	/* Set by the module in mptcp_scramble_hook_fastopen(): the SYN must
	 * not carry data, it could not be scrambled.
	 */
	u8	no_syn_data;
};

/* Events mptcp_scramble_hook_rx() reports instead of data; @data is then NULL */
enum mptcp_scramble_rx_event {
	MPTCP_SCRAMBLE_RX_DATA,		/* @len bytes at @data to descramble */
	MPTCP_SCRAMBLE_RX_COPIED,	/* an skb of @len bytes was copied */
	MPTCP_SCRAMBLE_RX_DROPPED,	/* no memory for that copy: dropped */
};

/* The kprobe ABI.  Each hook does nothing, is never inlined and keeps its
 * arguments live (see net/mptcp/scramble.c), so it always shows in
 * kallsyms, every call is kept and a kprobe on it sees the arguments.
 * All are called with BH disabled and must not sleep.
 */

/* Both MPTCP keys are known: called once per connection, client and server
 * side, under the msk data lock, before any data joins the receive stream.
 */
void mptcp_scramble_hook_established(struct sock *sk,
				     struct mptcp_scramble *scr,
				     u64 local_key, u64 remote_key);

/* The connection's state goes away (close or disconnect).  Called under
 * the msk data lock, only when @scr->active is set.
 */
void mptcp_scramble_hook_destroy(struct sock *sk, struct mptcp_scramble *scr);

/* @len bytes at @data were just copied from the application into the msk
 * send queue and no subflow can see them yet.  Under the msk socket lock.
 * The module clears @scr->tx_unhandled once it has scrambled them.
 */
void mptcp_scramble_hook_tx(struct sock *sk, struct mptcp_scramble *scr,
			    u8 *data, size_t len);

/* @len bytes at @data join the in-order receive stream; the memory belongs
 * to this connection alone, and the module clears @scr->rx_unhandled once
 * it has descrambled them.  Or, with @data NULL, @event reports what it
 * took to make an skb private.  Under the msk data lock.
 */
void mptcp_scramble_hook_rx(struct sock *sk, struct mptcp_scramble *scr,
			    u8 *data, size_t len,
			    enum mptcp_scramble_rx_event event);

/* An application asked for TCP Fast Open; the module may set
 * @scr->no_syn_data.  Under the msk socket lock.
 */
void mptcp_scramble_hook_fastopen(struct sock *sk, struct mptcp_scramble *scr);

#endif /* __NET_MPTCP_SCRAMBLE_H */
