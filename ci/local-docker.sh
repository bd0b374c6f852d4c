#!/usr/bin/env bash
# A private Docker engine for building and checking the images where none runs (CI runners and
# developer machines usually have one: then this script only reports it).
#
#   ci/local-docker.sh start DIR   use $DOCKER_HOST or /var/run/docker.sock if an engine answers; else install
#                                  docker.io with apt if missing and start dockerd with data, exec root and
#                                  socket under DIR. Prints `export DOCKER_HOST=...` for the engine to use.
#   ci/local-docker.sh stop DIR    stop the dockerd this script started in DIR (by its pid file)
#
# The private engine runs without bridge networks or iptables (machines that forbid them): builds and
# containers use the host network (docker build/run --network host), as ci/build-images.sh does.
set -euo pipefail

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }
action=${1:-}
dir=${2:-}
if [ -z "$action" ] || [ -z "$dir" ]; then usage >&2; exit 2; fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
docker=${DOCKER:-docker}

start() {
  if [ -n "${DOCKER_HOST:-}" ] && "$docker" info > /dev/null 2>&1; then
    echo "export DOCKER_HOST=$DOCKER_HOST"
    return 0
  fi
  if [ -S /var/run/docker.sock ] && DOCKER_HOST=unix:///var/run/docker.sock "$docker" info > /dev/null 2>&1; then
    echo "export DOCKER_HOST=unix:///var/run/docker.sock"
    return 0
  fi
  local host=unix://$dir/docker.sock
  if [ -f "$dir/dockerd.pid" ] && kill -0 "$(cat "$dir/dockerd.pid")" 2> /dev/null; then
    echo "export DOCKER_HOST=$host"
    return 0
  fi
  if ! command -v dockerd > /dev/null; then
    echo "local-docker: installing docker.io with apt" >&2
    apt-get update -q > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io > /dev/null
  fi
  mkdir -p "$dir/data" "$dir/exec"
  dockerd --bridge=none --iptables=false --ip6tables=false --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" -H "$host" > "$dir/dockerd.log" 2>&1 &
  for _ in $(seq 150); do
    if DOCKER_HOST=$host "$docker" info > /dev/null 2>&1; then
      echo "export DOCKER_HOST=$host"
      return 0
    fi
    sleep 0.2
  done
  echo "local-docker: dockerd did not answer on $host; see $dir/dockerd.log" >&2
  tail -n 20 "$dir/dockerd.log" >&2
  return 1
}

stop() {
  local pid
  [ -f "$dir/dockerd.pid" ] || return 0
  pid=$(cat "$dir/dockerd.pid")
  if kill -0 "$pid" 2> /dev/null; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2> /dev/null && kill -9 "$pid"
  fi
  rm -f "$dir/dockerd.pid"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) usage >&2; exit 2 ;;
esac
