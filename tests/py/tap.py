"""What the Python tests share: check() prints a TAP line "ok - WHAT" or
"not ok - WHAT", remembers a failure and returns cond, run() runs a program on bytes and
returns (exit status, stdout bytes, stderr text), status() is the test's
exit status at the end (sys.exit(tap.status()))."""
import subprocess
import sys

_failed = False


def check(cond, what):
    global _failed
    print(("ok - " if cond else "not ok - ") + what)
    sys.stdout.flush()
    _failed |= not cond
    return cond


def run(args, data=b""):
    p = subprocess.run(args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def status():
    return 1 if _failed else 0
