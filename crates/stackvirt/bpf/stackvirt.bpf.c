// SPDX-License-Identifier: GPL-2.0
/*
 * stackvirt: choose each socket's source address (its pseudonym) at connect
 * and unconnected-send time.
 *
 * cgroup sock_addr programs, one hook per section:
 *
 *   cgroup/connect4, cgroup/connect6   bpf_bind() the socket to its
 *                                      pseudonym's address (port 0: the
 *                                      kernel picks the port at connect);
 *                                      TCP, UDP and ping sockets
 *   cgroup/sendmsg4, cgroup/sendmsg6   set the source of an unconnected
 *                                      UDP send
 *   cgroup/sock_create                 tie a new ICMP socket (ping or raw)
 *                                      to its pseudonym's device
 *                                      (bound_dev_if): no later hook sees
 *                                      an unconnected echo
 *   cgroup/sock_release                give that device's pseudonym back
 *                                      its socket count
 *
 * They run once per socket, connect() or unconnected sendmsg(), never per
 * packet.
 *
 * One more program is no part of choosing addresses: the egress guard
 * (classifier, attached as tcx egress on the uplink, which every
 * pseudonym's frames leave through) compares each outgoing frame's
 * Ethernet source with its IPv4, IPv6 or ARP sender address, and drops
 * and counts a frame where a pseudonym's address goes with another MAC, or
 * a pseudonym's MAC with another address.  It runs per frame, as any
 * filter does; it only reads two hash maps.
 * The daemon (stackvirtd) owns everything else: it creates each pseudonym
 * (a macvlan with its own MAC, addresses and routing table), announces it in
 * PSEUDONYMS and offers it in FREE; a program takes a free pseudonym for a
 * group it has not seen and remembers the choice in GROUPS.
 *
 * A socket the application bound itself (to an address, or to a device
 * other than the one sock_create gave it), and a socket of another network
 * namespace than the daemon's, is left alone; one bound to the wildcard
 * address (with a port) is tied to its pseudonym's device instead.  With no free pseudonym the
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
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define SOL_SOCKET 1
#define SO_BINDTOIFINDEX 62
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
static __u64 (*bpf_get_socket_cookie)(void *ctx) = (void *)BPF_FUNC_get_socket_cookie;
static long (*bpf_setsockopt)(void *ctx, int level, int optname, void *optval,
			      int optlen) = (void *)BPF_FUNC_setsockopt;
static __u64 (*bpf_get_current_cgroup_id)(void) = (void *)BPF_FUNC_get_current_cgroup_id;
static __u64 (*bpf_get_current_uid_gid)(void) = (void *)BPF_FUNC_get_current_uid_gid;

/* Grouping policies: which sockets share a pseudonym. */
enum sv_policy {
	SV_POLICY_CONNECTION = 0,	/* none: a fresh pseudonym per connect or send */
	SV_POLICY_FLOW = 1,		/* the paper's flow keys: (tcp, dst, dport), (udp, dst, sport, dport),
					 * (icmp, dst) for ping sockets that connect(),
					 * (icmp, socket) for other ICMP sockets */
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
	SV_EGRESS_FORGED,	/* egress guard: frame dropped, MAC and address of different pseudonyms */
	SV_RUN_SOCK_CREATE,
	SV_RUN_SOCK_RELEASE,
	SV_DEVICE_BOUND,	/* ICMP socket tied to its pseudonym's device at creation */
	SV_HELD_FULL,		/* ... not: HELD is full, default address kept */
	SV_DNS_TAGGED,		/* a query to the stub resolver, tagged with its pseudonym */
	SV_DNS_UNTAGGED,	/* ... not: the pseudonym's id does not fit the tag */
	SV_DEVICE_TIED,		/* bound to the wildcard address: tied to its pseudonym's device */
	SV_COUNTERS,
};

struct sv_config {
	__u64 netns_cookie;	/* the daemon's namespace; others are left alone */
	__u32 policy;		/* enum sv_policy */
	__u32 fail_closed;	/* 1: EPERM when no pseudonym is free */
	__u32 dns_stub_ip4;	/* the daemon's stub resolver, network byte order; 0: none */
	__u32 dns_stub_port;	/* its port, network byte order in the low 16 bits, as user_port */
	__u32 dns_tag_net;	/* the loopback /16 a query's source names its pseudonym in (nbo) */
	__u32 ip_only;		/* 1: pseudonyms are addresses on the uplink, no device of their own */
};

