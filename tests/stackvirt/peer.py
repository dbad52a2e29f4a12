#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The ends of tests/stackvirt.sh's flows.

  peer.py serve READY PORT...      count each connection's bytes, answer
                                   the count at its end of stream
  peer.py send ADDR PORT BYTES     connect, send BYTES, print the local
                                   address, check the count that comes back
  peer.py bound SRC ADDR PORT     bind to SRC (port 0), connect, print the
                                   local address
  peer.py session ADDR PORT [ADDR PORT]...
                                   as send, 1000 bytes each, one connection
                                   after the other: one local address per
                                   line
  peer.py hold ADDR PORT GO        as send, 1000 bytes, then wait for file
                                   GO to exist and send 1000 more
  peer.py probe ADDR PORT SECS     connect with a timeout: print connected,
                                   refused or timeout
  peer.py udp ADDR PORT COUNT      COUNT unconnected sendto()s
  peer.py connects ADDR PORT N     N connects, then the mean connect time in
                                   microseconds
  peer.py forge DEV udp MAC SRC DST PORT
  peer.py forge DEV arp MAC SRC DST
                                   send one hand-made frame on DEV through a
                                   packet socket, from Ethernet source MAC
                                   to the broadcast MAC: a UDP datagram from
                                   SRC to DST:PORT (IPv4 or IPv6), or an ARP
                                   request for DST from SRC; print sent, or
                                   dropped if the device's egress dropped it
                                   (ENOBUFS)
  peer.py echo ADDR connect|sendto|raw [ADDR HOW]...
                                   one ICMP echo per pair, each from a new
                                   socket: a ping socket (the
                                   ping_group_range must allow it) after
                                   connect() or by an unconnected sendto(),
                                   or a raw socket by sendto(); print the
                                   address each reply came to
                                   (IP_PKTINFO, IPV6_PKTINFO), one per line,
                                   error ETIMEDOUT without a reply

