#!/usr/bin/env bash
# Stop the single-node SLURM cluster of scripts/cluster/slurm_up.sh: cancel its jobs, stop slurmd,
# slurmctld, slurmdbd, its MariaDB and (if slurm_up.sh started it) munged, then check that none is left.
# Only processes named by the pid files in $SEG_SLURM_STATE are signalled, plus job steps (slurmstepd)
# orphaned by our slurmd. Idempotent: with nothing running there is nothing to do.
# Keeps $SEG_SLURM_STATE (slurm.conf, logs in log/, the accounting database) for a look afterwards and
# for the next slurm_up.sh; `--purge` removes it. Packages stay installed.
set -euo pipefail

STATE="${SEG_SLURM_STATE:-/tmp/seg-slurm}"
export SLURM_CONF="$STATE/slurm.conf"

say() { printf '[slurm_down] %s\n' "$*"; }

# live (not zombie) processes whose name is one of "$@", as "pid name" lines
procs() {
    local names=" $* "
    ps -eo pid=,stat=,comm= | while read -r pid stat comm; do
        if [[ $stat != Z* && $names == *" $comm "* ]]; then echo "$pid $comm"; fi
    done
}
# the pids among "$@" that are alive (not zombies)
alive() {
    local p
    for p in "$@"; do
        if [[ -d /proc/$p ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$p/status" 2>/dev/null; then echo "$p"; fi
    done
}
pidfile() { cat "$1" 2>/dev/null || true; }

# stop NAME PID...: SIGTERM, wait up to 20 s, then SIGKILL whatever is left
stop() {
    local name=$1 pids
    shift
    pids="$(alive "$@" | sort -u | tr '\n' ' ')"
    [[ -n ${pids// /} ]] || return 0
    say "stopping $name (pid ${pids% })"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 100); do
        # shellcheck disable=SC2086
        pids="$(alive $pids | tr '\n' ' ')"
        [[ -n ${pids// /} ]] || return 0
        sleep 0.2
    done
    say "$name did not stop in 20 s: SIGKILL ${pids% }"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
}

# jobs first, while the controller is there to cancel them
if [[ -n "$(alive "$(pidfile "$STATE/slurmctld.pid")")" ]]; then
    if [[ -n "$(squeue -h -o %i 2>/dev/null || true)" ]]; then
        say "cancelling the jobs left on the test cluster: $(squeue -h -o %i | tr '\n' ' ')"
        scancel --full --partition=debug 2>/dev/null || true
        for _ in $(seq 100); do [[ -z "$(squeue -h -o %i 2>/dev/null || true)" ]] && break; sleep 0.2; done
    fi
fi

# slurmd and the job steps it started (a slurmstepd outlives a slurmd that is stopped)
slurmd_pid="$(alive "$(pidfile "$STATE/slurmd.pid")")"
# shellcheck disable=SC2086
stop slurmd $slurmd_pid
if [[ -n $slurmd_pid && -z "$(procs slurmd)" ]]; then
    # no slurmd left on this machine: every slurmstepd is an orphan of ours
    # shellcheck disable=SC2046
    stop slurmstepd $(procs slurmstepd | cut -d' ' -f1)
fi
stop slurmctld "$(pidfile "$STATE/slurmctld.pid")"
stop slurmdbd "$(pidfile "$STATE/slurmdbd.pid")"
# munged only if slurm_up.sh started it (a munged that was running before belongs to someone else)
ours="$(alive "$(pidfile "$STATE/mariadb/mariadbd.pid")")"
if [[ -f $STATE/munged.started ]]; then
    ours+=" $(alive "$(pidfile /run/munge/munged.pid)")"
    stop munged "$(pidfile /run/munge/munged.pid)"
    rm -f "$STATE/munged.started"
fi
stop mariadbd "$(pidfile "$STATE/mariadb/mariadbd.pid")"

# shellcheck disable=SC2086
left="$(procs slurmctld slurmd slurmstepd slurmdbd slurmscriptd)$(alive $ours)"
if [[ -n $left ]]; then
    printf '[slurm_down] error: still running:\n%s\n' "$left" >&2
    exit 1
fi
if [[ ${1:-} == --purge ]]; then
    rm -rf "$STATE"
    say "removed $STATE"
fi
other="$(procs munged mariadbd | tr '\n' ' ')"
say "down: no slurmctld, slurmd, slurmstepd or slurmdbd running${other:+ (left alone, not ours: $other)}"