/* The largest pseudonym id the low 16 bits of a tag hold. */
#define SV_DNS_TAG_MAX 0xffff

#define SV_HAS_IPV4 1
#define SV_HAS_IPV6 2

struct sv_pseudonym {
	__u32 ipv4;		/* network byte order */
	__u32 ipv6[4];		/* network byte order */
	__u32 flags;		/* SV_HAS_* */
	__u32 ifindex;		/* its device (a macvlan on the uplink) */
	__u32 sockets;		/* open ICMP sockets tied to the device (HELD) */
	__u64 uses;		/* sockets, connects and sends that took this pseudonym */
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

/* ICMP sockets tied to a pseudonym's device: socket cookie to pseudonym
 * id.  The daemon never retires a pseudonym whose count of them is not 0.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} HELD SEC(".maps");

/* An address of a pseudonym, for the egress guard. */
struct sv_addr {
	__u32 family;		/* AF_INET or AF_INET6 */
	__u32 addr[4];		/* network byte order; IPv4 in addr[0] */
};

/* A MAC address, padded to 8 bytes. */
struct sv_mac {
	__u8 mac[6];
	__u8 pad[2];
};

/* Every pseudonym address with its pseudonym's MAC. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct sv_addr);
	__type(value, struct sv_mac);
} OWNERS SEC(".maps");

/* Every pseudonym's MAC (the value is unused). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct sv_mac);
	__type(value, __u32);
} MACS SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&COUNTERS, &index);

	if (value)
		__sync_fetch_and_add(value, 1);
}

/* The pseudonym that serves KEY's group: the one already chosen, else a
 * free one, recorded for the group; its id in *ID.  NULL when none is free.
 */
static __always_inline struct sv_pseudonym *take(struct sv_group_key *key, __u32 *id)
{
	struct sv_pseudonym *p;
	__u32 *chosen;

	if (key->policy != SV_POLICY_CONNECTION) {
		chosen = bpf_map_lookup_elem(&GROUPS, key);
		if (chosen) {
			*id = *chosen;
			p = bpf_map_lookup_elem(&PSEUDONYMS, id);
			if (p)
				goto found;
			/* retired by the daemon: the group gets a new one */
			bpf_map_delete_elem(&GROUPS, key);
		}
	}
	if (bpf_map_pop_elem(&FREE, id))
		return NULL;
	p = bpf_map_lookup_elem(&PSEUDONYMS, id);
	if (!p)
		return NULL;
	if (key->policy != SV_POLICY_CONNECTION &&
	    bpf_map_update_elem(&GROUPS, key, id, BPF_NOEXIST)) {
		/* another CPU chose for this group meanwhile: use its choice */
		bpf_map_push_elem(&FREE, id, 0);
		chosen = bpf_map_lookup_elem(&GROUPS, key);
		if (!chosen)
			return NULL;
		*id = *chosen;
		p = bpf_map_lookup_elem(&PSEUDONYMS, id);
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
		/* ICMP (ping sockets): the paper's (icmp, dst), no port */
		if (ctx->protocol != IPPROTO_ICMP && ctx->protocol != IPPROTO_ICMPV6)
			key->dport = __builtin_bswap16((__u16)ctx->user_port);
		if (ctx->protocol == IPPROTO_UDP)
			key->sport = sport;
	} else if (policy == SV_POLICY_APPLICATION) {
		key->id = bpf_get_current_cgroup_id();
	} else if (policy == SV_POLICY_USER) {
		key->id = (__u32)bpf_get_current_uid_gid();
	}
}

/* The port that marks an application's DNS group (below). */
#define SV_DNS_GROUP_PORT 53

/* Whether an IPv4 connect or send of CTX goes to the daemon's stub
 * resolver.  Its queries are the application's, not a flow of their own:
 * under the application and user policies they take the group's
 * pseudonym; under the others, the application's queries share a
 * pseudonym of their own, apart from its flows (KEY is made so: a
 * pseudonym per query would drain the pool).
 */
static __always_inline int to_dns_stub(struct bpf_sock_addr *ctx, const struct sv_config *config,
				       struct sv_group_key *key)
{
	if (!config->dns_stub_ip4 || ctx->user_ip4 != config->dns_stub_ip4 ||
	    ctx->user_port != config->dns_stub_port)
		return 0;
	if (config->policy != SV_POLICY_APPLICATION && config->policy != SV_POLICY_USER) {
		__builtin_memset(key, 0, sizeof(*key));
		key->policy = SV_POLICY_APPLICATION;
		key->id = bpf_get_current_cgroup_id();
		key->dport = SV_DNS_GROUP_PORT;
	}
	return 1;
}

/* The loopback source that names pseudonym ID to the stub resolver:
 * dns_tag_net's /16 with ID in the low 16 bits; 0 when ID does not fit.
 * Every 127.0.0.0/8 address is the host's (the local route of lo), so the
 * socket may take it, and the query never leaves the host.
 */
static __always_inline __u32 dns_tag(const struct sv_config *config, __u32 id)
{
	if (id > SV_DNS_TAG_MAX) {
		count(SV_DNS_UNTAGGED);
		return 0;
	}
	count(SV_DNS_TAGGED);
	return config->dns_tag_net | __builtin_bswap32(id);
}

/* Whether the socket is the daemon's business: its namespace's, not bound
 * by the application.  BOUND: whether it has a source address or port, or
 * a device the application chose.  CTX: a bpf_sock_addr or bpf_sock.
 */
static __always_inline const struct sv_config *ours(void *ctx, int bound)
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

/* A dual-stack socket's destination ::ffff:a.b.c.d: it speaks IPv4. */
static __always_inline int is_v4_mapped(const struct bpf_sock_addr *ctx)
{
	return !ctx->user_ip6[0] && !ctx->user_ip6[1] &&
	       ctx->user_ip6[2] == __builtin_bswap32(0xffff);
}

/* Whether SK is an ICMP socket: a ping socket (SOCK_DGRAM) or a raw one,
 * of its family's ICMP.
 */
static __always_inline int is_icmp(const struct bpf_sock *sk)
{
	if (sk->type != SOCK_DGRAM && sk->type != SOCK_RAW)
		return 0;
	return (sk->family == AF_INET && sk->protocol == IPPROTO_ICMP) ||
	       (sk->family == AF_INET6 && sk->protocol == IPPROTO_ICMPV6);
}

/* The HELD entry of the socket of CTX (a bpf_sock_addr), NULL when
 * sock_create did not tie it to a pseudonym's device.
 */
static __always_inline __u32 *held_by(struct bpf_sock_addr *ctx, const struct bpf_sock *sk)
{
	__u64 cookie;

	if (!sk->bound_dev_if)
		return NULL;
	cookie = bpf_get_socket_cookie(ctx);
	return bpf_map_lookup_elem(&HELD, &cookie);
}

/* Whether the application tied SK to a device itself: any device but the
 * one of the pseudonym HELD names.
 */
static __always_inline int device_chosen(const struct bpf_sock *sk, const __u32 *held)
{
	struct sv_pseudonym *p;

	if (!sk->bound_dev_if)
		return 0;
	if (!held)
		return 1;
	p = bpf_map_lookup_elem(&PSEUDONYMS, held);
	return !p || p->ifindex != sk->bound_dev_if;
}

/* A socket tied at creation to the device of pseudonym *HELD now connects
 * from pseudonym ID (P): move it to P's device, and its count with it.
 * 0, or -1 when the kernel refused the move (the socket keeps its device).
 */
static __always_inline int follow(struct bpf_sock_addr *ctx, __u32 *held, __u32 id,
				  struct sv_pseudonym *p)
{
	struct sv_pseudonym *old;
	int ifindex = p->ifindex;

