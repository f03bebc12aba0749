# -o never loses a user's data: an input is never its own output, a failed or
# killed run leaves the old file and no temporary file, devices and FIFOs are
# written to (never replaced), symbolic links and permissions are kept, closed
# standard streams and write errors are reported, and the exit codes are
# those of the man pages (66 no input, 73 cannot create, 74 I/O error).
. "$AK_TOP/tests/lib.sh"
B="$AK_TOP/tests/model/bert_tiny"
ulimit -c 0

# A document with attention statistics (for entropy, prune) and one with
# hidden.final (for score).
python3 - "$T/s.ak" "$T/h.ak" <<'PY'
import sys, os
sys.path.insert(0, os.environ["AK_TOP"] + "/tests/py")
import numpy as np, akstream as ak
t = [ak.tensor("text", np.frombuffer(b"a b c", np.uint8)),
     ak.tensor("tokens", np.array([5, 6, 7], np.int32)),
     ak.tensor("offsets", np.array([[0, 1], [2, 3], [4, 5]], np.int64)),
     ak.tensor("segments", np.array([0, 0, 1], np.int32))]
s = t + [ak.tensor("attn.entropy", np.array([[[0, 0.69, 1.03]]], np.float32)),
         ak.tensor("attn.mass", np.array([[[1.7, 0.8, 0.5]]], np.float32))]
open(sys.argv[1], "wb").write(ak.pack_stream([ak.doc("d", s)]))
h = t + [ak.tensor("hidden.final", np.arange(6, dtype=np.float32).reshape(3, 2))]
open(sys.argv[2], "wb").write(ak.pack_stream([ak.doc("d", h)]))
PY
S="$T/s.ak"
head -c 60 "$S" > "$T/corrupt.ak"
entropy -f tsv "$S" > "$T/want.tsv"

# exits DESC CODE PROG TEXT CMD...: exit status CODE, one stderr line
# "PROG: ..." containing TEXT.
exits() {
    d=$1 code=$2 prog=$3 text=$4; shift 4
    "$@" >"$T/.out" 2>"$T/.err"; rc=$?
    if [ "$rc" -eq "$code" ] && [ "$(wc -l <"$T/.err")" -eq 1 ] &&
       grep -q "^$prog: " "$T/.err" && grep -qF -- "$text" "$T/.err"; then
        pass "$d: $(cat "$T/.err")"
    else
        fail "$d (exit $rc, want $code and '$text')"; sed 's/^/#   /' "$T/.err" | head -5
    fi
}
# no_tmp DESC DIR: no temporary output file left in DIR.
no_tmp() {
    left=$(ls -a "$2" | grep '\.tmp\.' | tr '\n' ' ')
    is "$1: no temporary file left" "$left" ""
}

# --- an input is never its own output
cp "$S" "$T/X"
exits "entropy -f tsv -o X X" 64 entropy "input file is also the output file" \
    entropy -f tsv -o "$T/X" "$T/X"
same_file "entropy -f tsv -o X X: X intact" "$T/X" "$S"
exits "entropy -o X < X" 64 entropy "output file is also standard input" \
    sh -c 'entropy -o "$1" < "$1"' sh "$T/X"
exits "prune -o X X" 64 prune "input file is also the output file" \
    prune --keep .5 -o "$T/X" "$T/X"
ln "$T/X" "$T/X.hard"
exits "a hard link to an input" 64 peek "input file is also the output file" \
    peek -o "$T/X.hard" "$T/X"
ln -s X "$T/X.link"
exits "a symlink to an input" 64 score "input file is also the output file" \
    score -o "$T/X.link" "$T/h.ak" "$T/X"
exits "peek X >> X" 64 peek "input file is also standard output" \
    sh -c 'peek "$1" >> "$1"' sh "$T/X"
same_file "after all of them, X intact" "$T/X" "$S"
no_tmp "refused outputs" "$T"

# --- a failed run keeps the old file, removes only its temporary file
for fmt in tsv json stream; do
    echo precious > "$T/R"
    exits "entropy -f $fmt -o R on a corrupt stream" 65 entropy "truncated" \
        entropy -f "$fmt" -o "$T/R" "$T/corrupt.ak"
    is "failed entropy -f $fmt: R unchanged" "$(cat "$T/R")" precious
done
echo precious > "$T/R"
printf 'bad \377 utf-8' > "$T/bad.txt"
exits "tokenize -o R on invalid UTF-8" 65 tokenize "UTF-8" tokenize -o "$T/R" "$T/bad.txt"
is "failed tokenize: R unchanged" "$(cat "$T/R")" precious
exits "score -o R on a corrupt stream" 65 score "truncated" \
    score -o "$T/R" "$T/h.ak" "$T/corrupt.ak"
