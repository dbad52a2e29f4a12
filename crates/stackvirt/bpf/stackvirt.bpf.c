// SPDX-License-Identifier: GPL-2.0
/*
 * stackvirt: choose each socket's source address (its pseudonym) at connect
 * and unconnected-send time.
 *
 * cgroup sock_addr programs, one hook per section:
 *
 *   cgroup/connect4, cgroup/connect6   bpf_bind() the socket to its
 *                                      pseudonym's address (port 0: the
 *                                      kernel picks the port at connect)
 *   cgroup/sendmsg4, cgroup/sendmsg6   set the source of an unconnected
 *                                      UDP send
 *
 * They run once per connect() or unconnected sendmsg(), never per packet.
 * The daemon (stackvirtd) owns everything else: it creates each pseudonym
 * (a macvlan with its own MAC, addresses and routing table), announces it in
 * PSEUDONYMS and offers it in FREE; a program takes a free pseudonym for a
 * group it has not seen and remembers the choice in GROUPS.
 *
 * A socket the application bound itself, and a socket of another network
 * namespace than the daemon's, is left alone.  With no free pseudonym the
 * socket keeps the default address (fail-open) or the call fails with
 * EPERM (fail-closed), as CONFIG says.
 *
 * Built with clang -target bpf; no libbpf headers: the few helper
 * declarations are below.  Every layout shared with userspace is mirrored
 * in src/maps.rs.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>

/* The uapi headers alone, without libc: what they leave to it. */
#define NULL ((void *)0)
#define AF_INET 2
#define AF_INET6 10
struct sockaddr;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
				   __u64 flags) = (void *)BPF_FUNC_map_update_elem;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_delete_elem;
static long (*bpf_map_push_elem)(void *map, const void *value, __u64 flags) = (void *)BPF_FUNC_map_push_elem;
static long (*bpf_map_pop_elem)(void *map, void *value) = (void *)BPF_FUNC_map_pop_elem;
static long (*bpf_bind)(struct bpf_sock_addr *ctx, struct sockaddr *addr, int addr_len) = (void *)BPF_FUNC_bind;
static __u64 (*bpf_get_netns_cookie)(void *ctx) = (void *)BPF_FUNC_get_netns_cookie;
static __u64 (*bpf_get_current_cgroup_id)(void) = (void *)BPF_FUNC_get_current_cgroup_id;
static __u64 (*bpf_get_current_uid_gid)(void) = (void *)BPF_FUNC_get_current_uid_gid;

/* Grouping policies: which sockets share a pseudonym. */
enum sv_policy {
	SV_POLICY_CONNECTION = 0,	/* none: a fresh pseudonym per connect or send */
	SV_POLICY_FLOW = 1,		/* the paper's flow keys: (tcp, dst, dport), (udp, dst, sport, dport) */
	SV_POLICY_DESTINATION = 2,	/* the destination address */
	SV_POLICY_APPLICATION = 3,	/* the connecting task's cgroup */
	SV_POLICY_USER = 4,		/* the connecting task's uid */
};

/* Indexes of COUNTERS. The first four are the programs' run counts. */
enum sv_counter {
	SV_RUN_CONNECT4,
	SV_RUN_CONNECT6,
	SV_RUN_SENDMSG4,
	SV_RUN_SENDMSG6,
	SV_APPLIED,		/* source set to a pseudonym's address */
	SV_OTHER_NETNS,		/* socket of another namespace: left alone */
	SV_EXPLICIT_BIND,	/* socket bound by the application: left alone */
	SV_POOL_EMPTY,		/* no free pseudonym */
	SV_DENIED,		/* ... and fail-closed: EPERM */
	SV_NO_ADDRESS,		/* the pseudonym has no address of this family */
	SV_BIND_FAILED,		/* bpf_bind() refused: default address kept */
	SV_COUNTERS,
};

struct sv_config {
	__u64 netns_cookie;	/* the daemon's namespace; others are left alone */
	__u32 policy;		/* enum sv_policy */
	__u32 fail_closed;	/* 1: EPERM when no pseudonym is free */
};

#define SV_HAS_IPV4 1
#define SV_HAS_IPV6 2

struct sv_pseudonym {
	__u32 ipv4;		/* network byte order */
	__u32 ipv6[4];		/* network byte order */
	__u32 flags;		/* SV_HAS_* */
	__u64 uses;		/* connects and sends that took this pseudonym */
};

struct sv_group_key {
	__u32 policy;
	__u32 family;		/* AF_INET or AF_INET6 of the call */
	__u32 protocol;		/* IPPROTO_TCP, IPPROTO_UDP, ... */
	__u16 sport;		/* host order, UDP flow key only */
	__u16 dport;		/* host order */
	__u32 daddr[4];		/* network byte order; IPv4 in daddr[0] */
	__u64 id;		/* cgroup id or uid */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sv_config);
} CONFIG SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SV_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} COUNTERS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct sv_pseudonym);
} PSEUDONYMS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 256);
	__type(value, __u32);
} FREE SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sv_group_key);
	__type(value, __u32);
} GROUPS SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&COUNTERS, &index);

	if (value)
		__sync_fetch_and_add(value, 1);
}

