#!/usr/bin/env bash
# Release build of the STRIDE CLI images: one `docker build` per containers/<cli>/Dockerfile, tagged
# <cli>:<version from that CLI's pyproject.toml>, optionally pushed and converted to Apptainer SIF files.
#
#   ci/build-images.sh [--push] [--latest] [--apptainer] [--registry REGISTRY] [--only CLI]... [--base IMAGE]
#                      [--wheelhouse DIR] [--ca-bundle FILE] [--torch-index-url URL] [--dry-run]
#
#   --registry R   prefix tags with R/ (default: $STRIDE_REGISTRY, else none); required by --push
#   --push         docker push every tag after all builds succeeded
#   --latest       also tag (and push) <cli>:latest
#   --apptainer    also build dist/containers/<cli>_<version>.sif from the docker-daemon image
#   --only CLI     build only this CLI (repeatable)
#   --base IMAGE   the Debian bookworm base of every image (default: debian:bookworm-slim; a local one
#                  from ci/make-base-image.sh where no registry is reachable)
#   --wheelhouse D install every wheel from folder D (served on 127.0.0.1 for the build; no index):
#                  how the CPU-torch check images are built offline (make images)
#   --ca-bundle F  CA bundle for pip in the builder stage (a TLS-inspecting proxy; default
#                  $STRIDE_CA_BUNDLE); it never reaches the final image
#   --torch-index-url U  where torch comes from (default: PyPI's CUDA wheel; .../whl/cpu for CPU only)
#   --dry-run      print the commands instead of running them
#
# Builds use the host network (docker build --network host) and work with the classic builder and
# BuildKit alike. Environment: PYTHON (>= 3.11, default python3) reads the pyproject files; DOCKER
# (default docker); DOCKER_BUILD_ARGS adds options to every docker build.
set -euo pipefail

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

PUSH=0
LATEST=0
BASE=
WHEELHOUSE=
CA_BUNDLE=${STRIDE_CA_BUNDLE:-}
TORCH_INDEX_URL=
APPTAINER=0
DRY_RUN=0
REGISTRY=${STRIDE_REGISTRY:-}
ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --push) PUSH=1 ;;
    --latest) LATEST=1 ;;
    --apptainer) APPTAINER=1 ;;
    --base) BASE=${2:?--base needs an image}; shift ;;
    --wheelhouse) WHEELHOUSE=${2:?--wheelhouse needs a folder}; shift ;;
    --ca-bundle) CA_BUNDLE=${2:?--ca-bundle needs a file}; shift ;;
    --torch-index-url) TORCH_INDEX_URL=${2:?--torch-index-url needs a URL}; shift ;;
    --dry-run) DRY_RUN=1 ;;
    --registry) REGISTRY=${2:?--registry needs a value}; shift ;;
    --registry=*) REGISTRY=${1#*=} ;;
    --only) ONLY+=("${2:?--only needs a CLI name}"); shift ;;
    --only=*) ONLY+=("${1#*=}") ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-images: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
REGISTRY=${REGISTRY%/}

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DOCKER=${DOCKER:-docker}

run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '+'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

if [ "$PUSH" = 1 ] && [ -z "$REGISTRY" ]; then
  echo "build-images: --push needs --registry (or STRIDE_REGISTRY); refusing to push to Docker Hub's library/" >&2
  exit 2
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "build-images: $PYTHON must be Python >= 3.11 (tomllib); set PYTHON=..." >&2
  exit 2
