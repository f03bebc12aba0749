#!/bin/sh
# .ci/fresh-root.sh - proves the README's two commands work on their first
# run on a fresh Debian machine: builds a minimal Debian root with
# debootstrap (Debian's packages only, plus make to type the commands),
# gives it this machine's apt sources and pip configuration so it reaches
# the same registries, copies a clean clone of this checkout (and shared/)
# into it, and runs `make demo` then `make test` there as root.  Anything
# the set-up forgets to install fails here.  Needs root (debootstrap,
# chroot, mount).  The root is removed afterwards.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "fresh-root: needs root (debootstrap, chroot)" >&2; exit 1; }

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "fresh-root: installing debootstrap" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || apt-get update
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# The suite and mirror this machine uses.
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

root=$(mktemp -d "${TMPDIR:-/var/tmp}/attnkit-root.XXXXXX")
cleanup() {
    for m in dev proc sys; do umount -R "$root/$m" 2>/dev/null || umount -l "$root/$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT INT TERM HUP

start=$(date +%s)
echo "fresh-root: debootstrap $suite from $mirror into $root" >&2
debootstrap --variant=minbase --include=make,ca-certificates "$suite" "$root" "$mirror" \
    >"$root.log" 2>&1 || { tail -30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
echo "fresh-root: root ready in $(( $(date +%s) - start ))s" >&2

# The same registries as this machine: apt sources and settings, pip's
# configuration, name resolution.
rm -rf "$root/etc/apt/sources.list.d" "$root/etc/apt/sources.list"
mkdir -p "$root/etc/apt/sources.list.d" "$root/etc/apt/apt.conf.d"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && cp "$f" "$root$f"
done
for f in /etc/apt/apt.conf.d/*; do [ -f "$f" ] && cp "$f" "$root/etc/apt/apt.conf.d/"; done
for f in /etc/pip.conf /etc/resolv.conf /etc/hosts; do [ -f "$f" ] && cp -L "$f" "$root$f"; done
# The certificate authorities this machine trusts (a registry mirror or
# proxy may be signed by a local one), for apt and pip alike.
if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
[ -d /opt/wheels ] && mkdir -p "$root/opt" && cp -r /opt/wheels "$root/opt/"

# A clean clone of what is committed here, and shared/ beside it as on a
# developer's machine.
mkdir -p "$root/src"
git clone -q "$top" "$root/src/attnkit"
[ -d "$top/../shared" ] && cp -rH "$top/../shared" "$root/src/shared"

mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"

# A login's environment, not this one's: only pip's settings come along.
envs="HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 CI=${CI:-}"
for v in PIP_CERT PIP_DEFAULT_TIMEOUT PIP_DISABLE_PIP_VERSION_CHECK PIP_FIND_LINKS PIP_INDEX_URL \
         PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST http_proxy https_proxy no_proxy; do
    eval "val=\${$v:-}"
    [ -n "$val" ] && envs="$envs $v=$val"
done
echo "fresh-root: make demo" >&2
# shellcheck disable=SC2086
chroot "$root" /usr/bin/env -i $envs sh -c 'cd /src/attnkit && make demo' >"$top/build-fresh-demo.log" 2>&1 || {
    echo "fresh-root: make demo failed on a fresh root:" >&2; tail -40 "$top/build-fresh-demo.log" >&2; exit 1; }
echo "fresh-root: make demo passed ($(( $(date +%s) - start ))s)" >&2
echo "fresh-root: make test" >&2
# shellcheck disable=SC2086
chroot "$root" /usr/bin/env -i $envs sh -c 'cd /src/attnkit && make test' 2>&1 | tee "$top/build-fresh-test.log" |
    sed 's/^/fresh-root: /' | grep -E '^fresh-root: (# |[0-9]+ passed)' || true
tail -1 "$top/build-fresh-test.log" | grep -qE '^[0-9]+ passed, 0 failed$' || {
    echo "fresh-root: make test failed on a fresh root:" >&2; tail -60 "$top/build-fresh-test.log" >&2; exit 1; }
echo "fresh-root: both commands passed on a fresh $suite root in $(( $(date +%s) - start ))s" >&2