is "failed score: R unchanged" "$(cat "$T/R")" precious
no_tmp "failed runs" "$T"
ok "entropy -f tsv -o R" entropy -f tsv -o "$T/R" "$S"
same_file "entropy -f tsv -o R: the table" "$T/R" "$T/want.tsv"
no_tmp "a successful run" "$T"

# --- a signal mid-run (the input a FIFO nobody writes: the program waits
# with its temporary file open) removes the temporary file, keeps the old
# file, and the program still dies of that signal.  A shell starts
# background jobs with SIGINT and SIGQUIT ignored, and nohup(1) ignores
# SIGHUP for a whole test run (a program keeps a signal ignored at start
# ignored, as it should): python puts all five back to their defaults.
mkdir "$T/sig"
mkfifo "$T/sig/in"
for signum in INT:2 TERM:15 HUP:1 QUIT:3 PIPE:13; do
    sig=${signum%:*} num=${signum#*:}
    echo precious > "$T/sig/R"
    python3 -c 'import os, signal, sys
for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
    signal.signal(s, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' entropy -f tsv -o "$T/sig/R" "$T/sig/in" 2>/dev/null &
    pid=$!
    i=0
    while [ $i -lt 100 ] && ! ls "$T/sig" | grep -q '^R\.tmp\.'; do sleep 0.05; i=$((i + 1)); done
    ls "$T/sig" | grep -q '^R\.tmp\.' && pass "$sig: temporary file while running" ||
        fail "$sig: temporary file while running"
    kill -"$sig" $pid
    (sleep 10; kill -KILL $pid 2>/dev/null) & guard=$!
    wait $pid; rc=$?
    kill $guard 2>/dev/null; wait $guard 2>/dev/null
    is "$sig: died of the signal" "$rc" "$((128 + num))"
    no_tmp "$sig" "$T/sig"
    is "$sig: R unchanged" "$(cat "$T/sig/R")" precious
done

# --- devices and FIFOs are written to, never replaced or removed
ok "entropy -o /dev/null" entropy -o /dev/null "$S"
ok "entropy -f tsv -o /dev/null" entropy -f tsv -o /dev/null "$S"
exits "a failed run to /dev/null" 65 entropy "truncated" entropy -o /dev/null "$T/corrupt.ak"
[ -c /dev/null ] && pass "/dev/null is still a character device" ||
    fail "/dev/null is still a character device"
no_tmp "/dev" /dev
mkfifo "$T/fifo"
cat "$T/fifo" > "$T/fifo.got" & reader=$!
ok "entropy -f tsv -o FIFO" entropy -f tsv -o "$T/fifo" "$S"
wait $reader
same_file "the FIFO's reader gets the table" "$T/fifo.got" "$T/want.tsv"
[ -p "$T/fifo" ] && pass "the FIFO is still a FIFO" || fail "the FIFO is still a FIFO"
cat "$T/fifo" > "$T/fifo.got" & reader=$!
ok "entropy -o FIFO (a stream)" entropy -o "$T/fifo" "$S"
wait $reader
ok "the FIFO's reader gets a stream" peek "$T/fifo.got"

# --- symbolic links: the link stays, the file it names is replaced
echo old > "$T/target"
ln -s target "$T/link"
ok "entropy -f tsv -o LINK" entropy -f tsv -o "$T/link" "$S"
[ -L "$T/link" ] && pass "the link is still a link" || fail "the link is still a link"
same_file "the link's target holds the table" "$T/target" "$T/want.tsv"
mkdir "$T/sub"
ln -s ../target "$T/sub/rel"
ln -s sub/rel "$T/chain"
echo old > "$T/target"
ok "a chain of relative links" peek -o "$T/chain" "$S"
[ -L "$T/chain" ] && [ -L "$T/sub/rel" ] && grep -q '^doc ' "$T/target" &&
    pass "both links kept, the target written" || fail "both links kept, the target written"
ln -s new.tsv "$T/dangling"
ok "a dangling link" entropy -f tsv -o "$T/dangling" "$S"
[ -L "$T/dangling" ] && same_file "the dangling link's file is created" "$T/new.tsv" "$T/want.tsv" ||
    fail "the dangling link stays a link"
no_tmp "links" "$T"

# --- permissions: an existing file keeps its bits, a new one gets the umask's
echo secret > "$T/p600"
chmod 600 "$T/p600"
ok "entropy -o a 0600 file" entropy -o "$T/p600" "$S"
is "the 0600 file stays 0600" "$(stat -c %a "$T/p600")" 600
chmod 640 "$T/p600"
ok "tokenize -o a 0640 file" tokenize -o "$T/p600" "$T/want.tsv"
is "the 0640 file stays 0640" "$(stat -c %a "$T/p600")" 640
if [ "$(id -u)" = 0 ]; then
    chown 65534:65534 "$T/p600"
    ok "as root, -o a file someone else owns" entropy -o "$T/p600" "$S"
    is "the owner is kept" "$(stat -c %u:%g "$T/p600")" 65534:65534
fi
(umask 027 && entropy -f tsv -o "$T/fresh" "$S")
is "a new file gets 0666 & ~umask" "$(stat -c %a "$T/fresh")" 640

# --- closed standard streams
exits "embed <&-" 66 embed "standard input is closed" sh -c 'embed -m "$1" <&-' sh "$B"
exits "entropy <&-" 66 entropy "standard input is closed" sh -c 'entropy <&-'
exits "tokenize <&-" 66 tokenize "standard input is closed" sh -c 'tokenize <&-'
exits "peek >&-" 74 peek "standard output is closed" sh -c 'peek "$1" >&-' sh "$S"
exits "entropy -f tsv >&-" 74 entropy "standard output is closed" \
    sh -c 'entropy -f tsv "$1" >&-' sh "$S"
ok "stdout closed but -o given" sh -c 'entropy -f tsv -o "$1" "$2" >&-' sh "$T/closed.tsv" "$S"
same_file "stdout closed, -o written" "$T/closed.tsv" "$T/want.tsv"
sh -c 'entropy -f tsv "$1" 2>&-' sh "$S" > "$T/noerr.tsv"
same_file "stderr closed: output unchanged" "$T/noerr.tsv" "$T/want.tsv"

# --- write errors name the file and the reason
exits "entropy -f tsv -o /dev/full" 74 entropy "/dev/full: No space left on device" \
    entropy -f tsv -o /dev/full "$S"
exits "entropy -f json -o /dev/full" 74 entropy "/dev/full: No space left on device" \
    entropy -f json -o /dev/full "$S"
exits "entropy -o /dev/full (a stream)" 74 entropy "No space left on device" \
    entropy -o /dev/full "$S"
exits "entropy -f tsv > /dev/full" 74 entropy "<stdout>: No space left on device" \
    sh -c 'entropy -f tsv "$1" > /dev/full' sh "$S"
exits "score -o /dev/full" 74 score "/dev/full: No space left on device" \
    score -o /dev/full "$T/h.ak" "$T/h.ak"
exits "score > /dev/full" 74 score "<stdout>: No space left on device" \
    sh -c 'score "$1" "$1" > /dev/full' sh "$T/h.ak"
exits "peek -o /dev/full" 74 peek "/dev/full: No space left on device" peek -o /dev/full "$S"
exits "decode --mark -o /dev/full" 74 decode "/dev/full: No space left on device" \
    decode --mark -o /dev/full "$S"
exits "tokenize -o /dev/full" 74 tokenize "No space left on device" \
    tokenize -o /dev/full "$T/want.tsv"

# --- what -o cannot name, and directories as inputs
exits "embed -o ''" 64 embed "-o: empty file name" embed -m "$B" -o '' "$S"
exits "attend -o /" 73 attend "/: is a directory" attend -m "$B" -o / "$S"
exits "entropy -o DIR" 73 entropy "$T: is a directory" entropy -o "$T" "$S"
exits "entropy -o a file in no directory" 73 entropy "No such file or directory" \
    entropy -f tsv -o "$T/none/R" "$S"
exits "prune -o FILE/x" 73 prune "Not a directory" prune --keep .5 -o "$S/x" "$S"
for prog in entropy prune peek embed attend decode; do
    case $prog in
    prune) set -- prune --keep .5 ;;
    embed | attend) set -- "$prog" -m "$B" ;;
    *) set -- "$prog" ;;
    esac
    exits "$prog DIR" 66 "$prog" "$T/sub: is a directory" "$@" "$T/sub"
    exits "$prog < DIR" 66 "$prog" "<stdin>: is a directory" sh -c '"$@" < "$0"' "$T/sub" "$@"
done
exits "tokenize DIR" 66 tokenize "$T/sub: is a directory" tokenize "$T/sub"
exits "score DIR" 66 score "$T/sub: is a directory" score "$T/sub" "$T/h.ak"
done_testing