	if (!held || *held == id)
		return 0;
	if (bpf_setsockopt(ctx, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, sizeof(ifindex)))
		return -1;
	old = bpf_map_lookup_elem(&PSEUDONYMS, held);
	if (old)
		__sync_fetch_and_add(&old->sockets, -1);
	__sync_fetch_and_add(&p->sockets, 1);
	*held = id;
	return 0;
}

/* Whether a socket bound to the wildcard address may be tied to a
 * pseudonym's device to reach DADDR (network byte order): not for
 * destinations a device would cut off, which only the local table or
 * another device reach: loopback (the stub resolver too), link-local,
 * multicast and broadcast.
 */
static __always_inline int tieable4(__u32 daddr)
{
	__u32 a = __builtin_bswap32(daddr);

	return a && (a >> 24) != 127 && (a >> 16) != 0xa9fe && a < 0xe0000000;
}

/* The same for an IPv6 destination (v4-mapped ones as IPv4): not ::1 or
 * ::, not link-local (fe80::/10), not multicast (ff00::/8).
 */
static __always_inline int tieable6(const struct bpf_sock_addr *ctx)
{
	__u32 w0 = __builtin_bswap32(ctx->user_ip6[0]);

	if (is_v4_mapped(ctx))
		return tieable4(ctx->user_ip6[3]);
	if (!w0 && !ctx->user_ip6[1] && !ctx->user_ip6[2])
		return 0;
	return (w0 & 0xffc00000) != 0xfe800000 && (w0 >> 24) != 0xff;
}

/* A socket bound to the wildcard address with a port (bind(0.0.0.0:0)
 * before connect(), as dig and libuv-based programs do) has no source to
 * bind any more, but it can still be tied to pseudonym P's device: the
 * `oif` rule of P's table then routes it, and the table's routes give it
 * P's address as its source.  0, or -1 when the kernel refused (the
 * socket keeps the default address).  Only where the device's table is
 * the way (tieable4(), tieable6()), and never in the IP-only mode (no
 * device of its own).
 */
static __always_inline int tie(struct bpf_sock_addr *ctx, struct sv_pseudonym *p)
{
	int ifindex = p->ifindex;

	if (bpf_setsockopt(ctx, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, sizeof(ifindex)))
		return -1;
	count(SV_DEVICE_TIED);
	return 0;
}

SEC("cgroup/connect4")
int stackvirt_connect4(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	const struct sv_config *config;
	struct sv_group_key key = {};
	struct sockaddr_in sa = {};
	struct sv_pseudonym *p;
	__u32 id, *held;
	int dns, wildcard;

	count(SV_RUN_CONNECT4);
	if (!sk)
		return 1;
	held = held_by(ctx, sk);
	/* bound to the wildcard address with a port: see tie() */
	wildcard = !sk->src_ip4 && sk->src_port;
	config = ours(ctx, sk->src_ip4 || device_chosen(sk, held) ||
			   (wildcard && (held || !tieable4(ctx->user_ip4))));
	if (!config)
		return 1;
	if (wildcard && config->ip_only) {
		count(SV_EXPLICIT_BIND);
		return 1;
	}
	group_key(&key, ctx, config, AF_INET, 0);
	dns = to_dns_stub(ctx, config, &key);
	p = take(&key, &id);
	if (!p)
		return pool_empty(config);
	if (wildcard) {
		if (!(p->flags & SV_HAS_IPV4) || tie(ctx, p)) {
			count(SV_BIND_FAILED);
			return 1;
		}
		count(SV_APPLIED);
		return 1;
	}
	if (dns) {
		/* no tag for this id: as if no pseudonym were free */
		sa.sin_addr.s_addr = dns_tag(config, id);
		if (!sa.sin_addr.s_addr)
			return pool_empty(config);
	} else {
		if (!(p->flags & SV_HAS_IPV4)) {
			count(SV_NO_ADDRESS);
			return 1;
		}
		if (follow(ctx, held, id, p)) {
			count(SV_BIND_FAILED);
			return 1;
		}
		sa.sin_addr.s_addr = p->ipv4;
	}
	sa.sin_family = AF_INET;
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
	__u32 id, *held, bound;
	int mapped, wildcard;

	count(SV_RUN_CONNECT6);
	if (!sk)
		return 1;
	held = held_by(ctx, sk);
	bound = sk->src_ip6[0] | sk->src_ip6[1] | sk->src_ip6[2] | sk->src_ip6[3];
	/* bound to the wildcard address with a port: see tie() */
	wildcard = !bound && sk->src_port;
	config = ours(ctx, bound || device_chosen(sk, held) ||
			   (wildcard && (held || !tieable6(ctx))));
	if (!config)
		return 1;
	if (wildcard && config->ip_only) {
		count(SV_EXPLICIT_BIND);
		return 1;
	}
	group_key(&key, ctx, config, AF_INET6, 0);
	p = take(&key, &id);
	if (!p)
		return pool_empty(config);
	mapped = is_v4_mapped(ctx);
	if (wildcard) {
		if (!(p->flags & (mapped ? SV_HAS_IPV4 : SV_HAS_IPV6)) || tie(ctx, p)) {
			count(SV_BIND_FAILED);
			return 1;
		}
		count(SV_APPLIED);
		return 1;
	}
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
	if (follow(ctx, held, id, p)) {
		count(SV_BIND_FAILED);
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
	__u32 id, src;
	int dns;

	count(SV_RUN_SENDMSG4);
	if (!sk)
		return 1;
	/* a source port alone is the autobind of an earlier send */
	config = ours(ctx, sk->src_ip4 || ctx->msg_src_ip4 || sk->bound_dev_if);
	if (!config)
		return 1;
	group_key(&key, ctx, config, AF_INET, (__u16)sk->src_port);
	dns = to_dns_stub(ctx, config, &key);
	p = take(&key, &id);
	if (!p)
		return pool_empty(config);
	if (dns) {
		src = dns_tag(config, id);
		if (!src)
			return pool_empty(config);
	} else {
		if (!(p->flags & SV_HAS_IPV4)) {
			count(SV_NO_ADDRESS);
			return 1;
		}
		src = p->ipv4;
	}
	ctx->msg_src_ip4 = src;
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
	__u32 id;

	count(SV_RUN_SENDMSG6);
	if (!sk)
		return 1;
	config = ours(ctx, sk->src_ip6[0] | sk->src_ip6[1] | sk->src_ip6[2] | sk->src_ip6[3] |
			   ctx->msg_src_ip6[0] | ctx->msg_src_ip6[1] |
			   ctx->msg_src_ip6[2] | ctx->msg_src_ip6[3] | sk->bound_dev_if);
	if (!config)
		return 1;
	group_key(&key, ctx, config, AF_INET6, (__u16)sk->src_port);
	p = take(&key, &id);
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

/* A new ICMP socket (ping or raw) of the cgroup: its echoes will go to
 * destinations no program sees (sendto() on a ping or raw socket passes
 * no sock_addr hook), so it gets its pseudonym now, as a device:
 * bound_dev_if makes the routing take the pseudonym's table (its `oif`
 * rule), whose routes give the pseudonym's address as the source.  The
 * destination is not known yet: under the flow and destination policies
 * the socket gets a pseudonym of its own, under application and user its
 * group's.  A later connect() (ping sockets) moves it to the (icmp, dst)
 * group's pseudonym: see follow().
 */
SEC("cgroup/sock_create")
int stackvirt_sock_create(struct bpf_sock *sk)
{
	const struct sv_config *config;
	struct sv_group_key key = {};
	struct sv_pseudonym *p;
	__u64 cookie;
	__u32 id;

	count(SV_RUN_SOCK_CREATE);
	if (!is_icmp(sk))
		return 1;
	config = ours(sk, 0);
	/* IP-only: no device to tie the socket to; it takes a pseudonym if
	 * it connects, else it keeps the default address.
	 */
	if (!config || config->ip_only)
		return 1;
	key.policy = config->policy;
	if (key.policy == SV_POLICY_APPLICATION)
		key.id = bpf_get_current_cgroup_id();
	else if (key.policy == SV_POLICY_USER)
		key.id = (__u32)bpf_get_current_uid_gid();
	else
		key.policy = SV_POLICY_CONNECTION;
	p = take(&key, &id);
	if (!p)
		return pool_empty(config);
	if (!(p->flags & (sk->family == AF_INET ? SV_HAS_IPV4 : SV_HAS_IPV6))) {
		count(SV_NO_ADDRESS);
		return 1;
	}
	cookie = bpf_get_socket_cookie(sk);
	if (bpf_map_update_elem(&HELD, &cookie, &id, BPF_NOEXIST)) {
		count(SV_HELD_FULL);
		return !config->fail_closed;
	}
	__sync_fetch_and_add(&p->sockets, 1);
	sk->bound_dev_if = p->ifindex;
	count(SV_DEVICE_BOUND);
	return 1;
}

/* An ICMP socket tied to a pseudonym's device closes: one socket fewer
 * that keeps the pseudonym from retiring.
 */
SEC("cgroup/sock_release")
int stackvirt_sock_release(struct bpf_sock *sk)
{
	struct sv_pseudonym *p;
	__u64 cookie;
	__u32 *held;

	count(SV_RUN_SOCK_RELEASE);
	if (!is_icmp(sk))
		return 1;
	cookie = bpf_get_socket_cookie(sk);
	held = bpf_map_lookup_elem(&HELD, &cookie);
	if (!held)
		return 1;
	p = bpf_map_lookup_elem(&PSEUDONYMS, held);
	if (p)
		__sync_fetch_and_add(&p->sockets, -1);
	bpf_map_delete_elem(&HELD, &cookie);
	return 1;
}

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

static __always_inline int same_mac(const struct sv_mac *a, const struct sv_mac *b)
{
	return a->mac[0] == b->mac[0] && a->mac[1] == b->mac[1] && a->mac[2] == b->mac[2] &&
	       a->mac[3] == b->mac[3] && a->mac[4] == b->mac[4] && a->mac[5] == b->mac[5];
}

/* The egress guard on the uplink.  A frame whose sender address (IPv4
 * source, IPv6 source other than link-local or unspecified, ARP sender
 * other than 0.0.0.0) is a pseudonym's must carry that pseudonym's MAC as
 * its Ethernet source; a frame with a pseudonym's MAC must carry one of
 * that pseudonym's addresses.  Anything else passes: the host's own
 * frames, IPv6 link-local neighbour discovery and MLD, other protocols.
 */
SEC("classifier")
int stackvirt_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	__u8 *end = (__u8 *)(long)skb->data_end;
	struct sv_addr addr = {};
	struct sv_mac src = {};
	struct sv_mac *owner;
	__u8 *eth = data, *l3 = data + ETH_HLEN;
	__u16 proto;

	if (eth + ETH_HLEN > end)
		return TC_ACT_OK;
	proto = (__u16)(eth[12] << 8 | eth[13]);
	__builtin_memcpy(src.mac, eth + 6, 6);
	if (proto == ETH_P_IP) {
		if (l3 + 20 > end)
			return TC_ACT_OK;
		addr.family = AF_INET;
		__builtin_memcpy(&addr.addr[0], l3 + 12, 4);
	} else if (proto == ETH_P_IPV6) {
		if (l3 + 40 > end)
			return TC_ACT_OK;
		addr.family = AF_INET6;
		__builtin_memcpy(addr.addr, l3 + 8, 16);
		/* fe80::/10 and ::: each device's own, not a pseudonym's */
		if ((l3[8] == 0xfe && (l3[9] & 0xc0) == 0x80) ||
		    !(addr.addr[0] | addr.addr[1] | addr.addr[2] | addr.addr[3]))
			return TC_ACT_OK;
	} else if (proto == ETH_P_ARP) {
		/* Ethernet/IPv4 ARP: the sender's protocol address at 14 */
		if (l3 + 28 > end || l3[4] != 6 || l3[5] != 4)
			return TC_ACT_OK;
		addr.family = AF_INET;
		__builtin_memcpy(&addr.addr[0], l3 + 14, 4);
		if (!addr.addr[0])
			return TC_ACT_OK;
	} else {
		return TC_ACT_OK;
	}
	owner = bpf_map_lookup_elem(&OWNERS, &addr);
	if (owner) {
		if (same_mac(owner, &src))
			return TC_ACT_OK;
	} else if (!bpf_map_lookup_elem(&MACS, &src)) {
		return TC_ACT_OK;
	}
	count(SV_EGRESS_FORGED);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
