#!/usr/bin/env python3
"""The shared side-by-side bench (../shared/bench/bench.py) with Gatehouse's own scenarios
added; every other argument is passed on unchanged.

  https-100k  100 KiB text/html over HTTPS through CONNECT, keep-alive, 50 connections:
              an intercepting proxy decrypts it and (if it reads content) reads the page,
              the load e2guardian's content filter and Gatehouse's page reading are compared on.
"""
import os
import sys

bench_dir = os.environ["BENCH"]
sys.path.insert(0, bench_dir)
sys.argv[0] = os.path.join(bench_dir, "bench.py")

import bench  # noqa: E402  (the shared harness, imported from BENCH)

bench.SCENARIOS["https-100k"] = (
    bench.HTTPS_BASE + "/100k.html",
    50,
    True,
    102400,
    "100 KB text/html over HTTPS through CONNECT (intercepted and read), keep-alive, 50 connections",
)
# Entries named `*-ldap` need a proxy login on every request (the LDAP-cached path): oha sends
# it as a proxy header (on each plain request, and on each CONNECT).
_run_oha = bench.run_oha


def run_oha_with_login(e, scen, duration, extra_noka):
    if not e["name"].endswith("-ldap"):
        return _run_oha(e, scen, duration, extra_noka)
    real_popen = bench.subprocess.Popen

    def popen(cmd, *args, **kwargs):
        login = os.environ.get("GATEHOUSE_BENCH_LOGIN", "bench.pupil:bench-pw-123")
        import base64
        token = base64.b64encode(login.encode()).decode()
        cmd = cmd[:-1] + ["--proxy-header", f"Proxy-Authorization: Basic {token}", cmd[-1]]
        return real_popen(cmd, *args, **kwargs)

    bench.subprocess.Popen = popen
    try:
        return _run_oha(e, scen, duration, extra_noka)
    finally:
        bench.subprocess.Popen = real_popen


bench.run_oha = run_oha_with_login
_curl_check = bench.curl_check


def curl_check_with_login(e, url, ca):
    if not e["name"].endswith("-ldap"):
        return _curl_check(e, url, ca)
    real_run = bench.subprocess.run

    def run(cmd, *args, **kwargs):
        login = os.environ.get("GATEHOUSE_BENCH_LOGIN", "bench.pupil:bench-pw-123")
        cmd = cmd[:-1] + ["--proxy-user", login, cmd[-1]]
        return real_run(cmd, *args, **kwargs)

    bench.subprocess.run = run
    try:
        return _curl_check(e, url, ca)
    finally:
        bench.subprocess.run = real_run


bench.curl_check = curl_check_with_login
bench.main()
