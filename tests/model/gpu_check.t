# make gpu-check without a CUDA device: one line on stderr naming the cause,
# a non-zero exit (69, EX_UNAVAILABLE from bench/gpu_check.sh), at once,
# and nothing built or written.  Faked with NVIDIA_SMI, so the test means
# the same on a GPU machine: nvidia-smi missing, failing (no driver), and
# listing no GPU.
. "$AK_TOP/tests/lib.sh"

cat >"$T/smi-fails" <<'SH'
#!/bin/sh
echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2
exit 9
SH
cat >"$T/smi-none" <<'SH'
#!/bin/sh
echo "No devices were found"
SH
chmod +x "$T/smi-fails" "$T/smi-none"
out="$T/results"

# no_device DESC NVIDIA_SMI EXPECTED-CAUSE
no_device() {
    start=$(date +%s)
    NVIDIA_SMI=$2 GPU_CHECK_OUT="$out" sh "$AK_TOP/bench/gpu_check.sh" >"$T/.out" 2>"$T/.err"
    rc=$?
    is "$1: exit 69" "$rc" 69
    is "$1: one stderr line" "$(wc -l <"$T/.err" | tr -d ' ')" 1
    is "$1: the line" "$(cat "$T/.err")" "make gpu-check: no CUDA device ($3)"
    is "$1: nothing on stdout" "$(wc -c <"$T/.out" | tr -d ' ')" 0
    [ ! -e "$out" ] && [ ! -e "$out.md" ] && pass "$1: no results written" ||
        fail "$1: results written: $(ls -d "$out"*)"
    [ $(( $(date +%s) - start )) -le 5 ] && pass "$1: at once" || fail "$1: took over 5 s"
}
no_device "nvidia-smi missing" "$T/no-such-nvidia-smi" "nvidia-smi not found"
no_device "nvidia-smi fails" "$T/smi-fails" \
    "nvidia-smi -L: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
no_device "nvidia-smi lists no GPU" "$T/smi-none" "nvidia-smi -L lists none: No devices were found"

# through make: the same first line, make's exit non-zero, no build started
# (the check comes before any compile: build/gpu is not created)
before=$(ls -d "$AK_TOP/build/gpu" 2>/dev/null)
NVIDIA_SMI="$T/smi-fails" GPU_CHECK_OUT="$out" make -s --no-print-directory -C "$AK_TOP" gpu-check \
    >"$T/.out" 2>"$T/.err"
rc=$?
[ "$rc" -ne 0 ] && pass "make gpu-check: exit $rc" || fail "make gpu-check: exit 0 without a device"
is "make gpu-check: first stderr line" "$(head -1 "$T/.err")" \
    "make gpu-check: no CUDA device (nvidia-smi -L: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.)"
is "make gpu-check: nothing built" "$(ls -d "$AK_TOP/build/gpu" 2>/dev/null)" "$before"

# ATTNKIT_CUDA_FORWARD: 0..2, anything else a usage error naming it; on the
# CPU (and in a CPU build) it changes nothing, to the byte.
for v in 3 -1 abc 1x; do
    rejects "ATTNKIT_CUDA_FORWARD='$v'" peek env ATTNKIT_CUDA_FORWARD="$v" peek "$AK_TOP/formats/vectors/minimal.ak"
    grep -q ATTNKIT_CUDA_FORWARD "$T/.err" && pass "ATTNKIT_CUDA_FORWARD='$v': named" ||
        fail "ATTNKIT_CUDA_FORWARD='$v': the message should name it"
done
m="$AK_TOP/tests/model/llama_gqa_llama3"
python3 -c 'import sys; sys.path.insert(0, sys.argv[1] + "/tests/py"); import akstream as s, numpy as np
sys.stdout.buffer.write(s.pack_stream([s.doc("d0", [s.tensor("tokens", np.arange(20, dtype=np.int32))])]))' \
    "$AK_TOP" >"$T/tok.ak"
ok "embed" embed -m "$m" -o "$T/emb.ak" "$T/tok.ak"
# (to stdout: -o FILE would be in the header's history)
attend -m "$m" --device cpu --hidden --logits all "$T/emb.ak" >"$T/a0.ak" &&
    pass "attend --device cpu" || fail "attend --device cpu"
for v in 1 2; do
    ATTNKIT_CUDA_FORWARD=$v attend -m "$m" --device cpu --hidden --logits all "$T/emb.ak" \
        >"$T/a$v.ak" && pass "attend --device cpu, ATTNKIT_CUDA_FORWARD=$v" ||
        fail "attend --device cpu, ATTNKIT_CUDA_FORWARD=$v"
    same_file "ATTNKIT_CUDA_FORWARD=$v changes nothing on the CPU" "$T/a$v.ak" "$T/a0.ak"
done
done_testing
