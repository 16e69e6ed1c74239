#!/usr/bin/env python3
"""paced.py PORT PERIOD_US SECONDS: one kept-alive connection to
127.0.0.1:PORT sending GET /rest/v1/t1k, the next one PERIOD_US after the
previous one was sent (or at once if that time has passed), each only
after the whole answer came back.  Prints "requests requests_per_second".
Exits 1 on a non-200 answer or a closed connection."""
import socket
import sys
import time


def read_answer(s, buf):
    """One whole response from s (Content-Length bodies); the rest of buf."""
    while True:
        h = buf.find(b"\r\n\r\n")
        if h >= 0:
            head = buf[:h].split(b"\r\n")
            if not head[0].startswith(b"HTTP/1.1 200"):
                sys.exit("paced: " + head[0].decode(errors="replace"))
            n = 0
            for line in head[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    n = int(value.strip())
            if len(buf) >= h + 4 + n:
                return buf[h + 4 + n:]
        data = s.recv(65536)
        if not data:
            sys.exit("paced: connection closed")
        buf += data


def main():
    port, period, secs = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = b"GET /rest/v1/t1k HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    n, buf = 0, b""
    start = time.perf_counter()
    nxt, end = start, start + secs
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        while now < nxt:            # a busy wait: sleeping is too coarse
            now = time.perf_counter()
        s.sendall(req)
        buf = read_answer(s, buf)
        n += 1
        nxt += period / 1e6
        if nxt < time.perf_counter():
            nxt = time.perf_counter()
    print(n, n / secs)


if __name__ == "__main__":
    main()
