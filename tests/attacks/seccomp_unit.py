#!/usr/bin/python3
"""Runs a command under the system-call filter a systemd unit file describes, as systemd
would build it: the first SystemCallFilter= line is an allow-list, `~` lines take groups
away from it, later plain lines give calls back; a call outside it fails with
SystemCallErrorNumber= if the unit sets one, and kills the process (SIGSYS) if not. Groups
(@system-service...) are expanded with `systemd-analyze syscall-filter`.

  seccomp_unit.py UNIT_FILE COMMAND [ARGS...]
"""
import errno
import os
import subprocess
import sys

import seccomp


def expand(item, seen=None):
    seen = seen if seen is not None else set()
    if not item.startswith("@"):
        return {item}
    if item in seen:
        return set()
    seen.add(item)
    out = subprocess.run(["systemd-analyze", "syscall-filter", item],
                         capture_output=True, text=True, check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        calls |= expand(line, seen)
    return calls


def main():
    unit, command = sys.argv[1], sys.argv[2:]
    allowed, errno_name = None, None
    for line in open(unit):
        line = line.strip()
        if line.startswith("SystemCallErrorNumber="):
            errno_name = line.split("=", 1)[1].strip()
        if not line.startswith("SystemCallFilter="):
            continue
        value = line.split("=", 1)[1].strip()
        deny = value.startswith("~")
        items = set()
        for item in value.lstrip("~").split():
            items |= expand(item)
        if allowed is None:
            allowed = set() if deny else items
        elif deny:
            allowed -= items
        else:
            allowed |= items
    default = seccomp.ERRNO(getattr(errno, errno_name)) if errno_name else seccomp.KILL_PROCESS
    f = seccomp.SyscallFilter(defaction=default)
    for call in sorted(allowed or ()):
        try:
            f.add_rule(seccomp.ALLOW, call)
        except (RuntimeError, ValueError, OSError):
            pass  # not a call on this architecture
    f.load()
    os.execv(command[0], command)


main()
