#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine, for `make test-cluster` (tests/cluster/).
#
#   sudo bash scripts/cluster/slurm_up.sh      # then: export SLURM_CONF=/tmp/seg-slurm/slurm.conf
#   sudo bash scripts/cluster/slurm_down.sh    # stops everything this script started
#
# As root, idempotent (what is already up is left as it is), everything in $SEG_SLURM_STATE
# (default /tmp/seg-slurm); nothing is written under /etc/slurm and no systemd unit is used:
#   1. installs Debian's slurm-wlm, munge, slurmdbd and mariadb-server with apt-get if one is missing
#      (about 30 s; the packages' own services are not started);
#   2. starts munged (authentication of every SLURM message) with the packaged key /etc/munge/munge.key;
#   3. starts a private MariaDB (data in $STATE/mariadb, 127.0.0.1:$DB_PORT only) and slurmdbd on it,
#      so that `sacct` works as on a real cluster (and submitit, which polls sacct, sees job states);
#   4. writes $STATE/slurm.conf: one node (this machine, its CPUs and real memory from `slurmd -C`), no
#      cgroups (proctrack/linuxproc, task/none); CPUs and memory are consumable, so two 1-CPU jobs run
#      side by side on a 2-CPU machine; partition `debug` (the default) and `urgent`, whose jobs preempt
#      (requeue) those of `debug`;
#   5. starts slurmctld and slurmd with it and waits until `sinfo` shows the node idle.
# Every SLURM command then needs SLURM_CONF=$STATE/slurm.conf. Shared storage is the local disk: the one
# node sees the submitter's files at the same paths.
set -euo pipefail

STATE="${SEG_SLURM_STATE:-/tmp/seg-slurm}"
CONF="$STATE/slurm.conf"
CLUSTER="seg-test"
PARTITION="debug"
# MariaDB of the accounting database, reachable from this machine only; a throwaway test password
DB_PORT="${SEG_SLURM_DB_PORT:-3307}"
DB_PASS="seg-test"
DB_DIR="$STATE/mariadb"
export SLURM_CONF="$CONF"

