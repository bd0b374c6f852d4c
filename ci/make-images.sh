#!/usr/bin/env bash
# `make images`: the six images built with the local engine as check images (CPU torch), from a local
# Debian base where no registry is reachable. Run under ci/with-docker.sh (as `make images` does), which
# starts a private dockerd if none answers and stops it again; its images stay for `make test-images`.
#
#   ci/make-images.sh [build-images.sh options, e.g. --only stride-stats]
#
# Steps: 1. engine; 2. base: debian:bookworm-slim if it can be pulled, else ci/make-base-image.sh;
# 3. wheelhouse build/wheelhouse/ with every pin of requirements/images/*.txt and torch's CPU wheel
# (pip download with this machine's pip settings; torch 2.13.0+cpu, ~190 MB instead of the CUDA build's
# GBs); 4. ci/build-images.sh --wheelhouse build/wheelhouse --base BASE, with the host CA bundle for pip.
# Environment: DOCKER [docker], PIP [.venv/bin/pip], TORCH_CPU_INDEX
# [https://download.pytorch.org/whl/cpu, tried only when pip cannot find torch's CPU wheel otherwise].
set -euo pipefail
cd "$(dirname "$0")/.."
pip=${PIP:-.venv/bin/pip}
export DOCKER=${DOCKER:-docker}
start=$SECONDS

if ! "$DOCKER" info > /dev/null 2>&1; then
  echo "make-images: no Docker engine answers; run me as ci/with-docker.sh ci/make-images.sh (make images)" >&2
  exit 1
fi
echo "make-images: engine $("$DOCKER" version --format '{{.Server.Version}}') at ${DOCKER_HOST:-the default socket}"

base=debian:bookworm-slim
if ! "$DOCKER" image inspect "$base" > /dev/null 2>&1 && ! timeout 60 "$DOCKER" pull -q "$base" > /dev/null 2>&1; then
  base=stride-base:bookworm
  echo "make-images: no registry reachable; base $base from debootstrap"
  ci/make-base-image.sh "$base"
fi

wheels=build/wheelhouse
mkdir -p "$wheels"
torch_pin=$(grep -E '^torch==' requirements/lock.txt)
if ! ls "$wheels"/torch-"${torch_pin#torch==}"+cpu-*.whl > /dev/null 2>&1; then
  "$pip" download --quiet --no-deps --only-binary :all: -d "$wheels" "$torch_pin+cpu" 2> /dev/null ||
    "$pip" download --quiet --no-deps --only-binary :all: -d "$wheels" \
      --extra-index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}" "$torch_pin+cpu"
fi
# What the images install: the union of the pinned subsets in requirements/images/ (their setuptools pin
# is also the build backend of the STRIDE packages).
cat requirements/images/*.txt | grep -v -E '^(torch==|#)' | sort -u > build/image-requirements.txt
"$pip" download --quiet --no-deps --only-binary :all: -d "$wheels" -r build/image-requirements.txt \
  2>&1 | grep -v 'is ignored' >&2 || true
echo "make-images: wheelhouse $wheels: $(find "$wheels" -name '*.whl' | wc -l) wheels, $(du -sh "$wheels" | cut -f1) [$((SECONDS - start)) s]"

ca=()
[ -f /etc/ssl/certs/ca-certificates.crt ] && ca=(--ca-bundle /etc/ssl/certs/ca-certificates.crt)
DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} ci/build-images.sh --base "$base" --wheelhouse "$wheels" "${ca[@]}" "$@"
echo "make-images: done in $((SECONDS - start)) s"
