#!/usr/bin/env bash
# `make test-images`: check the six images built by `make images` (run under ci/with-docker.sh):
# each one's --help, that it runs as the non-root user stride (uid 1000), its version label and size;
# then the chain at smoke budget (ci/smoke.env) inside the images: the slurm/ scripts with
# STRIDE_RUNNER=docker, each step a `docker run --network host` of that CLI's image as uid 1000 with the
# data (read-only), the chain folder and the MLflow store bind-mounted; ci/check_chain.py checks the result.
#
#   ci/test-images.sh [--no-chain]
# Environment: DOCKER [docker], PYTHON [.venv/bin/python], STRIDE_DATA [../shared/data], KEEP=1 keeps the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
PYTHON=${PYTHON:-.venv/bin/python}
chain=1
[ "${1:-}" = --no-chain ] && chain=0
start=$SECONDS
problems=0
fail() { echo "test-images: FAIL: $*" >&2; problems=$((problems + 1)); }

printf '%-24s %9s %6s %8s\n' image size uid help_s
while read -r cli version _kind; do
  image=$cli:$version
  if ! "$DOCKER" image inspect "$image" > /dev/null 2>&1; then fail "$image not built (make images)"; continue; fi
  t=$SECONDS
  help=$("$DOCKER" run --rm --network host "$image" --help 2>&1) || fail "$image --help exited $?"
  help_s=$((SECONDS - t))
  grep -q "^Usage: $cli" <<< "$help" || fail "$image --help does not print $cli's usage"
  uid=$("$DOCKER" run --rm --network host --entrypoint id "$image" -u)
  [ "$uid" = 1000 ] || fail "$image runs as uid $uid, not the non-root stride (1000)"
  label=$("$DOCKER" image inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$image")
  [ "$label" = "$version" ] || fail "$image: version label '$label', pyproject says $version"
  size=$("$DOCKER" image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1 / 1e6}')
  printf '%-24s %9s %6s %8s\n' "$image" "$size" "$uid" "$help_s"
done < <("$PYTHON" ci/render_containers.py --list)

if [ "$chain" = 1 ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/stride-test-images.XXXXXX")
  [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
  set -a
  # shellcheck source=ci/smoke.env
  source ci/smoke.env
  set +a
  data=${STRIDE_DATA:-../shared/data}
  export STRIDE_DATA STRIDE_OUT=$work/chain STRIDE_ROOT=$PWD STRIDE_SLURM_DIR=$PWD/slurm STRIDE_RUNNER=docker \
    STRIDE_DOCKER_USER=1000:1000 STRIDE_IMAGE_TAG DOCKER
  STRIDE_DATA=$(cd "$data" && pwd)
  STRIDE_IMAGE_TAG=$(ci/release-version.sh)
  export MLFLOW_TRACKING_URI=sqlite:///$work/mlflow/mlflow.db
  mkdir -p "$STRIDE_OUT/logs" "$work/mlflow"
  # The artifact folder beside the shared store, not ./mlruns of whichever step comes first.
  "$PYTHON" -c 'import sys; from mlflow.tracking import MlflowClient as C; C(sys.argv[1]).create_experiment("stride", artifact_location=sys.argv[2])' \
    "$MLFLOW_TRACKING_URI" "file://$work/mlflow/artifacts" 2> /dev/null
  chown -R 1000:1000 "$work/chain" "$work/mlflow"
  read -r -a shards <<< "$STRIDE_SHARDS"
  step() {
    local t=$SECONDS log=$STRIDE_OUT/logs/$1${SLURM_ARRAY_TASK_ID:+_$SLURM_ARRAY_TASK_ID}.out
    if bash "slurm/$1.sbatch" > "$log" 2>&1; then
      echo "test-images: $1${SLURM_ARRAY_TASK_ID:+[$SLURM_ARRAY_TASK_ID]} in $((SECONDS - t)) s"
    else
      fail "$1 exited $?; its log:"; tail -n 20 "$log" >&2; return 1
    fi
  }
  chain_start=$SECONDS
  if step 01-data && step 02-stats && step 03-train; then
    for ((i = 0; i < ${#shards[@]}; i++)); do
      SLURM_ARRAY_TASK_ID=$i step 04-generate && SLURM_ARRAY_TASK_ID=$i step 05-eval && SLURM_ARRAY_TASK_ID=$i step 06-plot
    done
  fi
  echo "test-images: chain inside the images in $((SECONDS - chain_start)) s"
  steps=$(grep -o -- '--steps [0-9]*' <<< "$STRIDE_TRAIN_ARGS" | awk '{print $2}')
  members=$(grep -o -- '--members [0-9]*' <<< "$STRIDE_GENERATE_ARGS" | awk '{print $2}')
  "$PYTHON" ci/check_chain.py "$STRIDE_OUT" --steps "$steps" --members "$members" --shard val=4 --shard test=6 ||
    fail "chain artifacts"
  [ -z "$(find "$work" -maxdepth 1 -name mlruns)" ] || fail "MLflow artifacts escaped to ./mlruns"
  runs=$("$PYTHON" -c 'import sys; from mlflow.tracking import MlflowClient as C; c = C(sys.argv[1]); print(len(c.search_runs([e.experiment_id for e in c.search_experiments()])))' "$MLFLOW_TRACKING_URI" 2> /dev/null)
  [ "$runs" = $((3 + 3 * ${#shards[@]})) ] || fail "expected $((3 + 3 * ${#shards[@]})) MLflow runs in the shared store, found $runs"
fi
echo "test-images: $problems problem(s) in $((SECONDS - start)) s"
[ "$problems" = 0 ]
