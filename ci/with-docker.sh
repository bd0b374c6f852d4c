#!/usr/bin/env bash
# Run a command with a Docker engine: the one that answers (DOCKER_HOST or the default socket), else a
# private dockerd started with ci/local-docker.sh in $STRIDE_DOCKER_DIR [/tmp/stride-docker] and
# stopped again when the command ends (its images stay in that folder for the next run).
#
#   ci/with-docker.sh COMMAND [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${STRIDE_DOCKER_DIR:-/tmp/stride-docker}
export DOCKER=${DOCKER:-docker}
started=0
if ! "$DOCKER" info > /dev/null 2>&1; then
  pid_before=$(cat "$dir/dockerd.pid" 2> /dev/null || true)
  exports=$(ci/local-docker.sh start "$dir")
  export DOCKER_HOST=${exports#export DOCKER_HOST=}
  [ -f "$dir/dockerd.pid" ] && [ "$(cat "$dir/dockerd.pid")" != "$pid_before" ] && started=1
fi
stop_engine() { if [ "$started" = 1 ]; then ci/local-docker.sh stop "$dir"; fi; }
trap stop_engine EXIT
echo "with-docker: engine $("$DOCKER" version --format '{{.Server.Version}}') at ${DOCKER_HOST:-the default socket}" >&2
"$@"
