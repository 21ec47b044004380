#!/usr/bin/env python3
"""Opens COUNT connections to the proxy from source addresses FIRST..FIRST+SOURCES-1 (in
127.0.0.0/8), sends nothing, and holds them until stdin closes. Prints how many it opened
and the first bytes the proxy sent on the last one.

  silent.py PROXY_HOST PROXY_PORT COUNT FIRST_SOURCE SOURCES
"""
import resource
import socket
import sys

host, port, count, first, sources = sys.argv[1:]
count, sources = int(count), int(sources)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
base = [int(x) for x in first.split(".")]
held = []
for i in range(count):
    src = base[:3] + [base[3] + i % sources]
    s = socket.socket()
    s.bind((".".join(map(str, src)), 0))
    s.connect((host, int(port)))
    held.append(s)
held[-1].settimeout(10)
last = held[-1].recv(100).decode("utf-8", "replace").split("\r\n")[0]
print(f"held {len(held)} {last}", flush=True)
sys.stdin.read()
