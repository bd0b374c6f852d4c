#!/usr/bin/env bash
# A Debian bookworm base image made locally, for engines that reach no registry: debootstrap (minbase)
# into a temporary folder, then `docker import`. Every STRIDE image builds FROM it (--base NAME).
#
#   ci/make-base-image.sh [NAME]     default NAME: stride-base:bookworm; kept if it exists already
#
# Environment: DOCKER (default docker), DEBIAN_MIRROR (default http://deb.debian.org/debian).
# Installs debootstrap with apt if missing. Needs root (debootstrap).
set -euo pipefail
name=${1:-stride-base:bookworm}
docker=${DOCKER:-docker}
if "$docker" image inspect "$name" > /dev/null 2>&1; then
  echo "make-base-image: $name exists"
  exit 0
fi
if ! command -v debootstrap > /dev/null; then
  apt-get update -q > /dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap > /dev/null
fi
root=$(mktemp -d "${TMPDIR:-/tmp}/stride-rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
start=$SECONDS
debootstrap --variant=minbase bookworm "$root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$root.log" 2>&1 ||
  { tail -n 20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# What a registry's debian:bookworm-slim also drops: apt's caches and lists.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | "$docker" import --change 'CMD ["bash"]' - "$name" > /dev/null
echo "make-base-image: $name from debootstrap in $((SECONDS - start)) s," \
  "$("$docker" image inspect --format '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1 / 1e6}')"
