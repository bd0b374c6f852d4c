#!/usr/bin/env bash
# Release build of the STRIDE CLI images: one `docker build` per containers/<cli>/Dockerfile, tagged
# <cli>:<version from that CLI's pyproject.toml>, optionally pushed and converted to Apptainer SIF files.
#
#   ci/build-images.sh [--push] [--apptainer] [--registry REGISTRY] [--only CLI]... [--dry-run]
#
#   --registry R   prefix tags with R/ (default: $STRIDE_REGISTRY, else none); required by --push
#   --push         docker push every tag after all builds succeeded
#   --apptainer    also build dist/containers/<cli>_<version>.sif from the docker-daemon image
#   --only CLI     build only this CLI (repeatable)
#   --dry-run      print the commands instead of running them
#
# Environment: PYTHON (>= 3.11, default python3) reads the pyproject files; DOCKER_BUILD_ARGS adds
# options to every docker build (e.g. "--build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126").
set -euo pipefail

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

PUSH=0
APPTAINER=0
DRY_RUN=0
REGISTRY=${STRIDE_REGISTRY:-}
ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --push) PUSH=1 ;;
    --apptainer) APPTAINER=1 ;;
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
if [ ! -f requirements/lock.txt ]; then
  echo "build-images: requirements/lock.txt is missing; the images install with it as constraints" >&2
  exit 1
fi
# Never release images whose recipes lag behind the packages they install.
"$PYTHON" ci/render_containers.py --check

if [ "$DRY_RUN" = 0 ]; then
  if ! docker info > /dev/null 2>&1; then
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

BUILT=()
SIFS=()
for cli in "${CLIS[@]}"; do
  tag="${REGISTRY:+$REGISTRY/}$cli:${VERSION[$cli]}"
  echo "== $tag (containers/$cli/Dockerfile)"
  run docker build \
    --file "containers/$cli/Dockerfile" \
    --build-arg "VCS_REF=$VCS_REF" \
    --build-arg "BUILD_DATE=$BUILD_DATE" \
    --tag "$tag" \
    "${EXTRA[@]}" \
    .
  BUILT+=("$tag")
  if [ "$APPTAINER" = 1 ]; then
    sif="dist/containers/${cli}_${VERSION[$cli]}.sif"
    run mkdir -p dist/containers
    run apptainer build --force "$sif" "docker-daemon://$tag"
    SIFS+=("$sif")
  fi
done

if [ "$PUSH" = 1 ]; then
  for tag in "${BUILT[@]}"; do
    run docker push "$tag"
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
    printf '  %-50s %s  %s\n' "$tag" "$(docker image inspect --format '{{.Id}}' "$tag" | cut -c8-19)" \
      "$(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}')"
  fi
done
for sif in "${SIFS[@]}"; do
  echo "  $sif"
done
if [ "$PUSH" = 1 ]; then
  if [ "$DRY_RUN" = 1 ]; then echo "Would push: ${BUILT[*]}"; else echo "Pushed: ${BUILT[*]}"; fi
fi