/* The pseudonym that serves KEY's group: the one already chosen, else a
 * free one, recorded for the group.  NULL when none is free.
 */
static __always_inline struct sv_pseudonym *take(struct sv_group_key *key)
{
	struct sv_pseudonym *p;
	__u32 id, *chosen;

	if (key->policy != SV_POLICY_CONNECTION) {
		chosen = bpf_map_lookup_elem(&GROUPS, key);
		if (chosen) {
			p = bpf_map_lookup_elem(&PSEUDONYMS, chosen);
			if (p)
				goto found;
			/* retired by the daemon: the group gets a new one */
			bpf_map_delete_elem(&GROUPS, key);
		}
	}
	if (bpf_map_pop_elem(&FREE, &id))
		return NULL;
	p = bpf_map_lookup_elem(&PSEUDONYMS, &id);
	if (!p)
		return NULL;
	if (key->policy != SV_POLICY_CONNECTION &&
	    bpf_map_update_elem(&GROUPS, key, &id, BPF_NOEXIST)) {
		/* another CPU chose for this group meanwhile: use its choice */
		bpf_map_push_elem(&FREE, &id, 0);
		chosen = bpf_map_lookup_elem(&GROUPS, key);
		if (!chosen)
			return NULL;
		p = bpf_map_lookup_elem(&PSEUDONYMS, chosen);
		if (!p)
			return NULL;
	}
found:
	__sync_fetch_and_add(&p->uses, 1);
	return p;
}

/* Fill KEY for CTX under policy CONFIG->policy; SPORT only for the UDP
 * flow key.  FAMILY is the hook's, a constant: a connect4 or sendmsg4
 * program may not even read user_ip6.
 */
static __always_inline void group_key(struct sv_group_key *key, struct bpf_sock_addr *ctx,
				      const struct sv_config *config, __u32 family, __u16 sport)
{
	__u32 policy = config->policy;

	key->policy = policy;
	if (policy == SV_POLICY_FLOW || policy == SV_POLICY_DESTINATION) {
		key->family = family;
		if (family == AF_INET) {
			key->daddr[0] = ctx->user_ip4;
		} else {
			key->daddr[0] = ctx->user_ip6[0];
			key->daddr[1] = ctx->user_ip6[1];
			key->daddr[2] = ctx->user_ip6[2];
			key->daddr[3] = ctx->user_ip6[3];
		}
	}
	if (policy == SV_POLICY_FLOW) {
		key->protocol = ctx->protocol;
		key->dport = __builtin_bswap16((__u16)ctx->user_port);
		if (ctx->protocol == IPPROTO_UDP)
			key->sport = sport;
	} else if (policy == SV_POLICY_APPLICATION) {
		key->id = bpf_get_current_cgroup_id();
	} else if (policy == SV_POLICY_USER) {
		key->id = (__u32)bpf_get_current_uid_gid();
	}
}

/* Whether the socket is the daemon's business: its namespace's, not bound
 * by the application.  BOUND: whether it has a source address or port.
 */
static __always_inline const struct sv_config *ours(struct bpf_sock_addr *ctx, int bound)
{
	__u32 zero = 0;
	const struct sv_config *config = bpf_map_lookup_elem(&CONFIG, &zero);

	if (!config || config->netns_cookie != bpf_get_netns_cookie(ctx)) {
		count(SV_OTHER_NETNS);
		return NULL;
	}
	if (bound) {
		count(SV_EXPLICIT_BIND);
		return NULL;
	}
	return config;
}

/* The verdict when no pseudonym is free. */
static __always_inline int pool_empty(const struct sv_config *config)
{
	count(SV_POOL_EMPTY);
	if (config->fail_closed) {
		count(SV_DENIED);
		return 0;
	}
	return 1;
}

static __always_inline int ipv6_bound(const struct bpf_sock *sk)
{
	return sk->src_ip6[0] | sk->src_ip6[1] | sk->src_ip6[2] | sk->src_ip6[3] | sk->src_port;
}

/* A dual-stack socket's destination ::ffff:a.b.c.d: it speaks IPv4. */
static __always_inline int is_v4_mapped(const struct bpf_sock_addr *ctx)
{
	return !ctx->user_ip6[0] && !ctx->user_ip6[1] &&
	       ctx->user_ip6[2] == __builtin_bswap32(0xffff);
}