say() { printf '[slurm_up] %s\n' "$*"; }
die() { printf '[slurm_up] error: %s\n' "$*" >&2; exit 1; }
# wait up to $1 tenths of a second for the command "${@:2}" to succeed
wait_for() {
    local n=$1
    shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
# is the process of pid file $1 alive?
running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

[[ $(id -u) -eq 0 ]] || die "run as root: it installs packages and starts munged, mariadbd and the SLURM daemons"

# --- 1. packages --------------------------------------------------------------------------------------
missing=""
for cmd in slurmctld slurmd slurmdbd munged mariadbd; do command -v "$cmd" >/dev/null || missing+=" $cmd"; done
if [[ -n $missing ]]; then
    say "installing Debian packages slurm-wlm munge slurmdbd mariadb-server (missing:$missing)"
    export DEBIAN_FRONTEND=noninteractive
    apt_log="$STATE/log/apt.log"
    mkdir -p "$STATE/log"
    if ! { apt-get update -q && apt-get install -y -q slurm-wlm munge slurmdbd mariadb-server; } >"$apt_log" 2>&1; then
        tail -20 "$apt_log" >&2
        die "apt-get failed; see $apt_log"
    fi
    say "installed $(grep -c '^Setting up' "$apt_log") packages (log $apt_log)"
fi
say "slurm $(slurmd -V | awk '{print $2}'), munge $(dpkg-query -W -f '${Version}' munge), mariadb $(dpkg-query -W -f '${Version}' mariadb-server)"

# a SLURM daemon not started from this state dir means this machine has a real SLURM: leave it alone
# (zombies, the exited first halves of daemons that forked, are not counted)
for daemon in slurmctld slurmd slurmdbd; do
    for pid in $(ps -C "$daemon" -o pid=,stat= | awk '$2 !~ /^Z/ {print $1}'); do
        [[ "$(cat "$STATE/$daemon.pid" 2>/dev/null)" == "$pid" ]] ||
            die "a $daemon not started by this script runs (pid $pid): this script is for machines without SLURM"
    done
done
mkdir -p "$STATE"/{ctld,spool,log}

# --- 2. munge -----------------------------------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
munge_ok() { munge -n | unmunge; }
if ! munge_ok >/dev/null 2>&1; then
    say "starting munged (as user munge; log /var/log/munge/munged.log)"
    # /run/munge holds munged's socket; without systemd nobody creates it
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    # slurm_down.sh stops munged only if this script started it
    touch "$STATE/munged.started"
    wait_for 50 munge_ok || die "munged does not answer; see /var/log/munge/munged.log"
fi

# --- 3. accounting: MariaDB + slurmdbd ----------------------------------------------------------------
db() { mariadb --no-defaults --socket="$DB_DIR/mysqld.sock" "$@"; }
if [[ ! -d $DB_DIR/data/mysql ]]; then
    say "creating the accounting database in $DB_DIR"
    install -d -o mysql -g mysql "$DB_DIR" "$DB_DIR/data"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR/data" --skip-test-db \
        >"$STATE/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed; see $STATE/log/mariadb-install.log"
fi
if ! running "$DB_DIR/mariadbd.pid"; then
    say "starting mariadbd on 127.0.0.1:$DB_PORT (log $DB_DIR/mariadbd.log)"
    # setsid + nohup: detached from this shell, like the other daemons (mariadbd does not fork)
    setsid nohup /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB_DIR/data" \
        --socket="$DB_DIR/mysqld.sock" --pid-file="$DB_DIR/mariadbd.pid" --log-error="$DB_DIR/mariadbd.log" \
        --bind-address=127.0.0.1 --port="$DB_PORT" \
        --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    wait_for 300 db -e "SELECT 1" || die "mariadbd does not answer; see $DB_DIR/mariadbd.log"
fi
db -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
       GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

# slurmdbd reads slurmdbd.conf from the directory of $SLURM_CONF; it must be private to SlurmUser
(
    umask 077
    cat >"$STATE/slurmdbd.conf" <<EOF
# Written by scripts/cluster/slurm_up.sh
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
AuthType=auth/munge
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
EOF
)

# --- 4. slurm.conf ------------------------------------------------------------------------------------
HOST="$(hostname -s)"
# `slurmd -C` prints this node's hardware: CPUs, sockets, cores, threads and RealMemory (MB)
NODE_HW="$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //')"
CPUS="$(sed -n 's/.*\bCPUs=\([0-9]*\).*/\1/p' <<<"$NODE_HW")"
MEM_MB="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_HW")"
[[ -n $CPUS && -n $MEM_MB ]] || die "cannot read CPUs and RealMemory from 'slurmd -C': $NODE_HW"
NEW_CONF="$(cat <<EOF
# Written by scripts/cluster/slurm_up.sh: single-node test cluster on $HOST.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
# no cgroups: job processes are tracked through /proc, not bound to CPUs, memory not enforced
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
# CPUs and memory (MB) are consumable; a job without --mem gets DefMemPerCPU per CPU
SchedulerType=sched/backfill
# look at the queue every 5 s (default 60 s and 30 s), so that a requeued job starts soon after it may
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((MEM_MB / CPUS))
# accounting through slurmdbd (sacct), with each job's CPU time and peak memory (MaxRSS)
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
# a requeued job may start again after 10 s instead of 120 (also the lifetime of a step credential)
AuthInfo=cred_expire=10
# finished jobs stay in \`scontrol show job\` for 5 minutes; SIGTERM -> SIGKILL after 10 s at the time limit
MinJobAge=300
KillWait=10
# a node that was down comes back by itself when its slurmd registers again
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# preemption: a job of partition \`urgent\` requeues jobs of \`debug\` it needs the CPUs of; they get the
# --signal of their job (submitit: SIGUSR2) at once, and are requeued by SLURM after GraceTime if still running
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
NodeName=$HOST NodeAddr=127.0.0.1 $NODE_HW State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=60
PartitionName=urgent Nodes=$HOST MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
)"
conf_changed=""
if [[ ! -f $CONF ]] || [[ "$(cat "$CONF")" != "$NEW_CONF" ]]; then
    say "writing $CONF (node $HOST: $CPUS CPUs, $MEM_MB MB)"
    printf '%s\n' "$NEW_CONF" >"$CONF"
    conf_changed=1
fi

# --- 5. daemons ---------------------------------------------------------------------------------------
if ! running "$STATE/slurmdbd.pid"; then
    say "starting slurmdbd (log $STATE/log/slurmdbd.log)"
    slurmdbd
    wait_for 300 sacctmgr -n show cluster || die "slurmdbd does not answer; see $STATE/log/slurmdbd.log"
fi
if [[ -z "$(sacctmgr -n -P show cluster "$CLUSTER" format=cluster)" ]]; then
    say "registering cluster $CLUSTER in the accounting database"
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi
if ! running "$STATE/slurmctld.pid"; then
    say "starting slurmctld (log $STATE/log/slurmctld.log)"
    # state (job ids, node state) carries over from an earlier start in the same $STATE
    slurmctld -i
fi
if ! running "$STATE/slurmd.pid"; then
    say "starting slurmd (log $STATE/log/slurmd.log)"
    slurmd
elif [[ -n $conf_changed ]]; then
    say "slurm.conf changed: scontrol reconfigure"
    scontrol reconfigure
fi

say "waiting for node $HOST to be idle"
state=""
for _ in $(seq 120); do
    state="$(sinfo -h -n "$HOST" -o '%T' 2>/dev/null || true)"
    [[ $state == idle ]] && break
    # a node left down or drained by an earlier run is put back into service
    if [[ $state == down* || $state == drain* ]]; then
        scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
    fi
    sleep 0.5
done
[[ $state == idle ]] || die "node $HOST is '${state:-unknown}' after 60 s; see $STATE/log/"
sinfo
say "up. Use it with: export SLURM_CONF=$CONF"