Errors print `error ERRNO-NAME` and exit 1: the test says what differed.
"""
import errno
import os
import socket
import sys
import threading
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def echo(addr, how):
    """One echo request and its reply; print the reply's destination."""
    v6 = family(addr) == socket.AF_INET6
    raw = how == "raw"
    s = socket.socket(family(addr), socket.SOCK_RAW if raw else socket.SOCK_DGRAM,
                      socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    if v6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    else:
        s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_PKTINFO", 8), 1)
    ident = os.getpid() & 0xFFFF
    # type, code, checksum, identifier, sequence; payload.  A ping socket
    # sets the checksum and identifier itself, and so does the kernel for
    # ICMPv6's checksum on a raw socket; an ICMP raw socket sends as is.
    request = bytearray([128 if v6 else 8, 0, 0, 0, ident >> 8, ident & 0xFF, 0, 1])
    request += b"stackvirt"
    if raw and not v6:
        request[2:4] = checksum(bytes(request)).to_bytes(2, "big")
    if how == "connect":
        s.connect((addr, 0))
        s.send(request)
    else:
        s.sendto(request, (addr, 0))
    deadline = time.monotonic() + 5
    while True:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        reply, ancillary, _, _ = s.recvmsg(1500, 256)
        if raw and not v6:
            reply = reply[(reply[0] & 0xF) * 4:]
        mine = not raw or reply[4:6] == request[4:6]
        if reply[0] == (129 if v6 else 0) and reply.endswith(b"stackvirt") and mine:
            break
        if not raw:
            print("error reply %r" % reply)
            sys.exit(1)
    for level, kind, data in ancillary:
        if v6 and (level, kind) == (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO):
            print(socket.inet_ntop(socket.AF_INET6, data[:16]), flush=True)
            return
        if not v6 and (level, kind) == (socket.IPPROTO_IP, getattr(socket, "IP_PKTINFO", 8)):
            # struct in_pktinfo: ifindex, spec_dst, addr (the header's)
            print(socket.inet_ntop(socket.AF_INET, data[8:12]), flush=True)
            return
    print("error no-pktinfo")
    sys.exit(1)


def serve(ready, ports):
    def answer(conn):
        with conn:
            n = 0
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                n += len(data)
            conn.sendall(b"%d\n" % n)

    def listen(port):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        s.listen(64)
        return s

    def accept(s):
        while True:
            conn, _ = s.accept()
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    for s in [listen(int(p)) for p in ports]:
        threading.Thread(target=accept, args=(s,), daemon=True).start()
    open(ready, "w").close()
    threading.Event().wait()


def connect(addr, port, timeout=10):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((addr, int(port)))
    return s


def finish(s, sent):
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while not reply.endswith(b"\n"):
        data = s.recv(100)
        if not data:
            break
        reply += data
    if reply.strip() != str(sent).encode():
        print("error count %r, sent %d" % (reply, sent))
        sys.exit(1)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def forge(dev, kind, mac, src, dst, port=None):
    eth = b"\xff" * 6 + bytes.fromhex(mac.replace(":", ""))
    if kind == "arp":
        frame = eth + b"\x08\x06" + bytes([0, 1, 8, 0, 6, 4, 0, 1]) + eth[6:] + \
            socket.inet_aton(src) + b"\0" * 6 + socket.inet_aton(dst)
    else:
        udp_len = 8 + 9
        udp = int(port).to_bytes(2, "big") * 2 + udp_len.to_bytes(2, "big") + b"\0\0" + b"stackvirt"
        if family(src) == socket.AF_INET6:
            ip = bytes([0x60, 0, 0, 0]) + udp_len.to_bytes(2, "big") + bytes([17, 64]) + \
                socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            frame = eth + b"\x86\xdd" + ip + udp
        else:
            ip = bytes([0x45, 0]) + (20 + udp_len).to_bytes(2, "big") + bytes([0, 1, 0, 0, 64, 17, 0, 0]) + \
                socket.inet_aton(src) + socket.inet_aton(dst)
            ip = ip[:10] + checksum(ip).to_bytes(2, "big") + ip[12:]
            frame = eth + b"\x08\x00" + ip + udp
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((dev, 0))
    try:
        s.send(frame)
        print("sent")
    except OSError as e:
        # a frame dropped on the way out (tc, netfilter): NET_XMIT_DROP
        if e.errno != errno.ENOBUFS:
            raise
        print("dropped")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "serve":
            serve(args[0], args[1:])
        elif cmd == "send":
            s = connect(args[0], args[1], 60)
            print(s.getsockname()[0], flush=True)
            total = int(args[2])
            chunk = b"x" * 65536
            sent = 0
            while sent < total:
                sent += s.send(chunk[: total - sent])
            finish(s, sent)
        elif cmd == "session":
            for addr, port in zip(args[::2], args[1::2]):
                s = connect(addr, port, 60)
                print(s.getsockname()[0], flush=True)
                s.sendall(b"x" * 1000)
                finish(s, 1000)
                s.close()
        elif cmd == "bound":
            s = socket.socket(family(args[0]), socket.SOCK_STREAM)
            s.settimeout(10)
            s.bind((args[0], 0))
            s.connect((args[1], int(args[2])))
            print(s.getsockname()[0], flush=True)
            finish(s, 0)
        elif cmd == "hold":
            s = connect(args[0], args[1])
            print(s.getsockname()[0], flush=True)
            s.sendall(b"a" * 1000)
            while not os.path.exists(args[2]):
                time.sleep(0.05)
            s.sendall(b"b" * 1000)
            finish(s, 2000)
            print("ok", flush=True)
        elif cmd == "probe":
            try:
                connect(args[0], args[1], float(args[2])).close()
                print("connected")
            except ConnectionRefusedError:
                print("refused")
            except (socket.timeout, TimeoutError):
                print("timeout")
        elif cmd == "udp":
            s = socket.socket(family(args[0]), socket.SOCK_DGRAM)
            for _ in range(int(args[2])):
                s.sendto(b"u" * 100, (args[0], int(args[1])))
        elif cmd == "connects":
            n = int(args[2])
            total = 0.0
            for _ in range(n):
                start = time.perf_counter()
                s = connect(args[0], args[1])
                total += time.perf_counter() - start
                s.close()
            print(int(total / n * 1e6))
        elif cmd == "forge":
            forge(*args)
        elif cmd == "echo":
            for i in range(0, len(args) - 1, 2):
                echo(args[i], args[i + 1])
        else:
            sys.exit("unknown command " + cmd)
    except (socket.timeout, TimeoutError):
        print("error ETIMEDOUT", flush=True)
        sys.exit(1)
    except OSError as e:
        print("error", errno.errorcode.get(e.errno, str(e)), flush=True)
        sys.exit(1)


main()
