#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, from Debian's packages, for the tests of the SLURM
# profile (profiles/slurm/). Run as root.
#
#   bash cluster/local-slurm.sh up      # install slurm-wlm and munge if missing, start munged, slurmctld, slurmd
#   bash cluster/local-slurm.sh down    # stop every daemon it started, by the pid it recorded
#   bash cluster/local-slurm.sh status  # sinfo and squeue
#
# Its state (slurm.conf, pids, spool, logs) lives in $SLURM_LOCAL (default /tmp/local-slurm).
# /etc/slurm/slurm.conf is a link to that slurm.conf: the jobstep executor strips SLURM_CONF from
# the jobs' environment, so the default path is the one every srun reads. No accounting database:
# the profile asks the executor to poll squeue (sacct needs slurmdbd), and MinJobAge keeps a
# finished job in squeue long enough for that poll to see it.
set -euo pipefail

STATE=${SLURM_LOCAL:-/tmp/local-slurm}
HOST=$(hostname)

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
    local mem
    mem=$(( $(free -m | awk '/^Mem:/ {print $2}') - 2048 ))   # the node's memory, less a margin for the system
    rm -rf "$STATE"/spool      # a new cluster: no jobs of an earlier one
    mkdir -p "$STATE"/spool/ctld "$STATE"/spool/d "$STATE"/log /etc/slurm
    cat > "$STATE/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
MinJobAge=300
MailProg=/bin/true
ReturnToService=2
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(getconf _NPROCESSORS_ONLN) RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    ln -sf "$STATE/slurm.conf" /etc/slurm/slurm.conf
}

start() {
    local name=$1; shift
    "$@" > "$STATE/log/$name.out" 2>&1 &
    echo $! > "$STATE/$name.daemon.pid"
}

up() {
    install
    down quiet
    write_conf
    # munged runs as munge (setpriv execs it: $! is the daemon's own pid), on the default socket,
    # whose folder must be reachable by others (o+x).
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
    start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F
    for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
    start slurmctld /usr/sbin/slurmctld -D -f "$STATE/slurm.conf"
    start slurmd /usr/sbin/slurmd -D -f "$STATE/slurm.conf"
    for _ in $(seq 100); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "local SLURM up: $(sinfo -h -o '%P %D %c cpus %m MB %T')"
            return
        fi
        sleep 0.2
    done
    echo "local SLURM did not come up; logs in $STATE/log" >&2
    tail -n 20 "$STATE"/log/*.log >&2 || true
    exit 1
}

down() {
    for name in slurmd slurmctld munged; do
        local file="$STATE/$name.daemon.pid"
        [ -f "$file" ] || continue
        local pid
        pid=$(cat "$file")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$file"
    done
    # Without a controller, every SLURM client (the executor plugin runs `scontrol show config` when
    # Snakemake starts) waits ~9 s on a configured cluster: leave the machine unconfigured again.
    if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$STATE/slurm.conf" ]; then
        rm -f /etc/slurm/slurm.conf
    fi
    [ "${1:-}" = quiet ] || echo "local SLURM down"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) sinfo; squeue ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
