# The public surface: libattnkit.so exports only the ak_* functions the
# installed headers declare (built with -fvisibility=hidden, AK_API marks
# the API); `make install` installs exactly the public headers, and each
# compiles on its own.
. "$AK_TOP/tests/lib.sh"
so="$AK_BUILD/libattnkit.so"
want="ak.h attention.h device.h evict.h filter.h generate.h io.h kvcache.h mask.h metrics.h model.h policy.h protect.h prune.h prune_embed.h sample.h safetensors.h select.h
segment.h stream.h tensor.h tokenizer.h"

ok "nm -D reads $so" nm -D --defined-only "$so"
# the ASan build's odr indicators and init hooks are the sanitizer's, not ours
awk '$2 ~ /^[TDBRVWi]$/ {print $3}' "$T/.out" | grep -v '^__odr_asan\|^_init$\|^_fini$' |
    sed 's/@.*//' | sort -u > "$T/syms"
n=$(wc -l < "$T/syms")
[ "$n" -gt 50 ] && pass "$n symbols exported" || fail "only $n symbols exported"
bad=$(grep -v '^ak_' "$T/syms" | tr '\n' ' ')
is "every exported symbol is ak_*" "$bad" ""
for s in ak_cli_init ak_die ak_usage_error ak_parse_long ak_model_dir ak_cuda_attention \
         ak_cuda_attention_time ak_cuda_attention_tc_time ak_cuda_device_count tk_vocab_find; do
    grep -qx "$s" "$T/syms" && fail "$s (internal) is exported" || pass "$s is not exported"
done

make -s -C "$AK_TOP" install-headers DESTDIR="$T/root" PREFIX=/usr >"$T/.mk" 2>&1 ||
    fail "make install-headers: $(cat "$T/.mk")"
inc="$T/root/usr/include"
got=$(cd "$inc/attnkit" && ls | sort | tr '\n' ' ')
is "installed headers are the public list" "$got" "$(echo $want | tr ' ' '\n' | sort | tr '\n' ' ')"
for h in $want; do
    printf '#include <attnkit/%s>\n' "$h" > "$T/one.c"
    ok "$h compiles on its own" ${CC:-cc} -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only \
        -I"$inc" "$T/one.c"
done
# every exported function is declared in an installed header
cat "$inc"/attnkit/*.h > "$T/all.h"
undeclared=$(while read -r s; do grep -q "[ *]$s(" "$T/all.h" || printf '%s ' "$s"; done < "$T/syms")
is "every exported function is declared in an installed header" "$undeclared" ""
# and every AK_API declaration is exported
missing=$(sed -n 's/^AK_API [^(]*[ *]\(ak_[a-z0-9_]*\)(.*/\1/p' "$T/all.h" | sort -u |
          while read -r s; do grep -qx "$s" "$T/syms" || printf '%s ' "$s"; done)
is "every AK_API function is exported" "$missing" ""
done_testing
