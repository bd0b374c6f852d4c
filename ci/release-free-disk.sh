#!/usr/bin/env bash
# GitHub's hosted runners have ~14 GB free; a CUDA torch image needs several. Remove toolchains the
# release does not use (only on a CI runner: refuses to run elsewhere).
set -euo pipefail
[ "${GITHUB_ACTIONS:-}" = true ] || { echo "release-free-disk: only for GitHub Actions runners" >&2; exit 2; }
df -h /
sudo rm -rf /usr/share/dotnet /usr/local/lib/android /opt/ghc /opt/hostedtoolcache/CodeQL /usr/local/share/boost
sudo docker image prune --all --force > /dev/null || true
df -h /
