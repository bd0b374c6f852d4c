#!/usr/bin/env bash
# A one-node SLURM cluster on 127.0.0.1 for tests: munged, slurmctld and slurmd with every file (config,
# key, state, spool, logs, sockets) under one folder, so nothing of the machine's own setup is touched.
#
#   ci/local-slurm.sh start DIR    install slurm-wlm + munge with apt if missing, start the daemons,
#                                  wait until the node is idle; prints `export SLURM_CONF=DIR/slurm.conf`
#   ci/local-slurm.sh stop DIR     stop the daemons this script started in DIR (by their pid files)
#
# Runs as root (slurmd starts jobs as their owner). Settings that work without cgroups or systemd:
# proctrack/linuxproc, task/none, select/cons_tres with CR_CPU.
# Environment: SLURM_PORT (default 6817; slurmd uses SLURM_PORT + 1), SLURM_CPUS (default: nproc).
set -euo pipefail

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

action=${1:-}
dir=${2:-}
if [ -z "$action" ] || [ -z "$dir" ]; then usage >&2; exit 2; fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf=$dir/slurm.conf

stop_pid_file() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2> /dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2> /dev/null && kill -9 "$pid"
  fi
  rm -f "$file"
}

install_packages() {
  local missing=()
  command -v slurmctld > /dev/null || missing+=(slurm-wlm)
  command -v munged > /dev/null || missing+=(munge)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "local-slurm: installing ${missing[*]} with apt" >&2
  apt-get update -q > /dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" > /dev/null
}

write_config() {
  local port=${SLURM_PORT:-6817} cpus=${SLURM_CPUS:-$(nproc)} memory
  memory=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  cat > "$conf" << EOF
# Written by ci/local-slurm.sh: a one-node test cluster, everything under $dir.
ClusterName=stride-local
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobRequeue=1
# Seconds between SIGTERM and SIGKILL when a job is cancelled or requeued: time to save training state.
KillWait=60
SchedulerType=sched/backfill
SchedulerParameters=defer_batch=0
MinJobAge=3600
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

start() {
  install_packages
  if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2> /dev/null; then
    echo "local-slurm: already running in $dir" >&2
  else
    write_config
    # A fresh key per cluster: the machine's /etc/munge/munge.key (if any) is left alone.
    dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$dir/munge.key"
    munged --force --socket="$dir/munge.socket" --key-file="$dir/munge.key" \
      --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed"
    export SLURM_CONF=$conf
    slurmctld -i -f "$conf"
    slurmd -N localhost -f "$conf"
  fi
  export SLURM_CONF=$conf
  for _ in $(seq 100); do
    if sinfo -h -N -o '%T' 2> /dev/null | grep -q -E '^idle'; then
      echo "export SLURM_CONF=$conf"
      return 0
    fi
    sleep 0.3
  done
  echo "local-slurm: the node did not become idle; see $dir/log" >&2
  sinfo -N -l >&2 || true
  tail -n 20 "$dir"/log/*.log >&2 || true
  return 1
}

stop() {
  stop_pid_file "$dir/slurmd.pid"
  stop_pid_file "$dir/slurmctld.pid"
  stop_pid_file "$dir/munged.pid"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) usage >&2; exit 2 ;;
esac
