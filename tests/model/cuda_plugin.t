# The CUDA side is a plugin, libattnkit-cuda.so (lib/cuda/ak_cuda.h): no
# program links cuBLAS or the CUDA runtime, so a CUDA build costs the
# programs that never reach a GPU nothing (linked in, those libraries cost
# every process about 155 MB of resident memory); the plugin links them,
# and a program loads it only when it asks for a device on a machine with
# the NVIDIA driver.  Where the driver is missing (CI, laptops) a stub
# libcuda.so.1 stands in for it, so the loading path itself runs: the
# plugin loads, its runtime finds no device, and --device cuda says so.
. "$AK_TOP/tests/lib.sh"

bindir=$(dirname "$(command -v attend)")
for p in "$bindir"/*; do
    [ -x "$p" ] || continue
    n=$(readelf -d "$p" 2>/dev/null | grep NEEDED | grep -c 'cublas\|cudart')
    is "$(basename "$p") links no CUDA library" "$n" 0
done

plugin="$AK_BUILD/libattnkit-cuda.so"
if [ ! -f "$plugin" ]; then
    pass "# SKIP the plugin: this build has no CUDA (no nvcc, or CUDA=0)"
    done_testing
fi
needed=$(readelf -d "$plugin" | grep NEEDED | grep -c 'cublas\|cudart')
[ "$needed" -ge 2 ] && pass "the plugin links cuBLAS and the CUDA runtime" ||
    fail "the plugin links $needed of cuBLAS and the CUDA runtime"

M="$AK_TOP/tests/model/gpt2_tiny"
# loaded SUMMARY CMD...: runs CMD with the loader's log of the objects it
# opens, and says whether cuBLAS was among them
loaded() {
    rm -f "$T"/ld.*
    LD_DEBUG=files LD_DEBUG_OUTPUT="$T/ld" "$@" >"$T/.out" 2>"$T/.err"
    rc=$?
    grep -q 'file=libcublas' "$T"/ld.* 2>/dev/null && printf yes || printf no
    return $rc
}
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    pass "# SKIP the driverless cases: this machine has the NVIDIA driver (make gpu-check runs the GPU)"
else
    is "no driver: attend --device cuda loads no CUDA library" \
        "$(loaded attend -m "$M" --device cuda </dev/null)" no
    is "no driver: the one error line says why" "$(cat "$T/.err")" \
        "attend: --device cuda: no CUDA device is available (no NVIDIA driver (libcuda.so.1 not found))"
    mkdir "$T/stub"
    echo 'int ak_stub_driver;' >"$T/stub/s.c"
    ${CC:-cc} -shared -fPIC -o "$T/stub/libcuda.so.1" "$T/stub/s.c"
    is "a driver (stub): attend --device cuda loads the plugin and its libraries" \
        "$(LD_LIBRARY_PATH="$T/stub" loaded attend -m "$M" --device cuda </dev/null)" yes
    is "a driver (stub) and no device: the one error line" "$(cat "$T/.err")" \
        "attend: --device cuda: no CUDA device is available"
    # the plugin is looked for beside the object first (here: a copy of
    # attend in a folder of its own), then in the build directory: a fake
    # one beside it that reports a device is taken (attend goes on to read
    # its input); one from another build (another table version), or not a
    # library at all, is passed over for the build's
    mkdir "$T/bin"
    cp "$(command -v attend)" "$T/bin/attend"
    cat >"$T/fake.c" <<'C'
static int one(void) { return 1; }
static const struct { int (*device_count)(void); void *rest[12]; } api = {one};
const void *ak_cuda_plugin_api(int version) { return version == VERSION ? &api : 0; }
C
    plug="$T/bin/libattnkit-cuda.so"
    ${CC:-cc} -shared -fPIC -DVERSION=1 -o "$plug" "$T/fake.c"
    LD_LIBRARY_PATH="$T/stub" "$T/bin/attend" -m "$M" --device cuda </dev/null >/dev/null 2>"$T/.err"
    is "a plugin beside the program is taken first" "$(cat "$T/.err")" \
        "attend: no stream on standard input (did the program before it fail?)"
    ${CC:-cc} -shared -fPIC -DVERSION=99 -o "$plug" "$T/fake.c"
    LD_LIBRARY_PATH="$T/stub" "$T/bin/attend" -m "$M" --device cuda </dev/null >/dev/null 2>"$T/.err"
    is "a plugin of another table version is passed over" "$(cat "$T/.err")" \
        "attend: --device cuda: no CUDA device is available"
    echo junk >"$plug"
    LD_LIBRARY_PATH="$T/stub" "$T/bin/attend" -m "$M" --device cuda </dev/null >/dev/null 2>"$T/.err"
    is "a file that is no library is passed over" "$(cat "$T/.err")" \
        "attend: --device cuda: no CUDA device is available"
    S=$(ls "${AK_MODELS:-/nonexistent}"/smollm2/*.gguf 2>/dev/null | head -1)
    if [ -n "$S" ]; then
        printf 'hello world\n' >"$T/h.txt"
        is "a driver (stub): tokenize loads no CUDA library" \
            "$(LD_LIBRARY_PATH="$T/stub" loaded tokenize -m "$S" -o "$T/h.ak" "$T/h.txt"; echo " $?")" "no 0"
        embed -m "$S" "$T/h.ak" >"$T/e.ak"
        is "a driver (stub): attend --device cpu runs and loads no CUDA library" \
            "$(LD_LIBRARY_PATH="$T/stub" loaded attend -m "$S" --device cpu "$T/e.ak"; echo " $?")" "no 0"
    else
        pass "# SKIP tokenize and attend --device cpu: no SmolLM2 under \$AK_MODELS"
    fi
fi
done_testing
