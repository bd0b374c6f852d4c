#!/usr/bin/env bash
# Submit the whole STRIDE chain to SLURM, each step waiting for the one before (afterok), and print
# the job ids. The generate, eval and plot steps are array jobs over STRIDE_SHARDS, paired task by
# task (aftercorr): eval of shard i starts as soon as generation of shard i is done.
#
#   STRIDE_OUT=/scratch/$USER/run1 slurm/submit.sh [--dry-run]
#
# Settings (environment; defaults in brackets):
#   STRIDE_OUT             chain folder, created [required]
#   STRIDE_DATA            source data folder [../shared/data beside the checkout]
#   STRIDE_RUNNER          apptainer | docker | local [apptainer]; see slurm/common.sh
#   STRIDE_SIF_DIR         folder with stride-*.sif [<checkout>/dist/containers]
#   STRIDE_IMAGE_PREFIX, STRIDE_IMAGE_TAG   docker images <prefix><cli>:<tag> [none, latest]
#   MLFLOW_TRACKING_URI    shared MLflow server or store [an SQLite mlflow.db beside each output]
#   STRIDE_DATA_CONFIG, STRIDE_TRAIN_CONFIG, STRIDE_GENERATE_CONFIG   YAML files [configs/*era5_uk.yaml]
#   STRIDE_DATA_ARGS, STRIDE_STATS_ARGS, STRIDE_TRAIN_ARGS, STRIDE_GENERATE_ARGS, STRIDE_EVAL_ARGS,
#   STRIDE_PLOT_ARGS       extra options of each CLI, split on spaces (e.g. "--steps 2000")
#   STRIDE_SHARDS          space-separated NAME:KEY=VALUE,... entries, one array task each; the overrides
#                          pick the task's dates [test:split=test]
#   STRIDE_TRAIN_NODES     nodes for training [1]; STRIDE_GPUS_PER_NODE GPUs per node [1; 0 = CPU]
#   STRIDE_SBATCH_ARGS     extra sbatch options for every job (e.g. "--account=abc --partition=gpu")
#   STRIDE_GPU_SBATCH_ARGS extra sbatch options for the GPU jobs (train, generate)
#   STRIDE_AFTER           job id the first step waits for [none]
#
# Writes the job ids to $STRIDE_OUT/jobs.env and the logs to $STRIDE_OUT/logs/.
set -euo pipefail

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }
DRY_RUN=0
case "${1:-}" in
  --dry-run) DRY_RUN=1 ;;
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) echo "submit: unknown option $1" >&2; usage >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
export STRIDE_SLURM_DIR=$here
export STRIDE_ROOT=${STRIDE_ROOT:-$(dirname "$here")}
: "${STRIDE_OUT:?set STRIDE_OUT to the chain folder}"
mkdir -p "$STRIDE_OUT/logs"
STRIDE_OUT=$(cd "$STRIDE_OUT" && pwd)
STRIDE_DATA=${STRIDE_DATA:-$STRIDE_ROOT/../shared/data}
[ -d "$STRIDE_DATA" ] || { echo "submit: STRIDE_DATA=$STRIDE_DATA is not a folder" >&2; exit 2; }
STRIDE_DATA=$(cd "$STRIDE_DATA" && pwd)
export STRIDE_OUT STRIDE_DATA
export STRIDE_RUNNER=${STRIDE_RUNNER:-apptainer}
export STRIDE_DATA_CONFIG=${STRIDE_DATA_CONFIG:-configs/era5_uk.yaml}
export STRIDE_TRAIN_CONFIG=${STRIDE_TRAIN_CONFIG:-configs/train_era5_uk.yaml}
export STRIDE_GENERATE_CONFIG=${STRIDE_GENERATE_CONFIG:-configs/generate_era5_uk.yaml}
export STRIDE_SHARDS=${STRIDE_SHARDS:-test:split=test}
export STRIDE_GPUS_PER_NODE=${STRIDE_GPUS_PER_NODE:-1}
nodes=${STRIDE_TRAIN_NODES:-1}

read -r -a shards <<< "$STRIDE_SHARDS"
array="0-$((${#shards[@]} - 1))"
read -r -a common <<< "${STRIDE_SBATCH_ARGS:-}"
read -r -a gpu <<< "${STRIDE_GPU_SBATCH_ARGS:-}"
common+=(--parsable --chdir "$STRIDE_ROOT" --export ALL)
train_gpu=("${gpu[@]}")
generate_gpu=("${gpu[@]}")
if [ "$STRIDE_GPUS_PER_NODE" -gt 0 ]; then
  train_gpu+=(--gpus-per-node "$STRIDE_GPUS_PER_NODE")
  generate_gpu+=(--gpus-per-node 1) # one GPU per shard: shards are the unit of parallelism
fi
log=$STRIDE_OUT/logs

# submit NAME DEPENDENCY SBATCH-OPTIONS... SCRIPT: print the job id of the submitted job.
submit() {
  local name=$1 dependency=$2
  shift 2
  local args=(sbatch "${common[@]}" ${dependency:+--dependency "$dependency"} "$@")
  if [ "$DRY_RUN" = 1 ]; then
    printf '+' >&2; printf ' %q' "${args[@]}" >&2; printf '\n' >&2
    echo "<$name>"
  else
    "${args[@]}" | cut -d ';' -f 1
  fi
}

data=$(submit data "${STRIDE_AFTER:+afterok:$STRIDE_AFTER}" --output "$log/%x-%j.out" "$here/01-data.sbatch")
stats=$(submit stats "afterok:$data" --output "$log/%x-%j.out" "$here/02-stats.sbatch")
train=$(submit train "afterok:$stats" --nodes "$nodes" "${train_gpu[@]}" --output "$log/%x-%j.out" \
  "$here/03-train.sbatch")
generate=$(submit generate "afterok:$train" --array "$array" "${generate_gpu[@]}" \
  --output "$log/%x-%A_%a.out" "$here/04-generate.sbatch")
evaluate=$(submit eval "aftercorr:$generate" --array "$array" --output "$log/%x-%A_%a.out" "$here/05-eval.sbatch")
plot=$(submit plot "aftercorr:$evaluate" --array "$array" --output "$log/%x-%A_%a.out" "$here/06-plot.sbatch")

ids=(data="$data" stats="$stats" train="$train" generate="$generate" eval="$evaluate" plot="$plot")
printf '%s\n' "${ids[@]}"
if [ "$DRY_RUN" = 0 ]; then
  printf '%s\n' "${ids[@]}" > "$STRIDE_OUT/jobs.env"
  echo "submitted; follow with: squeue -j $data,$stats,$train,$generate,$evaluate,$plot; logs in $log" >&2
fi
