#!/usr/bin/env bash
# `make pants-check`: run Pants 2 on the repository with what this kind of machine has. pants.toml names
# Pants 2.27, which needs the `pants` launcher (a download from GitHub, unreachable here); the newest Pants
# on the package index that runs from a plain virtualenv is pantsbuild.pants 2.17.1 (cp39 wheels only), so
# this script makes a Python 3.9 virtualenv with that pin and runs it with two overrides: --pants-version
# and the 2.17 name of the Ruff backend (2.27 renamed it ...ruff.check).
#
#   ci/pants-check.sh
#
# Checks: `pants tailor --check ::` (every source file owned by a target), `pants list ::` (the BUILD files
# parse; nine python_distribution targets), `pants peek` of those nine (name and version equal to their
# pyproject.toml), `pants dependencies ::` (every import owned, against requirements/pants.lock), then
# `pants test ::` (every test file in its own sandbox, the end-to-end ones on the real data at STRIDE_DATA)
# and `pants package ::` (sdist and wheel of the nine under dist/, whose requirements ci/check_wheels.py
# compares with the pyproject.toml files). The pex binary Pants needs for Python rules is built here from
# PyPI's pex (Pants downloads it from GitHub).
# This machine's pip reads a site-wide configuration (/etc/xdg/pip/pip.conf) with a constraints file; pex's
# pip then turned each constraint into a requirement without a link and stopped on an AssertionError while
# downloading any locked wheel. Pants' processes get PIP_CONFIG_FILE=/dev/null: pex alone decides.
# Not part of `make test`: minutes of cold start and the package index, and `pants test ::` runs every file
# in a fresh process (PANTS_TEST_ARGS narrows it, e.g. PANTS_TEST_ARGS=packages/stride-core::).
# Environment: PANTS_PYTHON [python3.9, else pyenv's 3.9], PANTS_VENV [build/pants-venv], PYTHON [python3,
# >= 3.11: tomllib], STRIDE_DATA [../shared/data], PANTS_TEST_ARGS [::].
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.17.1
PYTHON=${PYTHON:-python3}
venv=${PANTS_VENV:-build/pants-venv}
is_39() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))' > /dev/null 2>&1; }
py=${PANTS_PYTHON:-}
if [ -z "$py" ]; then
  # (a pyenv shim named python3.9 may exist without that version installed: each candidate is run)
  for candidate in python3.9 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9.*/bin/python; do
    if is_39 "$candidate"; then py=$candidate; break; fi
  done
fi
if [ -z "$py" ] || ! is_39 "$py"; then
  echo "pants-check: Pants $version needs CPython 3.9 (its only wheels are cp39); set PANTS_PYTHON=..." >&2
  exit 2
fi
start=$SECONDS
if [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("pantsbuild.pants"))' 2> /dev/null)" != "$version" ]; then
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet "pantsbuild.pants==$version"
  echo "pants-check: $venv with pantsbuild.pants==$version [$((SECONDS - start)) s]"
fi
# Pants runs its Python rules with the pex binary, which it downloads from GitHub (unreachable here): build
# the same pex version from PyPI's wheel and hand it over as a file URL with its own hash and size.
pex_version=2.1.137
pex_file=$PWD/build/pex-$pex_version.pex
if [ ! -s "$pex_file" ]; then
  rm -rf build/pex-src
  "$PYTHON" -m pip install --quiet --target build/pex-src "pex==$pex_version"
  PYTHONPATH=build/pex-src "$PYTHON" -m pex "pex==$pex_version" -c pex -o "$pex_file"
fi
pex_sha=$(sha256sum "$pex_file" | cut -d' ' -f1)
pex_size=$(stat -c %s "$pex_file")
known=()
for platform in linux_x86_64 linux_arm64 macos_x86_64 macos_arm64; do
  known+=("'v$pex_version|$platform|$pex_sha|$pex_size'")
done
# Pants' work and pid folders under build/ (ignored), not .pants.d/ and .pids/ in the checkout.
pants=("$venv/bin/pants" "--pants-version=$version" --no-pantsd --no-dynamic-ui
  "--pex-cli-version=v$pex_version" "--pex-cli-url-template=file://$pex_file"
  "--pex-cli-known-versions=[$(IFS=,; echo "${known[*]}")]"
  "--ca-certs-path=${PANTS_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
  "--subprocess-environment-env-vars=['PIP_CONFIG_FILE=/dev/null']"
  "--python-repos-find-links=['file:///opt/wheels']" "--python-bootstrap-search-path=['<PATH>','<PYENV>']"
  "--pants-workdir=$PWD/build/pants.d" "--pants-subprocessdir=$PWD/build/pants.pids"
  "--backend-packages=['pants.backend.python','pants.backend.experimental.python.lint.ruff','pants.backend.python.typecheck.mypy']")

t=$SECONDS
"${pants[@]}" tailor --check ::
echo "pants-check: tailor --check passed [$((SECONDS - t)) s]"
t=$SECONDS
targets=$("${pants[@]}" list ::)
mapfile -t dist_targets < <(grep ':dist$' <<< "$targets")
dists=${#dist_targets[@]}
echo "pants-check: $(wc -l <<< "$targets") targets, $dists distributions [$((SECONDS - t)) s]"
[ "$dists" = 9 ] || { echo "pants-check: expected 9 python_distribution targets (:dist), found $dists" >&2; exit 1; }
t=$SECONDS
# Each distribution's name and version as Pants reads them from its BUILD, against its pyproject.toml.
"${pants[@]}" peek "${dist_targets[@]}" | "$PYTHON" -c '
import json, sys, tomllib
problems = 0
for target in json.load(sys.stdin):
    folder = target["address"].split(":")[0]
    project = tomllib.load(open(f"{folder}/pyproject.toml", "rb"))["project"]
    got = (target["provides"]["name"], target["provides"]["version"])
    want = (project["name"], project["version"])
    if got != want:
        print(f"pants-check: {folder}:dist provides {got}, its pyproject.toml {want}", file=sys.stderr)
        problems += 1
sys.exit(problems > 0)'
echo "pants-check: peek of the $dists distributions equals their pyproject.toml [$((SECONDS - t)) s]"
t=$SECONDS
# Dependency inference over every target, against requirements/pants.lock (imports no target owns fail).
"${pants[@]}" dependencies :: > /dev/null
echo "pants-check: dependencies :: inferred for every target [$((SECONDS - t)) s]"
t=$SECONDS
# pants.toml passes STRIDE_DATA to the tests: an absolute path, since each test runs in its own sandbox.
STRIDE_DATA=$(realpath "${STRIDE_DATA:-../shared/data}")
export STRIDE_DATA
read -ra test_args <<< "${PANTS_TEST_ARGS:-::}"
"${pants[@]}" test "${test_args[@]}"
echo "pants-check: test ${test_args[*]} passed [$((SECONDS - t)) s]"
t=$SECONDS
rm -rf dist/*.whl dist/*.tar.gz
"${pants[@]}" package ::
"$PYTHON" ci/check_wheels.py dist
echo "pants-check: package :: wrote $(find dist -maxdepth 1 -name '*.whl' | wc -l) wheels [$((SECONDS - t)) s]"
echo "pants-check: passed in $((SECONDS - start)) s"
