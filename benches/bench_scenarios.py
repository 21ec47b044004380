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
bench.main()
