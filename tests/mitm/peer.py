#!/usr/bin/env python3
"""The two ends of tests/mitm.sh: an MPTCP client that sends numbered
lines until the connection ends or all are sent, and a server that keeps
what it receives.  Each writes a JSON line with what happened.

  peer.py server ADDR PORT OUT_FILE READY_FILE
  peer.py client ADDR PORT LINES [--pace SECONDS]
"""
import json
import socket
import sys
import time

IPPROTO_MPTCP = 262


def line(i):
    return b"secret %08d: the hardened mode hides this\n" % i


def stream(n):
    return b"".join(line(i) for i in range(n))


def server(addr, port, out, ready):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, int(port)))
    ls.listen(1)
    open(ready, "w").close()
    conn, _ = ls.accept()
    got, err = bytearray(), None
    while True:
        try:
            b = conn.recv(65536)
        except OSError as e:
            err = e.strerror
            break
        if not b:
            break
        got += b
    open(out, "wb").write(got)
    print(json.dumps({"received": len(got), "error": err}))


def client(addr, port, lines, pace=0.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    start = time.monotonic()
    s.connect((addr, int(port)))
    sent, err = 0, None
    data = stream(int(lines))
    try:
        for at in range(0, len(data), 4096):
            s.sendall(data[at:at + 4096])
            sent = min(at + 4096, len(data))
            if pace:
                time.sleep(pace)
        s.shutdown(socket.SHUT_WR)
        # the server closes after reading all: a reset shows here too
        while s.recv(4096):
            pass
    except OSError as e:
        err = e.strerror
    print(json.dumps({"sent": sent, "error": err,
                      "seconds": round(time.monotonic() - start, 3)}))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(*sys.argv[2:6])
    else:
        pace = float(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[5] == "--pace" else 0.0
        client(sys.argv[2], sys.argv[3], sys.argv[4], pace)
