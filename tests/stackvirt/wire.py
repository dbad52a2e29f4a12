#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""What an observer on the link learns from `tcpdump -e -n -r` text.

  wire.py pairs FILE     every (source IP, source MAC) pair seen in IPv4 and
                         IPv6 frames, ARP requests and replies and neighbour
                         advertisements: "IP MAC" lines, sorted, unique
  wire.py chatter FILE   every frame that is not ARP, neighbour or router
                         discovery or MLD: the lines themselves
"""
import re
import sys

LINE = re.compile(r"^\S+ (?P<mac>[0-9a-f:]{17}) > [0-9a-f:]{17}, ethertype (?P<type>\S+) "
                  r"\(0x[0-9a-f]+\), length \d+: (?P<rest>.*)$")


def strip_port(token):
    token = token.rstrip(":,")
    if token.count(".") == 4:                    # IPv4 a.b.c.d.port
        return token.rsplit(".", 1)[0]
    if ":" in token and "." in token:            # IPv6 addr.port
        return token.rsplit(".", 1)[0]
    return token


def pairs(lines):
    out = set()
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        mac, kind, rest = m["mac"], m["type"], m["rest"]
        if kind == "ARP":
            a = re.search(r"tell (\S+?),", rest) or re.search(r"Reply (\S+) is-at", rest)
            if a:
                out.add((a[1], mac))
            continue
        src = strip_port(rest.split()[0])
        if src not in ("::", "0.0.0.0") and not src.startswith("fe80:"):
            out.add((src, mac))
        a = re.search(r"neighbor advertisement, tgt is (\S+?),", rest)
        if a:
            out.add((a[1], mac))
    return sorted(out)


def chatter(lines):
    quiet = ("ARP", "neighbor solicitation", "neighbor advertisement", "router solicitation",
             "multicast listener report", "multicast listener done")
    return [l for l in lines if LINE.match(l) and not any(q in l for q in quiet)]


def main():
    lines = open(sys.argv[2]).read().splitlines()
    if sys.argv[1] == "pairs":
        for ip, mac in pairs(lines):
            print(ip, mac)
    else:
        for line in chatter(lines):
            print(line)


main()