fi
if ! ls requirements/images/*.txt > /dev/null 2>&1; then
  echo "build-images: requirements/images/ is missing; the images install those pinned subsets of the lock" >&2
  exit 1
fi
# Never release images whose recipes lag behind the packages they install.
"$PYTHON" ci/render_containers.py --check

if [ "$DRY_RUN" = 0 ]; then
  if ! "$DOCKER" info > /dev/null 2>&1; then
    echo "build-images: no Docker daemon reachable (docker info failed); nothing was built" >&2
    exit 1
  fi
  if [ "$APPTAINER" = 1 ] && ! command -v apptainer > /dev/null; then
    echo "build-images: --apptainer given but apptainer is not on PATH" >&2
    exit 1
  fi
fi

declare -A VERSION=()
CLIS=()
while read -r cli version _kind; do
  VERSION[$cli]=$version
  CLIS+=("$cli")
done < <("$PYTHON" ci/render_containers.py --list)

if [ ${#ONLY[@]} -gt 0 ]; then
  for cli in "${ONLY[@]}"; do
    [ -n "${VERSION[$cli]:-}" ] || { echo "build-images: unknown CLI $cli (known: ${CLIS[*]})" >&2; exit 2; }
  done
  CLIS=("${ONLY[@]}")
fi

VCS_REF=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$VCS_REF" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then
  VCS_REF="$VCS_REF-dirty"
  echo "build-images: warning: the working tree has uncommitted changes; revision label is $VCS_REF" >&2
fi
BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -r -a EXTRA <<< "${DOCKER_BUILD_ARGS:-}"
[ -n "$BASE" ] && EXTRA+=(--build-arg "BASE_IMAGE=$BASE")
[ -n "$TORCH_INDEX_URL" ] && EXTRA+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")

# build/image-inputs/ is copied into the builder stage only: the CA bundle, if any.
INPUTS=build/image-inputs
run rm -rf "$INPUTS"
run mkdir -p "$INPUTS"
if [ -n "$CA_BUNDLE" ]; then
  [ -f "$CA_BUNDLE" ] || { echo "build-images: CA bundle $CA_BUNDLE not found" >&2; exit 2; }
  run cp "$CA_BUNDLE" "$INPUTS/ca.crt"
fi
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2> /dev/null
  [ "$DRY_RUN" = 1 ] || rm -f "$INPUTS/ca.crt"
}
trap cleanup EXIT
if [ -n "$WHEELHOUSE" ]; then
  [ -d "$WHEELHOUSE" ] || { echo "build-images: wheelhouse $WHEELHOUSE is not a folder" >&2; exit 2; }
  # A fixed port when it is free: the port is part of the PIP_OPTIONS build argument, and a new value
  # would miss the layer cache of every RUN after it (a full rebuild, torch included, each time).
  PORT=${STRIDE_WHEELHOUSE_PORT:-$("$PYTHON" -c '
import socket
s = socket.socket()
try:
    s.bind(("127.0.0.1", 8765))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')}
  if [ "$DRY_RUN" = 0 ]; then
    "$PYTHON" -m http.server "$PORT" --bind 127.0.0.1 --directory "$WHEELHOUSE" > /dev/null 2>&1 &
    SERVER_PID=$!
  fi
  EXTRA+=(--build-arg "PIP_OPTIONS=--no-index --find-links http://127.0.0.1:$PORT/")
fi

BUILT=()
SIFS=()
for cli in "${CLIS[@]}"; do
  tag="${REGISTRY:+$REGISTRY/}$cli:${VERSION[$cli]}"
  echo "== $tag (containers/$cli/Dockerfile)"
  # The builder stage first, tagged <cli>:<version>-builder (never pushed): an untagged stage is a
  # dangling image that `docker image prune` deletes, and with it the layer cache (torch, the
  # requirements) of the next build. The second build takes every builder layer from that cache.
  build=("$DOCKER" build --network host --file "containers/$cli/Dockerfile" "${EXTRA[@]}")
  run "${build[@]}" --target builder --tag "$cli:${VERSION[$cli]}-builder" .
  run "${build[@]}" \
    --build-arg "VCS_REF=$VCS_REF" \
    --build-arg "BUILD_DATE=$BUILD_DATE" \
    --tag "$tag" \
    .
  BUILT+=("$tag")
  if [ "$LATEST" = 1 ]; then
    run "$DOCKER" tag "$tag" "${tag%:*}:latest"
    BUILT+=("${tag%:*}:latest")
  fi
  if [ "$APPTAINER" = 1 ]; then
    sif="dist/containers/${cli}_${VERSION[$cli]}.sif"
    run mkdir -p dist/containers
    run apptainer build --force "$sif" "docker-daemon://$tag"
    SIFS+=("$sif")
  fi
done

if [ "$PUSH" = 1 ]; then
  for tag in "${BUILT[@]}"; do
    run "$DOCKER" push "$tag"
  done
fi

echo
if [ "$DRY_RUN" = 1 ]; then
  echo "Dry run: nothing was built. Would build:"
else
  echo "Built:"
fi
for tag in "${BUILT[@]}"; do
  if [ "$DRY_RUN" = 1 ]; then
    echo "  $tag"
  else
    printf '  %-50s %s  %s\n' "$tag" "$("$DOCKER" image inspect --format '{{.Id}}' "$tag" | cut -c8-19)" \
      "$("$DOCKER" image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}')"
  fi
done
for sif in "${SIFS[@]}"; do
  echo "  $sif"
done
if [ "$PUSH" = 1 ]; then
  if [ "$DRY_RUN" = 1 ]; then echo "Would push: ${BUILT[*]}"; else echo "Pushed: ${BUILT[*]}"; fi
fi
