#!/usr/bin/env python3
"""What a pupil with Python tries against a CONNECT tunnel. Prints one JSON line.

  tunnel.py split-hello PROXY_HOST PROXY_PORT TARGET_HOST TARGET_PORT
      CONNECT, then a TLS ClientHello whose first byte is sent on its own; reports whose
      certificate answered and what a GET / returned.
  tunnel.py raw PROXY_HOST PROXY_PORT TARGET_HOST TARGET_PORT HEX
      CONNECT, then the given bytes; reports everything that came back until the proxy
      closed (or 5 s passed).
"""
import json
import socket
import ssl
import sys
import time


def connect(proxy_host, proxy_port, target):
    s = socket.create_connection((proxy_host, int(proxy_port)), timeout=10)
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else ""
    return s, status


def read_all(s, limit=5.0):
    s.settimeout(limit)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return out


def split_hello(proxy_host, proxy_port, host, port):
    s, status = connect(proxy_host, proxy_port, f"{host}:{port}")
    result = {"connect": status}
    if status != "200":
        print(json.dumps(result))
        return
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    first = True
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            data = outgoing.read()
            if first and data:
                # The pupil's trick: the record header's first byte alone, then the rest.
                s.sendall(data[:1])
                time.sleep(0.3)
                s.sendall(data[1:])
                first = False
            elif data:
                s.sendall(data)
            chunk = s.recv(65536)
            if not chunk:
                result["handshake"] = "closed"
                print(json.dumps(result))
                return
            incoming.write(chunk)
        except ssl.SSLError as e:
            result["handshake"] = f"failed: {e}"
            print(json.dumps(result))
            return
    s.sendall(outgoing.read())
    der = tls.getpeercert(binary_form=True)
    result["peer_certificate_sha1"] = __import__("hashlib").sha1(der).hexdigest() if der else ""
    tls.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    s.sendall(outgoing.read())
    body = b""
    s.settimeout(5)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            incoming.write(chunk)
            try:
                while True:
                    data = tls.read(65536)
                    if not data:
                        break
                    body += data
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
    except (socket.timeout, ssl.SSLError, ConnectionResetError):
        pass
    result["response"] = body.decode("utf-8", "replace")
    print(json.dumps(result))


def raw(proxy_host, proxy_port, host, port, hexbytes):
    s, status = connect(proxy_host, proxy_port, f"{host}:{port}")
    result = {"connect": status}
    if status == "200":
        payload = bytes.fromhex(hexbytes)
        # Split like a pupil would: one byte, then the rest.
        s.sendall(payload[:1])
        time.sleep(0.2)
        s.sendall(payload[1:])
        result["response"] = read_all(s).decode("utf-8", "replace")
    print(json.dumps(result))


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    {"split-hello": split_hello, "raw": raw}[mode](*args)
