#!/usr/bin/env bash
# A real one-node Slurm (Debian's 22.05 packages) with all its state in one folder, for the tests that talk
# to Slurm (docs/testing.md#a-real-slurm). Root only, as CI runs.
#
#   cluster.sh start DIR [PORT]   start munged, slurmctld and slurmd; print `export SLURM_CONF=DIR/slurm.conf`
#   cluster.sh stop DIR           cancel every job, wait for them, stop the daemons by their pids
#
# The node is 127.0.0.1 with the CPUs and memory slurmd detects, and two fake GPUs (symlinks to /dev/null:
# 22.05 drops a GPU without a device file). PORT is slurmctld's (slurmd takes PORT+1); default 6817.
set -euo pipefail

command=${1:?usage: cluster.sh start|stop DIR [PORT]}
dir=$(realpath -m "${2:?usage: cluster.sh start|stop DIR [PORT]}")
port=${3:-6817}
host=$(hostname -s)

pid_of() { cat "$dir/$1.pid" 2>/dev/null || true; }

# A daemon that exited stays a zombie for a moment: alive means running and not Z.
alive() { [ -n "$1" ] && [ -n "$(ps -o stat= -p "$1" 2>/dev/null | grep -v Z)" ]; }

start() {
    for tool in slurmctld slurmd munged sbatch; do
        command -v "$tool" >/dev/null || {
            echo "cluster.sh: $tool is missing (apt-get install slurmctld slurmd slurm-client munge)" >&2
            exit 1
        }
    done
    mkdir -p "$dir"/{munge,state,"spool/$host",log,dev}
    chmod 755 "$dir" "$dir/munge"
    ln -sf /dev/null "$dir/dev/gpu0"
    ln -sf /dev/null "$dir/dev/gpu1"

    [ -f "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key"
    chmod 600 "$dir/munge/munge.key"
    munged --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed"

    node=$(slurmd -C | head -n 1)
    cat >"$dir/slurm.conf" <<CONF
ClusterName=adarat-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
KillWait=5
MinJobAge=300
GresTypes=gpu
$node NodeAddr=127.0.0.1 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    cat >"$dir/gres.conf" <<CONF
AutoDetect=off
NodeName=$host Name=gpu File=$dir/dev/gpu[0-1]
CONF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld
    slurmd
    for _ in $(seq 1 100); do
        state=$(sinfo -h -o %T 2>/dev/null || true)
        if [ "$state" = idle ]; then
            echo "export SLURM_CONF=$dir/slurm.conf"
            return 0
        fi
        sleep 0.1
    done
    echo "cluster.sh: the node did not become idle (sinfo: ${state:-nothing}); see $dir/log" >&2
    exit 1
}

stop() {
    export SLURM_CONF="$dir/slurm.conf"
    if [ -f "$SLURM_CONF" ] && alive "$(pid_of slurmctld)"; then
        scancel --full $(squeue -h -o %A 2>/dev/null) 2>/dev/null || true
        # Job steps outlive slurmd: wait for the queue to empty before stopping it.
        for _ in $(seq 1 150); do
            [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
    for daemon in slurmd slurmctld munged; do
        pid=$(pid_of "$daemon")
        alive "$pid" || continue
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            alive "$pid" || break
            sleep 0.1
        done
        alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    done
}

case "$command" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: cluster.sh start|stop DIR [PORT]" >&2; exit 2 ;;
esac
