#!/usr/bin/env python3
"""From a pupil's search to the DSL's mailbox: how long an alert takes.

  benches/alert_latency.py [ROUNDS]

Starts aiosmtpd and `gatehouse run` (release build) on 127.0.0.1 with the shipped theme
files and the default alert settings (hold_secs = 3: a burst of the same search is folded
into one message), sends ROUNDS different self-harm searches as a pupil (each blocked by
the policy, so nothing leaves the machine), and times each from the request to the
message's arrival in the maildir. Bounded: 30 s per round.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "target", "release", "gatehouse")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def arrived(maildir, phrase):
    """Whether a message about `phrase` is in the maildir."""
    new = os.path.join(maildir, "new")
    if not os.path.isdir(new):
        return False
    for name in os.listdir(new):
        with open(os.path.join(new, name), errors="replace") as f:
            if f'"{phrase}"' in f.read().replace("=\n", ""):
                return True
    return False


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    work = tempfile.mkdtemp()
    smtp_port, proxy_port = free_port(), free_port()
    maildir = os.path.join(work, "mail")
    smtp = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
                             "-c", "aiosmtpd.handlers.Mailbox", maildir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    config = os.path.join(work, "gatehouse.toml")
    with open(config, "w") as f:
        f.write(f'''lists_dir = "{os.path.join(REPO, "lists")}"
[school]
name = "Bench Academy"
timezone = "Europe/London"
[[network]]
cidr = "127.0.0.1/32"
role = "pupil"
site = "main"
[themes.self-harm]
file = "themes/self-harm.txt"
[roles.pupil]
default = "allow"
themes = {{ self-harm = {{ action = "block", alert = "high" }} }}
[alerts]
digest_time = "23:59"
[alerts.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Gatehouse <gatehouse@school.example>"
[alerts.sites.main]
dsl = ["dsl@school.example"]
[proxy]
listen = "127.0.0.1:{proxy_port}"
data_dir = "data"
''')
    proxy = subprocess.Popen([BIN, "run", "--config", config], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proxy.stdout:
            if "listening" in line:
                break
        phrases = ["cut myself", "hurt myself", "burn myself", "hide my cuts", "pro ana",
                   "how deep to cut", "razor blade cutting", "how to cut yourself"][:rounds]
        results = []
        for phrase in phrases:
            t0 = time.monotonic()
            code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x",
                                   f"http://127.0.0.1:{proxy_port}",
                                   "http://www.google.com/search?q=" + phrase.replace(" ", "+")],
                                  capture_output=True, text=True).stdout
            while time.monotonic() - t0 < 30 and not arrived(maildir, phrase):
                time.sleep(0.02)
            results.append(time.monotonic() - t0)
            print(f"{phrase!r}: HTTP {code}, in the DSL's mailbox after {results[-1]:.2f} s")
        results.sort()
        print(f"median {results[len(results) // 2]:.2f} s, max {results[-1]:.2f} s "
              f"(hold_secs = 3 of it is the deliberate wait that folds a burst into one message)")
    finally:
        proxy.terminate()
        smtp.terminate()
        proxy.wait()
        smtp.wait()


if __name__ == "__main__":
    main()
