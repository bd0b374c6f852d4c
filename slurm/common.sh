# shellcheck shell=bash
# WORDS, SHARD_NAME, SHARD_SET and PREFIX are set here for the sbatch scripts that source this file.
# shellcheck disable=SC2034
# Sourced by every sbatch script in slurm/: how one job runs one STRIDE CLI, and the chain's settings.
# slurm/submit.sh exports these; each is documented there.
#
#   STRIDE_RUNNER   apptainer (default): apptainer run --nv $STRIDE_SIF_DIR/<cli>.sif
#                   docker: docker run of the local image $STRIDE_IMAGE_PREFIX<cli>:$STRIDE_IMAGE_TAG
#                   local: the CLIs on PATH (a pip install or the repository's .venv)
#   STRIDE_OUT      the chain's folder (dataset.zarr, stats.parquet, checkpoint, samples_*.zarr, ...)
#   STRIDE_DATA     source data folder, bound read-only into the container
#   STRIDE_ROOT     folder the config paths are relative to (a STRIDE checkout: configs/)
#   STRIDE_DOCKER_USER   uid:gid the docker runner runs as [the caller's]
#   MLFLOW_TRACKING_URI  unset: an SQLite mlflow.db beside each output; a sqlite:/// or file:// store's
#                   folder is bound into the container; an http(s):// server is reached directly
#
# Every folder is bound at its own path, so the same paths work inside and outside the container.

: "${STRIDE_OUT:?set STRIDE_OUT (submit with slurm/submit.sh)}"
: "${STRIDE_DATA:?set STRIDE_DATA (submit with slurm/submit.sh)}"
: "${STRIDE_ROOT:?set STRIDE_ROOT (submit with slurm/submit.sh)}"
STRIDE_RUNNER=${STRIDE_RUNNER:-apptainer}
export STRIDE_DATA STRIDE_OUT STRIDE_PROGRESS=${STRIDE_PROGRESS:-0}
cd "$STRIDE_ROOT" || exit 2

# The folder of the MLflow store named by MLFLOW_TRACKING_URI, if it is a local one.
mlflow_store_dir() {
  local uri=${MLFLOW_TRACKING_URI:-}
  case "$uri" in
    sqlite:////*) dirname "${uri#sqlite:///}" ;; # sqlite:////abs/path/mlflow.db
    sqlite:///*) dirname "$PWD/${uri#sqlite:///}" ;;
    file://*) printf '%s\n' "${uri#file://}" ;;
    /*) printf '%s\n' "$uri" ;;
  esac
}

# Folders the container needs: data (read-only), the chain folder, the configs, a local MLflow store.
stride_binds() {
  local store
  printf '%s:%s:ro\n' "$STRIDE_DATA" "$STRIDE_DATA"
  printf '%s:%s\n' "$STRIDE_OUT" "$STRIDE_OUT"
  printf '%s:%s:ro\n' "$STRIDE_ROOT" "$STRIDE_ROOT"
  store=$(mlflow_store_dir)
  if [ -n "$store" ]; then
    mkdir -p "$store"
    printf '%s:%s\n' "$store" "$store"
  fi
}

# stride_prefix CLI [PROGRAM]: set PREFIX to the command that runs PROGRAM (default: the CLI itself)
# from CLI's image, with the binds and the environment the chain needs.
stride_prefix() {
  local cli=$1 program=${2:-$1} bind binds=()
  case "$STRIDE_RUNNER" in
    local)
      PREFIX=("$program")
      ;;
    apptainer)
      mapfile -t binds < <(stride_binds)
      local sif=${STRIDE_SIF_DIR:-$STRIDE_ROOT/dist/containers}/$cli.sif
      [ -f "$sif" ] || { echo "stride: $sif not found; set STRIDE_SIF_DIR (see containers/README.md)" >&2; exit 2; }
      # --nv binds the host's NVIDIA driver; on a node without GPUs apptainer only warns.
      if [ "$program" = "$cli" ]; then
        PREFIX=(apptainer run --nv --pwd "$PWD" --bind "$(IFS=,; echo "${binds[*]}")" "$sif")
      else
        PREFIX=(apptainer exec --nv --pwd "$PWD" --bind "$(IFS=,; echo "${binds[*]}")" "$sif" "$program")
      fi
      ;;
    docker)
      local args=(run --rm --network host --user "${STRIDE_DOCKER_USER:-$(id -u):$(id -g)}" --workdir "$PWD"
        --env STRIDE_DATA --env STRIDE_PROGRESS --env HOME=/tmp)
      [ -n "${MLFLOW_TRACKING_URI:-}" ] && args+=(--env MLFLOW_TRACKING_URI)
      [ -n "${STRIDE_DOCKER_GPUS:-}" ] && args+=(--gpus "$STRIDE_DOCKER_GPUS")
      while read -r bind; do args+=(--volume "$bind"); done < <(stride_binds)
      [ "$program" = "$cli" ] || args+=(--entrypoint "$program")
      PREFIX=("${STRIDE_DOCKER:-docker}" "${args[@]}" "${STRIDE_IMAGE_PREFIX:-}$cli:${STRIDE_IMAGE_TAG:-latest}")
      ;;
    *)
      echo "stride: STRIDE_RUNNER=$STRIDE_RUNNER; use apptainer, docker or local" >&2
      exit 2
      ;;
  esac
}

# stride_run CLI ARGS...: run one CLI through the runner, echoing the command first.
stride_run() {
  stride_prefix "$1"
  shift
  echo "+ ${PREFIX[*]} $*" >&2
  "${PREFIX[@]}" "$@"
}

# split_words VAR: the words of the environment variable VAR as the array WORDS (options such as
# "--steps 30 --set model.dropout=0.1"; a single value cannot contain spaces).
split_words() {
  WORDS=()
  read -r -a WORDS <<< "${!1:-}"
}

# shard NAME OVERRIDES for this array task: entry SLURM_ARRAY_TASK_ID of STRIDE_SHARDS.
shard() {
  local entries index=${SLURM_ARRAY_TASK_ID:-0}
  read -r -a entries <<< "${STRIDE_SHARDS:-test:split=test}"
  [ "$index" -lt ${#entries[@]} ] || { echo "stride: array task $index but STRIDE_SHARDS has ${#entries[@]} entries" >&2; exit 2; }
  SHARD_NAME=${entries[$index]%%:*}
  local overrides=${entries[$index]#*:} item items
  SHARD_SET=()
  IFS=, read -r -a items <<< "$overrides"
  for item in "${items[@]}"; do
    [ -n "$item" ] && SHARD_SET+=(--set "$item")
  done
  return 0
}
