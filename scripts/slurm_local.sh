#!/usr/bin/env bash
# Install and start a one-node SLURM (slurmctld + slurmd, munge authentication) on this machine,
# from the distribution's packages (Debian/Ubuntu: slurm-wlm, munge). Needs root.
#
# Idempotent: packages already installed are not reinstalled, a running daemon is left running,
# and the script ends by waiting until `sinfo` shows this node idle. It prints every step.
# Exit status: 0 when the node is up and idle; 1 otherwise (with the reason on stderr).
#
#   sudo scripts/slurm_local.sh            # then: sinfo; squeue
#
# The node is described by what `slurmd -C` finds (hostname, CPUs, memory); one partition
# `debug` holds it. Logs: /var/log/slurm/slurmctld.log and /var/log/slurm/slurmd.log.
set -uo pipefail

say() { echo "[slurm_local] $*"; }
die() { echo "[slurm_local] ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (apt-get and the daemons); run with sudo"

# --- 1. packages -------------------------------------------------------------------------------
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    && command -v sinfo >/dev/null; then
    say "packages: slurmctld, slurmd, munged and sinfo already installed"
else
    command -v apt-get >/dev/null || die "no apt-get: install slurm-wlm and munge by hand"
    say "packages: apt-get install slurm-wlm munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
fi

# --- 2. munge ----------------------------------------------------------------------------------
mkdir -p /etc/munge /var/log/munge /var/lib/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "munge: creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
fi
chown -R munge:munge /etc/munge /var/log/munge /var/lib/munge /run/munge
chmod 0700 /etc/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "munge: munged already running"
else
    say "munge: starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged did not start"
    for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
    munge -n | unmunge >/dev/null || die "munge credentials do not round-trip"
fi

# --- 3. slurm.conf -----------------------------------------------------------------------------
host=$(hostname -s)
conf_dir=/etc/slurm
[ -d /etc/slurm-llnl ] && [ ! -d /etc/slurm ] && conf_dir=/etc/slurm-llnl
mkdir -p "$conf_dir" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /run/slurm
# `slurmd -C` prints the node line (NodeName=... CPUs=... RealMemory=...); keep its first line.
node_line=$(slurmd -C 2>/dev/null | head -n 1)
[ -n "$node_line" ] || node_line="NodeName=$host CPUs=$(nproc) RealMemory=$(($(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024))"
# leave 5 % of the memory to the system (RealMemory above the free memory would drain the node)
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
node_line=$(sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 95 / 100))/" <<<"$node_line")
conf=$(cat <<EOF
# written by ensemble_lens scripts/slurm_local.sh: a one-node cluster on $host
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
$node_line State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
)
if [ -f "$conf_dir/slurm.conf" ] && [ "$(cat "$conf_dir/slurm.conf")" = "$conf" ]; then
    say "slurm.conf: $conf_dir/slurm.conf unchanged"
    changed=0
else
    say "slurm.conf: writing $conf_dir/slurm.conf ($node_line)"
    echo "$conf" >"$conf_dir/slurm.conf"
    changed=1
fi

# --- 4. daemons --------------------------------------------------------------------------------
start_daemon() {  # name, command...
    local name=$1; shift
    if pgrep -x "$name" >/dev/null; then
        if [ "$changed" = 1 ]; then
            say "$name: running; reloading the new slurm.conf"
            scontrol reconfigure >/dev/null 2>&1 || true
        else
            say "$name: already running"
        fi
    else
        say "$name: starting"
        "$@" || die "$name did not start; see /var/log/slurm/$name.log"
    fi
}
start_daemon slurmctld slurmctld
start_daemon slurmd slurmd

# --- 5. wait for the node ----------------------------------------------------------------------
for _ in $(seq 60); do
    state=$(sinfo -h -N -n "$host" -o "%t" 2>/dev/null | head -n 1)
    case "$state" in
        idle|mix|alloc) say "ready: node $host is $state"; sinfo; exit 0 ;;
        drain*|down*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
sinfo >&2 || true
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 2>/dev/null || true
die "node $host did not become idle within 60 s (state: ${state:-unknown})"
