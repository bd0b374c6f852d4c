#!/usr/bin/env bash
# The release version, from one place: the version every pyproject.toml of the repository declares
# (they are released together). Prints it; exits 1 if they disagree, or if a tag is given (v<version>,
# e.g. the GITHUB_REF_NAME of a tag push) that does not name it.
#
#   ci/release-version.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
versions=$("${PYTHON:-python3}" ci/render_containers.py --list | awk '{print $2}' | sort -u)
for pyproject in schemas/pyproject.toml packages/*/pyproject.toml; do
  versions+=$'\n'$(sed -n 's/^version = "\(.*\)"$/\1/p' "$pyproject")
done
versions=$(printf '%s\n' "$versions" | sort -u)
if [ "$(printf '%s\n' "$versions" | wc -l)" != 1 ]; then
  echo "release-version: the pyproject files declare several versions: $(echo "$versions" | tr '\n' ' ')" >&2
  exit 1
fi
if [ -n "${1:-}" ] && [ "$1" != "v$versions" ]; then
  echo "release-version: tag $1 does not name version $versions (expected v$versions)" >&2
  exit 1
fi
echo "$versions"
