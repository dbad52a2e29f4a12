#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The ends of tests/stackvirt.sh's flows.

  peer.py serve READY PORT...      count each connection's bytes, answer
                                   the count at its end of stream
  peer.py send ADDR PORT BYTES     connect, send BYTES, print the local
                                   address, check the count that comes back
  peer.py bound SRC ADDR PORT     bind to SRC (port 0), connect, print the
                                   local address
  peer.py hold ADDR PORT GO        as send, 1000 bytes, then wait for file
                                   GO to exist and send 1000 more
  peer.py probe ADDR PORT SECS     connect with a timeout: print connected,
                                   refused or timeout
  peer.py udp ADDR PORT COUNT      COUNT unconnected sendto()s
  peer.py connects ADDR PORT N     N connects, then the mean connect time in
                                   microseconds

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
        else:
            sys.exit("unknown command " + cmd)
    except OSError as e:
        print("error", errno.errorcode.get(e.errno, str(e)), flush=True)
        sys.exit(1)


main()
