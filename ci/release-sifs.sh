#!/usr/bin/env bash
# Release step: build each CLI's SIF with the real `apptainer build` from its pushed image, push it to the
# registry as an ORAS artifact (<registry>/<cli>-sif:<version>) and attach it to the GitHub release of
# TAG (GitHub refuses release assets over 2 GiB: those are only in the registry, which the release
# notes say).
#
#   ci/release-sifs.sh REGISTRY VERSION TAG [--dry-run]
# Environment: APPTAINER_DOCKER_USERNAME/PASSWORD for a private registry; GH_TOKEN for `gh release`.
set -euo pipefail
registry=${1:?registry}
version=${2:?version}
tag=${3:?tag}
dry=${4:-}
cd "$(dirname "$0")/.."
run() { if [ "$dry" = --dry-run ]; then printf '+'; printf ' %q' "$@"; printf '\n'; else "$@"; fi; }
limit=$((2 * 1024 * 1024 * 1024))
mkdir -p dist/containers
attach=()
notes="SIF files of STRIDE $version (built with apptainer build from $registry/<cli>:$version):"
while read -r cli _version _kind; do
  sif=dist/containers/${cli}_$version.sif
  run apptainer build --force "$sif" "docker://$registry/$cli:$version"
  run apptainer push "$sif" "oras://$registry/$cli-sif:$version"
  if [ "$dry" = --dry-run ] || [ "$(stat -c %s "$sif")" -le "$limit" ]; then
    attach+=("$sif")
    notes+=$'\n'"- $cli: attached; also apptainer pull oras://$registry/$cli-sif:$version"
  else
    notes+=$'\n'"- $cli: over GitHub's 2 GiB asset limit: apptainer pull oras://$registry/$cli-sif:$version"
  fi
done < <("${PYTHON:-python3}" ci/render_containers.py --list)
if [ "$dry" = --dry-run ] || gh release view "$tag" > /dev/null 2>&1; then
  run gh release upload "$tag" "${attach[@]}" --clobber
  run gh release edit "$tag" --notes "$notes"
else
  run gh release create "$tag" "${attach[@]}" --title "STRIDE $version" --notes "$notes"
fi
