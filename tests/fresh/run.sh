#!/usr/bin/env bash
# make fresh: what a newcomer gets on a brand-new minimal Debian 12, checked in two chroots.
#  1. build: debootstrap --variant=minbase + git make ca-certificates sudo; a clone of this
#     checkout's HEAD; `make test` then `make wheel`, as root, with a clean environment.
#  2. runtime: minbase + python3 python3-venv ca-certificates only (no compiler, no -dev
#     package); the wheel from 1 is pip-installed into a venv and must deliver a signed event
#     over HTTPS to a loopback receiver whose CA is trusted only through the system store.
# The pristine trees are cached in /var/cache/brandhooks (tests/fresh/rootfs.sh). Needs root.
# `run.sh wheel dist/brandhooks-...whl` runs step 2 alone, on a wheel built elsewhere.
set -euo pipefail
{  # read to the end before running: an edit made meanwhile cannot derail a run
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "make fresh needs root (debootstrap, chroot, mount)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/brandhooks-fresh.XXXXXX)
mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -R "${mounted[i]}" || umount -lR "${mounted[i]}" || true; done
  # --one-file-system: never reach into a mount that failed to come off.
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TLS-inspecting proxy that this host trusts (its CA added in /usr/local/share/ca-certificates)
# must be trusted inside too: by the system store, and by pip, which otherwise uses its own.
host_cas=$(ls /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
proxy_env=()
[ -z "$host_cas" ] || proxy_env=(PIP_CERT=/etc/ssl/certs/ca-certificates.crt)

# Runs a command as root inside the tree $1 with a clean environment, as a login would.
in_chroot() {
  local root=$1; shift
  if [ ! -e "$root/proc/self" ]; then
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    # debootstrap writes no /etc/hosts; Debian's installer does (the tests use "localhost").
    [ -e "$root/etc/hosts" ] || printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
    mount -t proc proc "$root/proc" && mounted+=("$root/proc")
    mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev" && mounted+=("$root/dev")
    if [ -n "$host_cas" ]; then
      cp $host_cas "$root/usr/local/share/ca-certificates/"
      chroot "$root" update-ca-certificates >/dev/null 2>&1
    fi
  fi
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb "${proxy_env[@]}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c "$*"
}

seconds() { date +%s; }
stamp() { echo "== $(date -u +%T) $*"; }
t0=$(seconds) t1=$t0 t2=$t0 t3=$t0
if [ "${1:-}" = wheel ]; then
  wheel=$(realpath "$2")
else
  "$here/rootfs.sh" build "git make ca-certificates sudo" "$work/build"
  t1=$(seconds)

  head=$(git -C "$repo" rev-parse HEAD)
  echo "== clone $repo at $head (committed work only)"
  git clone -q "$repo" "$work/build/root/brandhooks"
  git -C "$work/build/root/brandhooks" checkout -q "$head"

  # Packages must not start services in the chroot: postgresql's postinst would start its
  # cluster on port 5432 and leave it running (holding the chroot's mounts) after the run.
  # The tests start their own throwaway servers (tests/pg/pgserver.py). Debian's standard
  # answer: a policy-rc.d that denies every start (exit 101).
  printf '#!/bin/sh\nexit 101\n' > "$work/build/usr/sbin/policy-rc.d"
  chmod 755 "$work/build/usr/sbin/policy-rc.d"
  stamp "make test in the fresh chroot (cold: system packages, Python packages, full build)"
  in_chroot "$work/build" "cd /root/brandhooks && make test"
  t2=$(seconds)
  stamp "make wheel in the fresh chroot"
  in_chroot "$work/build" "cd /root/brandhooks && make wheel"
  t3=$(seconds)
  wheel=$(echo "$work"/build/root/brandhooks/dist/*.whl)
fi

"$here/rootfs.sh" runtime "python3 python3-venv ca-certificates" "$work/runtime"
cp "$wheel" "$here/wheel_test.py" "$work/runtime/root/"
stamp "the wheel where there is no compiler and no -dev package"
in_chroot "$work/runtime" '
  set -euo pipefail
  cd /root
  if command -v cc || command -v c++ || dpkg-query -W -f="\${Status} \${Package}\n" | grep "ok installed .*-dev$"; then
    echo "the runtime chroot has a compiler or -dev packages" >&2; exit 1
  fi
  # A certificate for 127.0.0.1, trusted only by adding it to the system store.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=brandhooks fresh test" \
    -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem 2>/dev/null
  cp cert.pem /usr/local/share/ca-certificates/brandhooks-fresh-test.crt
  update-ca-certificates >/dev/null 2>&1
  python3 -m venv venv
  venv/bin/pip install -q --disable-pip-version-check ./brandhooks-*.whl
  # The wheel carries an OpenSSL built for Debian (OPENSSLDIR /usr/lib/ssl). Remove that
  # directory, as on distributions that keep certificates elsewhere: only the lookup in the
  # usual bundle paths (here /etc/ssl/certs/ca-certificates.crt) can find the test CA now.
  rm -rf /usr/lib/ssl
  PATH=/root/venv/bin:$PATH python wheel_test.py cert.pem key.pem'
t4=$(seconds)

echo "== make fresh: pristine build tree $((t1 - t0)) s, make test $((t2 - t1)) s," \
     "make wheel $((t3 - t2)) s, wheel test $((t4 - t3)) s, total $((t4 - t0)) s"
exit
}
