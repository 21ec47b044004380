#!/usr/bin/env python3
"""Memory per idle keep-alive connection through Gatehouse.

  benches/idle_connections.py --proxy 127.0.0.1:13201 --pid PID --url URL [--ca CA.pem]
                              [--connections 10000] [--concurrency 200]

Opens N client connections to the proxy; each sends one request for URL (http:// as an
absolute-form request, https:// through CONNECT and TLS, trusting CA), reads the whole
response and then stays open and idle. The proxy's resident memory (VmRSS of PID) is read
before and after; the difference divided by N is the cost of one idle connection. Every
connection is closed at the end; the whole run is bounded (--timeout seconds).
"""
import argparse
import asyncio
import os
import ssl
import sys
import time
from urllib.parse import urlsplit


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return int(head[9:12])


async def open_one(args, url, ctx, held, sem):
    async with sem:
        host, port = args.proxy.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        if url.scheme == "https":
            target = f"{url.hostname}:{url.port or 443}"
            writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")
            await writer.start_tls(ctx, server_hostname=url.hostname)
            path = url.path or "/"
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {url.hostname}\r\n\r\n".encode())
        else:
            writer.write(f"GET {url.geturl()} HTTP/1.1\r\nHost: {url.hostname}\r\n\r\n".encode())
        await writer.drain()
        status = await read_response(reader)
        held.append(writer)
        return status


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=240)
    args = ap.parse_args()
    url = urlsplit(args.url)
    ctx = ssl.create_default_context(cafile=args.ca) if url.scheme == "https" else None
    held = []
    sem = asyncio.Semaphore(args.concurrency)
    before = rss_kib(args.pid)
    started = time.monotonic()
    tasks = [open_one(args, url, ctx, held, sem) for _ in range(args.connections)]
    statuses = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), args.timeout)
    opened = time.monotonic() - started
    await asyncio.sleep(2)
    after = rss_kib(args.pid)
    ok = sum(1 for s in statuses if s == 200)
    errors = [s for s in statuses if not isinstance(s, int)]
    per = (after - before) / max(ok, 1)
    print(f"{args.url}: {ok}/{args.connections} connections answered 200 and held idle "
          f"(opened in {opened:.1f} s, {len(errors)} errors{': ' + repr(errors[0]) if errors else ''})")
    print(f"proxy RSS before {before / 1024:.1f} MiB, with them idle {after / 1024:.1f} MiB: "
          f"{per:.1f} KiB per idle connection")
    for w in held:
        w.close()
    return 0 if ok == args.connections else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
