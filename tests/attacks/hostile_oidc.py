#!/usr/bin/env python3
"""A hostile OpenID provider for tests/signin.rs: it answers the filter's token request with
ID tokens that are wrong on purpose, to show that each is refused with a clear log line.

Standard library and the openssl command only. Serves on 127.0.0.1:PORT (argv[1]):
  /.well-known/openid-configuration, /jwks (one RSA key), /token.
The code the test sends to the filter's callback says what the token should be:
  "<mode>.<nonce>", mode one of good, bad-nonce, bad-iss, bad-aud, expired, alg-none,
  wrong-key, no-account. Prints "hostile IdP ready" when it listens.
"""

import base64
import http.server
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

PORT = int(sys.argv[1])
ISSUER = f"http://127.0.0.1:{PORT}"
CLIENT = "gatehouse"
DIR = tempfile.mkdtemp()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key(name: str) -> str:
    path = os.path.join(DIR, name)
    subprocess.run(["openssl", "genrsa", "-out", path, "2048"], check=True, capture_output=True)
    return path


KEY = new_key("key.pem")
OTHER = new_key("other.pem")
modulus = subprocess.run(
    ["openssl", "rsa", "-in", KEY, "-noout", "-modulus"], check=True, capture_output=True, text=True
).stdout.strip().split("=", 1)[1]
JWKS = {"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                  "n": b64(bytes.fromhex(modulus)), "e": "AQAB"}]}


def token(mode: str, nonce: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "amy", "iat": now, "exp": now + 600,
              "nonce": nonce, "preferred_username": "amy.pupil@school.test", "name": "Amy P."}
    if mode == "bad-nonce":
        claims["nonce"] = "not-the-one-sent"
    elif mode == "bad-iss":
        claims["iss"] = "https://login.evil.example/v2.0"
    elif mode == "bad-aud":
        claims["aud"] = "someone-elses-app"
    elif mode == "expired":
        claims["exp"] = now - 3600
    elif mode == "no-account":
        del claims["preferred_username"]
    header = {"alg": "none" if mode == "alg-none" else "RS256", "kid": "k1", "typ": "JWT"}
    signed = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if mode == "alg-none":
        return signed + "."
    key = OTHER if mode == "wrong-key" else KEY
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signed.encode(),
                         check=True, capture_output=True).stdout
    return f"{signed}.{b64(sig)}"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_json(self, value, status=200):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/.well-known/openid-configuration":
            self.send_json({"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth",
                            "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks"})
        elif self.path == "/jwks":
            self.send_json(JWKS)
        else:
            self.send_json({"error": "not_found"}, 404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        code = form.get("code", [""])[0]
        mode, _, nonce = code.partition(".")
        self.send_json({"access_token": "x", "token_type": "Bearer", "id_token": token(mode, nonce)})


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("hostile IdP ready", flush=True)
server.serve_forever()
