#!/usr/bin/env bash
# A throw-away Slurm cluster on this host for the Slurm tests: two virtual nodes (two slurmd
# on 127.0.0.1), one partition each, with typed fake GPUs:
#   partition h100 -> node gpu-h100 (Features=h100, Gres=gpu:h100:4)
#   partition a100 -> node gpu-a100 (Features=a100, Gres=gpu:a100:4)
# No accounting daemon: the Slurm plugin polls with squeue (MinJobAge keeps finished jobs
# visible to squeue and scontrol). Needs root and Debian's slurm packages (installed if absent).
#   cluster.sh up     start (idempotent: stops what it started before)
#   cluster.sh down   stop every daemon by the PID in its pid file
set -euo pipefail
log() { printf '[cluster %(%H:%M:%S)T] %s\n' -1 "$*"; }
PIDS=(/run/slurmd-gpu-h100.pid /run/slurmd-gpu-a100.pid /run/slurmctld.pid)

stop() {  # kill the daemon named in a pid file, only if that pid is still that daemon
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  case "$(cat /proc/"$pid"/comm 2>/dev/null)" in
    slurmd|slurmctld|munged)
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done ;;
  esac
  rm -f "$f"
}

down() {
  for f in "${PIDS[@]}"; do stop "$f"; done
  stop /run/munge/munged.pid
  log "cluster down"
}

up() {
  for f in "${PIDS[@]}"; do stop "$f"; done
  local missing=()
  for p in slurmctld slurmd slurm-client munge; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    # keep the packages' scripts from starting daemons before our config exists
    local made=0
    [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made=1; }
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ $made = 1 ] && rm -f /usr/sbin/policy-rc.d
  fi
  local host; host=$(hostname -s)
  install -d -o slurm -g slurm /var/lib/slurm/slurmctld /var/log/slurm
  install -d /var/lib/slurm/fakegpu /etc/slurm
  for t in h100 a100; do
    install -d "/var/lib/slurm/spool-gpu-$t"
    for i in 0 1 2 3; do  # gres/gpu needs a character device per GPU (same numbers as /dev/null)
      [ -c "/var/lib/slurm/fakegpu/$t-$i" ] || mknod -m 666 "/var/lib/slurm/fakegpu/$t-$i" c 1 3
    done
  done
  # the config must be at /etc/slurm/slurm.conf: the plugin's in-job srun drops SLURM_CONF
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=flopmetrics-ci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/spool-%n
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd-%n.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=5
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=gpu-h100 NodeHostname=${host} NodeAddr=127.0.0.1 Port=17001 CPUs=16 RealMemory=128000 Features=h100 Gres=gpu:h100:4 State=UNKNOWN
NodeName=gpu-a100 NodeHostname=${host} NodeAddr=127.0.0.1 Port=17002 CPUs=16 RealMemory=128000 Features=a100 Gres=gpu:a100:4 State=UNKNOWN
PartitionName=h100 Nodes=gpu-h100 Default=YES MaxTime=INFINITE State=UP
PartitionName=a100 Nodes=gpu-a100 MaxTime=INFINITE State=UP
CONF
  cat > /etc/slurm/gres.conf <<CONF
AutoDetect=off
NodeName=gpu-h100 Name=gpu Type=h100 File=/var/lib/slurm/fakegpu/h100-[0-3]
NodeName=gpu-a100 Name=gpu Type=a100 File=/var/lib/slurm/fakegpu/a100-[0-3]
CONF
  [ -s /etc/munge/munge.key ] || { mungekey -c -k /etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  install -d -o munge -g munge -m 0755 /run/munge
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  /usr/sbin/slurmctld -c   # -c: no state from earlier runs (a drained node comes back idle)
  /usr/sbin/slurmd -N gpu-h100
  /usr/sbin/slurmd -N gpu-a100
  for _ in $(seq 1 150); do
    [ "$(timeout 5 sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | wc -l)" = 2 ] && { sinfo -o '%P %N %f %G %T'; log "cluster up"; return 0; }
    sleep 0.2
  done
  sinfo -R || true; tail -20 /var/log/slurm/slurmctld.log || true
  return 1
}

"${1:?usage: cluster.sh up|down}"
