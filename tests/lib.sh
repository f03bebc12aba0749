# tests/lib.sh - sourced by shell tests (tests/*.t).  Each check prints one
# TAP-style line, "ok - what" or "not ok - what"; the test exits 1 if any
# check failed.  tests/run.sh sets PATH (sanitized build first), ATTNKIT_MODEL,
# AK_SHARED (../shared), AK_TOP (the checkout) and PYTHONPATH.
set -u
ak_failed=0
T=$(mktemp -d "${TMPDIR:-/tmp}/attnkit-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; ak_failed=1; }

# ok DESC CMD...: the command succeeds.
ok() {
    d=$1; shift
    if "$@" >"$T/.out" 2>"$T/.err"; then pass "$d"; else
        fail "$d (exit $?)"; sed 's/^/#   /' "$T/.err" | head -20; fi
}
# is DESC ACTUAL EXPECTED: strings are equal.
is() {
    if [ "$2" = "$3" ]; then pass "$1"; else
        fail "$1"; printf '#   got:      %.300s\n#   expected: %.300s\n' "$2" "$3"; fi
}
# same_file DESC A B: byte-identical files.
same_file() {
    if cmp -s "$2" "$3"; then pass "$1"; else fail "$1"; cmp "$2" "$3" | sed 's/^/#   /'; fi
}
# rejects DESC PROG CMD...: the command exits non-zero (not by a signal,
# not a sanitizer report) with exactly one stderr line starting "PROG: ".
rejects() {
    d=$1; prog=$2; shift 2
    "$@" >"$T/.out" 2>"$T/.err"; rc=$?
    lines=$(wc -l <"$T/.err")
    if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && [ "$lines" -eq 1 ] &&
       grep -q "^$prog: " "$T/.err"; then
        pass "$d: $(cat "$T/.err")"
    else
        fail "$d (exit $rc, $lines stderr lines)"; sed 's/^/#   /' "$T/.err" | head -20
    fi
}
done_testing() { exit $ak_failed; }