SEC("cgroup/connect4")
int stackvirt_connect4(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	const struct sv_config *config;
	struct sv_group_key key = {};
	struct sockaddr_in sa = {};
	struct sv_pseudonym *p;

	count(SV_RUN_CONNECT4);
	if (!sk)
		return 1;
	config = ours(ctx, sk->src_ip4 || sk->src_port);
	if (!config)
		return 1;
	group_key(&key, ctx, config, AF_INET, 0);
	p = take(&key);
	if (!p)
		return pool_empty(config);
	if (!(p->flags & SV_HAS_IPV4)) {
		count(SV_NO_ADDRESS);
		return 1;
	}
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = p->ipv4;
	if (bpf_bind(ctx, (struct sockaddr *)&sa, sizeof(sa))) {
		count(SV_BIND_FAILED);
		return 1;
	}
	count(SV_APPLIED);
	return 1;
}

SEC("cgroup/connect6")
int stackvirt_connect6(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	const struct sv_config *config;
	struct sv_group_key key = {};
	struct sockaddr_in6 sa = {};
	struct sv_pseudonym *p;
	int mapped;

	count(SV_RUN_CONNECT6);
	if (!sk)
		return 1;
	config = ours(ctx, ipv6_bound(sk));
	if (!config)
		return 1;
	group_key(&key, ctx, config, AF_INET6, 0);
	p = take(&key);
	if (!p)
		return pool_empty(config);
	mapped = is_v4_mapped(ctx);
	sa.sin6_family = AF_INET6;
	if (mapped && (p->flags & SV_HAS_IPV4)) {
		sa.sin6_addr.in6_u.u6_addr32[2] = __builtin_bswap32(0xffff);
		sa.sin6_addr.in6_u.u6_addr32[3] = p->ipv4;
	} else if (!mapped && (p->flags & SV_HAS_IPV6)) {
		sa.sin6_addr.in6_u.u6_addr32[0] = p->ipv6[0];
		sa.sin6_addr.in6_u.u6_addr32[1] = p->ipv6[1];
		sa.sin6_addr.in6_u.u6_addr32[2] = p->ipv6[2];
		sa.sin6_addr.in6_u.u6_addr32[3] = p->ipv6[3];
	} else {
		count(SV_NO_ADDRESS);
		return 1;
	}
	if (bpf_bind(ctx, (struct sockaddr *)&sa, sizeof(sa))) {
		count(SV_BIND_FAILED);
		return 1;
	}
	count(SV_APPLIED);
	return 1;
}

SEC("cgroup/sendmsg4")
int stackvirt_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	const struct sv_config *config;
	struct sv_group_key key = {};
	struct sv_pseudonym *p;

	count(SV_RUN_SENDMSG4);
	if (!sk)
		return 1;
	/* a source port alone is the autobind of an earlier send */
	config = ours(ctx, sk->src_ip4 || ctx->msg_src_ip4);
	if (!config)
		return 1;
	group_key(&key, ctx, config, AF_INET, (__u16)sk->src_port);
	p = take(&key);
	if (!p)
		return pool_empty(config);
	if (!(p->flags & SV_HAS_IPV4)) {
		count(SV_NO_ADDRESS);
		return 1;
	}
	ctx->msg_src_ip4 = p->ipv4;
	count(SV_APPLIED);
	return 1;
}

SEC("cgroup/sendmsg6")
int stackvirt_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	const struct sv_config *config;
	struct sv_group_key key = {};
	struct sv_pseudonym *p;

	count(SV_RUN_SENDMSG6);
	if (!sk)
		return 1;
	config = ours(ctx, sk->src_ip6[0] | sk->src_ip6[1] | sk->src_ip6[2] | sk->src_ip6[3] |
			   ctx->msg_src_ip6[0] | ctx->msg_src_ip6[1] |
			   ctx->msg_src_ip6[2] | ctx->msg_src_ip6[3]);
	if (!config)
		return 1;
	group_key(&key, ctx, config, AF_INET6, (__u16)sk->src_port);
	p = take(&key);
	if (!p)
		return pool_empty(config);
	if (is_v4_mapped(ctx) && (p->flags & SV_HAS_IPV4)) {
		ctx->msg_src_ip6[0] = 0;
		ctx->msg_src_ip6[1] = 0;
		ctx->msg_src_ip6[2] = __builtin_bswap32(0xffff);
		ctx->msg_src_ip6[3] = p->ipv4;
		count(SV_APPLIED);
		return 1;
	}
	if (is_v4_mapped(ctx) || !(p->flags & SV_HAS_IPV6)) {
		count(SV_NO_ADDRESS);
		return 1;
	}
	ctx->msg_src_ip6[0] = p->ipv6[0];
	ctx->msg_src_ip6[1] = p->ipv6[1];
	ctx->msg_src_ip6[2] = p->ipv6[2];
	ctx->msg_src_ip6[3] = p->ipv6[3];
	count(SV_APPLIED);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
