#!/usr/bin/env python3
"""One MPTCP exchange for make-captures.sh: `server PORT REQUEST_OUT RESPONSE_IN`
stores what one client sends and answers with a file; `client ADDR PORT
REQUEST_IN RESPONSE_EXPECTED SUBFLOWS` sends the first 100 bytes, waits
until the connection has SUBFLOWS extra subflows, sends the rest,
half-closes and checks the answer."""
import socket
import sys
import time

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1


def read_all(sock):
    chunks = []
    while True:
        b = sock.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def server(port, request_out, response_in):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port)))
    s.listen(1)
    s.settimeout(30)
    conn, _ = s.accept()
    conn.settimeout(30)
    with open(request_out, "wb") as f:
        f.write(read_all(conn))
    with open(response_in, "rb") as f:
        conn.sendall(f.read())
    conn.close()


def client(addr, port, request_in, response_expected, subflows):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    s.settimeout(30)
    s.connect((addr, int(port)))
    with open(request_in, "rb") as f:
        request = f.read()
    # The client's path manager adds subflows once the connection is
    # fully established, which takes the server's first data ACK.
    s.sendall(request[:100])
    deadline = time.monotonic() + 5
    while int(subflows) > 0:
        info = s.getsockopt(SOL_MPTCP, MPTCP_INFO, 64)
        if info[0] >= int(subflows):
            break
        if time.monotonic() > deadline:
            sys.exit("client: extra subflows never came up")
        time.sleep(0.01)
    s.sendall(request[100:])
    s.shutdown(socket.SHUT_WR)
    got = read_all(s)
    with open(response_expected, "rb") as f:
        if got != f.read():
            sys.exit("client: response differs from what the server sent")
    s.close()


if __name__ == "__main__":
    {"server": server, "client": client}[sys.argv[1]](*sys.argv[2:])
