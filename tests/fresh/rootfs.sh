#!/usr/bin/env bash
# Usage: rootfs.sh NAME PACKAGES DEST
# Unpacks a pristine minimal Debian 12 tree (debootstrap --variant=minbase plus PACKAGES) into
# DEST. The pristine tree is cached as a tarball outside the repository, keyed by the package
# list and the ISO week (so security updates arrive weekly), so only the first run of a week
# pays for debootstrap.
set -euo pipefail
name=$1 packages=$2 dest=$3
suite=bookworm
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
cache=${FRESH_CACHE:-/var/cache/brandhooks}
key=$(printf '%s %s %s %s' "$suite" "$packages" "$mirror" "$(date -u +%G-W%V)" | sha256sum | cut -c1-12)
tarball=$cache/$suite-minbase-$name-$key.tar.gz

if [ ! -f "$tarball" ]; then
  echo "== debootstrap $suite (minbase + $packages): once a week, a few minutes"
  mkdir -p "$cache"
  tmp=$(mktemp -d /var/tmp/brandhooks-debootstrap.XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  debootstrap --variant=minbase --include="${packages// /,}" "$suite" "$tmp" "$mirror" \
    > "$tmp.log" 2>&1 || { tail -n 30 "$tmp.log"; exit 1; }
  rm -f "$tmp.log"
  rm -f "$cache/$suite-minbase-$name-"*.tar.gz   # older weeks
  tar -C "$tmp" -czf "$tarball.part" . && mv "$tarball.part" "$tarball"
fi
echo "== pristine $name tree: $tarball"
mkdir -p "$dest"
tar -C "$dest" -xzf "$tarball"
chmod 755 "$dest"  # the root directory of a system (mktemp made it 0700)
