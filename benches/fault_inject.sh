#!/usr/bin/env bash
# Fault injection: N random interruptions of the site playbook (playbooks/site.toml) applied to
# two lab hosts (faults-1 a manager, faults-2 a worker; tests/lab/lab.sh, lab "faults",
# --subnet-index 30), each followed by a re-run that must converge and by checks on the hosts.
#
#   benches/fault_inject.sh [N] [--seed S] [--os debian|ubuntu] [--max-partition SECS]
#                           [--fresh-every K] [--kinds K1,K2,..] [--keep] [--out DIR]
#
#   N                    interruptions (default 10)
#   --seed S             seed of every random choice (default: the time); the same seed makes the
#                        same choices (kind, moment, host, drift), not the same timings
#   --os OS              lab OS, passed to `lab.sh up --os` (default: lab.sh's own default)
#   --max-partition P    longest network cut in seconds (default 150; cuts last 8..P s)
#   --fresh-every K      restart the lab (fresh hosts, a first converge to interrupt) every K
#                        iterations (default 0: only before the first)
#   --kinds LIST         only these interruption kinds (default: all five, below)
#   --keep               leave the lab up at the end (tests/lab/lab.sh down faults removes it)
#   --out DIR            results directory (default: a new mktemp -d directory)
#
# The moment of a fault: a plan (read only) counts the S steps the apply will run on the host;
# the fault comes when the apply has started step K (random in 0..S; 0: while it observes) plus
# 0..0.5 s (column delay: K/S@SECONDS after slipway started). A fault that comes after the run ended
# is reported as a miss (column hit = no) and still checked.
#
# Interruptions (one per iteration, at random):
#   kill-slipway   SIGKILL the local slipway process
#   kill-session   SIGKILL the `sshd: USER@notty` session processes of one host (docker exec)
#   restart-sshd   systemctl restart ssh (ssh.socket where that is active) on one host; the run
#                  goes on
#   partition      drop every packet of one host for 8..P s (iptables raw table in its network
#                  namespace, through nsenter); slipway gives that host up after about 45 s
#   concurrent     a second `slipway apply` 0..5 s after the first; both run to the end; the
#                  second must be refused (`host is locked by`) or wait, never overlap
# "Full disk" is not injected: the lab's containers share this machine's disk, so filling theirs
# would fill this machine's.
#
# Iteration 1 (and every K-th with --fresh-every) interrupts the first converge of fresh hosts
# (as root). Every other iteration first makes the hosts drift (one to three of: purge fail2ban,
# remove the sshd hardening drop-in, ufw disable, ufw reset, delete files under /opt/monitoring,
# a new alert_cpu_percent), then applies and interrupts that. After the interruption: wait until
# no apply script of the interrupted run is left on a host and no armed revert is pending (the
# revert windows are 30 s here), re-run apply as the deploy user, or as root where the deploy
# user cannot log in yet (a lock refusal is retried every 10 s for 90 s; a lock still held then is
# a stale lock), then `plan --detailed-exitcode` must exit 0. Then, on every host: no
# `.slipway.*` temp file (find / -xdev), `sshd -t` and `visudo -c` pass, deploy (with sudo) or
# root still logs in by key, no revert left armed, and no two runs' steps overlap in
# /var/log/slipway/apply.log.
#
# The inventory puts the lab's gateway in fail2ban_ignoreip: this script's own login probes must
# not get this machine banned, which would look like a lockout.
#
# Output: one line per iteration, then a summary. Exit 0 only when every re-run converged and
# there were no half-written or invalid files, lockouts, stale locks, overlaps or reverts left
# armed after a converged re-run. Results (iterations.tsv, summary.txt, per iteration: slipway's
# outputs, a timeline, host checks and evidence) are in the --out directory.
set -uo pipefail # no -e: failures are what is measured; each one is handled where it happens
cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly ROOT=$PWD LAB=tests/lab/lab.sh PLAYBOOK=playbooks/site.toml NAME=faults SUBNET=30
readonly WINDOW=30 # ssh_revert_window and firewall_revert_window
readonly APPLY_TIMEOUT=900 PLAN_TIMEOUT=400 LOCK_RETRY=90 DX_TIMEOUT=120
readonly ALL_KINDS=(kill-slipway kill-session restart-sshd partition concurrent)
readonly DRIFTS=(purge-fail2ban rm-sshd-dropin ufw-disable ufw-reset rm-monitoring cpu-threshold)
readonly DROPIN=/etc/ssh/sshd_config.d/00-slipway-hardening.conf

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
die() { printf 'fault_inject: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }
stamp() { date -u +%Y-%m-%dT%H:%M:%S.%3N; }
say() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$OUT/run.log" >&2; }
ev() { printf '%s %s\n' "$(stamp)" "$*" >>"$IT/timeline.txt"; }

runs=10 seed=$(date +%s) os_args=() max_partition=150 fresh_every=0 keep=0 out="" kinds=("${ALL_KINDS[@]}")
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed=${2:?}; shift 2 ;;
    --os) os_args=(--os "${2:?}"); shift 2 ;;
    --max-partition) max_partition=${2:?}; shift 2 ;;
    --fresh-every) fresh_every=${2:?}; shift 2 ;;
    --kinds) IFS=, read -r -a kinds <<<"${2:?}"; shift 2 ;;
    --keep) keep=1; shift ;;
    --out) out=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) runs=$1; shift ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number"
[[ "$seed" =~ ^[0-9]+$ ]] || die "--seed must be a number"
[[ "$max_partition" =~ ^[0-9]+$ ]] && [ "$max_partition" -ge 8 ] || die "--max-partition must be >= 8"
[[ "$fresh_every" =~ ^[0-9]+$ ]] || die "--fresh-every must be a number"
for k in "${kinds[@]}"; do [[ " ${ALL_KINDS[*]} " == *" $k "* ]] || die "unknown kind $k (${ALL_KINDS[*]})"; done
OUT=${out:-$(mktemp -d /tmp/slipway-faults.XXXXXX)}
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
IT=$OUT # until the first iteration

# ---------------------------------------------------------------------------------------------
# random choices: bash's generator, seeded; drawn only in this shell (never in a subshell)

RANDOM=$seed
R=0
rand() { R=$((RANDOM % $1)); }

# ---------------------------------------------------------------------------------------------
# the lab

HOSTS=() IPS=() KEY="" KNOWN_HOSTS="" GATEWAY="" INV="$OUT/inventory.toml"
LOGLINES=() # lines of each host's apply.log already analysed
CPU=80      # alert_cpu_percent passed to every run (80 is the role's default)

write_inventory() { # FILE [HOST_INDEX_AS_ROOT...]
  local file=$1 i
  shift
  {
    printf '[defaults]\nuser = "deploy"\nbecome = "sudo"\nidentity_file = "%s"\nknown_hosts = "%s"\nhost_key_checking = "strict"\n\n' \
      "$KEY" "$KNOWN_HOSTS"
    printf '[vars]\ndeploy_key_files = ["%s.pub"]\ndocker_source = "distribution"\ndocker_storage_driver = "vfs"\n' "$KEY"
    printf 'swarm_networks = [{ name = "backend", encrypted = true }]\n'
    printf 'grafana_admin_password = { secret = true, value = "grafana-faults-Secret-42" }\n'
    printf 'monitoring_resolve_image = "never"\n'
    printf 'ssh_revert_window = %s\nfirewall_revert_window = %s\n' "$WINDOW" "$WINDOW"
    printf 'fail2ban_ignoreip = ["127.0.0.1/8", "::1", "%s"]\n' "$GATEWAY"
    printf 'firewall_docker_published = [{ port = "9100", from = "%s" }, { port = "8080", from = "%s" }]\n' "${IPS[0]}" "${IPS[0]}"
    for i in "${!HOSTS[@]}"; do
      printf '\n[hosts.%s]\naddress = "%s"\ngroups = ["%s"]\n' "${HOSTS[$i]}" "${IPS[$i]}" "$([ "$i" = 0 ] && echo managers || echo workers)"
      [[ " $* " == *" $i "* ]] && printf 'user = "root"\n'
      [ "$i" = 1 ] && printf 'vars = { swarm_node_labels = { db = "true" } }\n'
    done
  } >"$file"
}

LAB_UPS=0
lab_up() {
  LAB_UPS=$((LAB_UPS + 1))
  local f="$OUT/lab-up-$LAB_UPS"
  say "starting lab $NAME (2 hosts${os_args[*]:+, ${os_args[*]}})"
  timeout -k 10 600 bash "$LAB" up "$NAME" 2 --subnet-index "$SUBNET" "${os_args[@]}" >"$f.out" 2>"$f.err" ||
    { tail -n 20 "$f.err" >&2; die "lab.sh up failed (see $f.err)"; }
  HOSTS=() IPS=()
  local k v w
  while read -r k v w; do
    case "$k" in
      host) HOSTS+=("$v") IPS+=("$w") ;;
      key) KEY=$v ;;
      known_hosts) KNOWN_HOSTS=$v ;;
    esac
  done <"$f.out"
  [ "${#HOSTS[@]}" = 2 ] && [ -n "$KEY" ] && [ -n "$KNOWN_HOSTS" ] || die "unexpected lab.sh up output: $f.out"
  GATEWAY="${IPS[0]%.*}.1"
  write_inventory "$INV"
  LOGLINES=(0 0)
  CPU=80
}

lab_down() { timeout -k 10 120 bash "$ROOT/$LAB" down "$NAME" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------
# host access: docker exec (never ssh, which would add sessions) for checks and faults; ssh only
# to test logins

dx() { # HOST_INDEX SHELL_COMMAND: run as root in the container, bounded
  timeout -k 5 "$DX_TIMEOUT" docker exec "${HOSTS[$1]}" sh -c "$2" </dev/null
}

ssh_try() { # USER HOST_INDEX COMMAND
  timeout -k 5 25 ssh -F /dev/null -i "$KEY" -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none \
    -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
    -o ConnectTimeout=5 -o LogLevel=ERROR "$1@${IPS[$2]}" "$3" </dev/null >/dev/null 2>&1
}

login_as() { # HOST_INDEX -> prints deploy, root or none (who gets in by key and reaches root)
  if ssh_try deploy "$1" 'sudo -n true'; then echo deploy
  elif ssh_try root "$1" true; then echo root
  else echo none; fi
}

# Sets INV_USE, USER_ARGS and USERS: the deploy user where it can log in, root elsewhere.
choose_user() {
  local i root=()
  for i in "${!HOSTS[@]}"; do ssh_try deploy "$i" true || root+=("$i"); done
  USER_ARGS=() INV_USE=$INV
  if [ "${#root[@]}" = 0 ]; then USERS=deploy
  elif [ "${#root[@]}" = "${#HOSTS[@]}" ]; then USERS=root USER_ARGS=(--user root)
  else
    USERS="root@$(for i in "${root[@]}"; do printf '%s ' "${HOSTS[$i]}"; done | xargs | tr ' ' ,)"
    INV_USE="$IT/inventory-mixed.toml"
    write_inventory "$INV_USE" "${root[@]}"
  fi
}

slip() { # OUTFILE TIMEOUT SLIPWAY_ARGS... (foreground)
  local f=$1 t=$2
  shift 2
  timeout -k 10 "$t" "$BIN" "$@" </dev/null >"$f" 2>&1
}

apply_args() { APPLY=(apply -i "$INV_USE" "$PLAYBOOK" "${USER_ARGS[@]}" --yes --color never -e "alert_cpu_percent=$CPU"); }

BG=() # background processes of this script, ended by their id on exit
bg_apply() { # OUTFILE -> BG_PID (the timeout process; slipway is its child)
  apply_args
  timeout -k 10 "$APPLY_TIMEOUT" "$BIN" "${APPLY[@]}" </dev/null >"$1" 2>&1 &
  BG_PID=$!
  BG+=("$BG_PID")
}
child_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' | head -n 1; }

# ---------------------------------------------------------------------------------------------
# faults

cpid() { timeout 30 docker inspect -f '{{.State.Pid}}' "${HOSTS[$1]}"; }
PARTITIONED=()
partition_on() { # HOST_INDEX
  local p c
  p=$(cpid "$1") || return 1
  for c in PREROUTING OUTPUT; do
    timeout 20 nsenter -t "$p" -n iptables -w 10 -t raw -I "$c" -m comment --comment slipway-fault -j DROP || return 1
  done
  PARTITIONED+=("$1")
}
partition_off() { # HOST_INDEX
  local p c n
  p=$(cpid "$1") || return 1
  for c in PREROUTING OUTPUT; do
    for n in 1 2 3 4 5; do
      timeout 20 nsenter -t "$p" -n iptables -w 10 -t raw -D "$c" -m comment --comment slipway-fault -j DROP 2>/dev/null || break
    done
  done
}

sessions() { # HOST_INDEX -> PIDs of sshd session processes (sshd: USER@notty)
  dx "$1" "ps -eo pid=,args=" | awk '$2 == "sshd:" && $3 ~ /@notty$/ { print $1 }' | xargs
}

restart_sshd() { # HOST_INDEX
  dx "$1" 'if systemctl is-active --quiet ssh.socket; then systemctl restart ssh.socket; else systemctl restart ssh; fi'
}

# ---------------------------------------------------------------------------------------------
# drift

drift() { # DRIFT_NAME MON_R1 MON_R2 CPU_R: make the hosts differ from the playbook
  local i files n a b
  case "$1" in
    purge-fail2ban)
      for i in "${!HOSTS[@]}"; do dx "$i" 'DEBIAN_FRONTEND=noninteractive apt-get purge -y fail2ban >/dev/null 2>&1'; done ;;
    rm-sshd-dropin)
      for i in "${!HOSTS[@]}"; do dx "$i" "rm -f $DROPIN; if systemctl is-active --quiet ssh.socket; then systemctl daemon-reload; systemctl restart ssh.socket; else systemctl reload ssh; fi"; done ;;
    ufw-disable)
      for i in "${!HOSTS[@]}"; do dx "$i" 'ufw --force disable >/dev/null'; done ;;
    ufw-reset)
      for i in "${!HOSTS[@]}"; do dx "$i" 'ufw --force reset >/dev/null'; done ;;
    rm-monitoring)
      mapfile -t files < <(dx 0 'find /opt/monitoring -type f | sort')
      n=${#files[@]}
      if [ "$n" -gt 0 ]; then
        a=${files[$(($2 % n))]} b=${files[$(($3 % n))]}
        dx 0 "rm -f '$a' '$b'"
        echo "removed $a $b" >>"$IT/timeline.txt"
      fi ;;
    cpu-threshold)
      n=$((70 + $4))
      [ "$n" = "$CPU" ] && n=$((n + 1))
      CPU=$n ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# after a fault

work_busy() { ! dx "$1" 'flock -n -x /run/lock/slipway.work true' >/dev/null 2>&1; }
pending_count() { # HOST_INDEX -> armed reverts (0 when the host does not answer)
  local c
  c=$(dx "$1" 'ls /var/lib/slipway/guard/*.pending 2>/dev/null | wc -l' 2>/dev/null)
  echo "${c:-0}"
}

# Waits until no apply script of an interrupted run is left and no revert is armed on any host
# (at most the revert window + 30 s after a pending revert is first seen). Sets SETTLE_NOTE.
settle() {
  local deadline=$(($(now) + 360)) first_pending=0 busy pend i
  SETTLE_NOTE=""
  while :; do
    busy="" pend=""
    for i in "${!HOSTS[@]}"; do
      work_busy "$i" && busy="$busy ${HOSTS[$i]}"
      [ "$(pending_count "$i")" -gt 0 ] && pend="$pend ${HOSTS[$i]}"
    done
    [ -z "$busy" ] && [ -z "$pend" ] && return
    if [ -n "$pend" ]; then
      [ "$first_pending" = 0 ] && { first_pending=$(now); ev "armed revert pending on$pend"; }
      if [ -z "$busy" ] && [ "$(now)" -gt $((first_pending + WINDOW + 30)) ]; then
        SETTLE_NOTE="revert still armed ${WINDOW}+30 s after seen on$pend"
        ev "$SETTLE_NOTE"
        return
      fi
    fi
    if [ "$(now)" -gt "$deadline" ]; then
      SETTLE_NOTE="host script still running after 360 s on$busy"
      ev "$SETTLE_NOTE"
      return
    fi
    sleep 2
  done
}

# Waits until the apply (PID) has started step K on host HI (counted in its apply.log past the
# lines seen before), or ended; then R/2 ms more (K = 0: 2 x R ms after the start). R: 0..999.
wait_moment() { # PID HI K R
  local pid=$1 hi=$2 k=$3 from=$((LOGLINES[$2] + 1)) n deadline=$(($(now) + APPLY_TIMEOUT))
  if [ "$k" = 0 ]; then sleep "$(($4 * 2 / 1000)).$(printf '%03d' $(($4 * 2 % 1000)))"; return; fi
  while kill -0 "$pid" 2>/dev/null && [ "$(now)" -lt "$deadline" ]; do
    n=$(dx "$hi" "tail -n +$from /var/log/slipway/apply.log 2>/dev/null | grep -c ' start\$'")
    [ "${n:-0}" -ge "$k" ] && break
    sleep 0.1
  done
  sleep "0.$(printf '%03d' $(($4 / 2)))"
}

lock_holders() { # HOST_INDEX -> PIDs with /run/lock/slipway.lock open
  dx "$1" 'for p in /proc/[0-9]*; do ls -l "$p/fd" 2>/dev/null | grep -q "/run/lock/slipway.lock" && echo "${p#/proc/}"; done' | xargs
}

evidence() { # HOST_INDEX FILE: what the host says about locks, guards, logs and logins
  dx "$1" "
    echo '== date'; date -u
    echo '== /run/lock'; ls -la /run/lock
    echo '== owner'; cat /run/lock/slipway.owner 2>&1
    echo '== step'; cat /run/slipway/step 2>&1
    echo '== lock holders'
    for p in /proc/[0-9]*; do ls -l \"\$p/fd\" 2>/dev/null | grep -q /run/lock/slipway. && ps -o pid=,ppid=,etime=,args= -p \"\${p#/proc/}\"; done
    echo '== sshd sessions and slipway processes'; ps -eo pid,ppid,etime,args | grep -E 'sshd|flock|slipway|sh -c' | grep -v grep
    echo '== TCP connections of sshd (ss -tnpo)'; ss -tnpo 2>&1 | grep -E 'State|sshd' 
    echo '== guard'; ls -la /var/lib/slipway/guard; for f in /var/lib/slipway/guard/*.pending; do [ -e \"\$f\" ] && { echo \"\$f:\"; cat \"\$f\"; }; done
    echo '== reverted'; for f in /var/lib/slipway/reverted/*; do [ -e \"\$f\" ] && { echo \"\$f:\"; cat \"\$f\"; }; done
    echo '== temps list'; cat /var/lib/slipway/temps 2>&1
    echo '== systemctl slipway-revert'; systemctl list-timers --all --no-pager slipway-revert.timer 2>&1; systemctl status --no-pager slipway-revert.service 2>&1 | head -n 12
    echo '== journalctl -u slipway-revert'; journalctl -u slipway-revert --no-pager -n 40 2>&1
    echo '== journalctl -t slipway'; journalctl -t slipway --no-pager -n 40 2>&1
    echo '== journalctl sshd (last 40)'; journalctl -u ssh -u ssh.socket --no-pager -n 40 2>&1
    echo '== sshd -T'; sshd -T 2>&1 | grep -Ei '^(port|permitrootlogin|passwordauthentication|clientalive)'
    echo '== drop-in'; cat $DROPIN 2>&1
    echo '== ufw'; ufw status verbose 2>&1
    echo '== fail2ban'; fail2ban-client status sshd 2>&1
    echo '== apply.log (last 80)'; tail -n 80 /var/log/slipway/apply.log 2>&1
  " >"$2" 2>&1
}

# Runs of one host's apply.log whose steps overlap. Prints "OVERLAPS UNTERMINATED" on the first
# line, details after; only events whose (later) line is past FROM count.
readonly OVERLAP_PY='
import re, sys
path, start = sys.argv[1], int(sys.argv[2])
line_re = re.compile(r"^(\S+) ([0-9a-f]{8}) (.*)$")
start_re = re.compile(r"^step (\d+) (.*) start$")
exit_re = re.compile(r"^step (\d+) (.*) exit (-?\d+)$")
stop_re = re.compile(r"^stopped before step (\d+) ")
open_steps, overlaps, unterminated, odd = {}, [], [], []
with open(path, errors="replace") as f:
    lines = f.read().splitlines()
for n, line in enumerate(lines, 1):
    m = line_re.match(line)
    if not m:
        odd.append((n, "unparsed", line)); continue
    ts, run, rest = m.groups()
    s, e = start_re.match(rest), exit_re.match(rest)
    if run in open_steps:
        o = open_steps.pop(run)
        if e and e.group(1) == o[1] and e.group(2) == o[2]:
            continue
        unterminated.append((o, run, n))
    if e:
        odd.append((n, "exit without start", line)); continue
    if s:
        for r2, o in open_steps.items():
            overlaps.append((o, r2, n, run, line))
        open_steps[run] = (n, s.group(1), s.group(2), ts)
    elif not stop_re.match(rest):
        odd.append((n, "unknown", line))
for r, o in open_steps.items():
    unterminated.append((o, r, None))
new_over = [x for x in overlaps if x[2] > start]
new_unterm = [x for x in unterminated if x[0][0] > start]
print(len(new_over), len(new_unterm))
for (ln, step, name, ts), ra, nb, rb, lb in new_over:
    print("OVERLAP: line %d run %s step %s %s (started %s, line %d, open then) while line %d: %s" % (nb, ra, step, name, ts, ln, nb, lb))
for (ln, step, name, ts), r, closed in new_unterm:
    print("UNTERMINATED: run %s step %s %s started %s (line %d) has no exit line; %s" % (r, step, name, ts, ln,
          "next line of the run: %d" % closed if closed else "open until the end of the log"))
for n, why, line in odd:
    if n > start:
        print("ODD (%s) line %d: %s" % (why, n, line))
'

# ---------------------------------------------------------------------------------------------
# one iteration

TSV="$OUT/iterations.tsv"
COLS="iter kind delay host drift hit apply_rc settle_s reverts rerun user tries waited plan converged halfwritten lockout stale overlaps unterm armed secs note"
fmt_row() { printf '%-4s %-13s %-14s %-12s %-36s %-4s %-7s %-8s %-7s %-5s %-14s %-5s %-6s %-4s %-9s %-11s %-7s %-5s %-8s %-6s %-5s %-5s %s\n' "$@"; }

T_CONVERGED=0 T_HALF=0 T_LOCKOUT=0 T_STALE=0 T_OVERLAP=0 T_UNTERM=0 T_ARMED=0 T_MISS=0
FORCE_FRESH=0

iteration() { # ITER
  local it=$1 t_start kind delay host hi drift_desc fresh=0 i
  IT=$(printf '%s/iter-%02d' "$OUT" "$it")
  mkdir -p "$IT"
  t_start=$(now)

  # every random choice of the iteration, always in this order
  local r_kind r_frac r_host r_d1 r_d2 r_nd r_cpu r_part r_conc r_m1 r_m2 r_sub
  rand "${#kinds[@]}"; r_kind=$R
  rand 1000; r_frac=$R
  rand 2; r_host=$R
  rand 6; r_d1=$R
  rand 5; r_d2=$R
  rand 3; r_nd=$R
  rand 20; r_cpu=$R
  rand 1000; r_part=$R
  rand 1000; r_conc=$R
  rand 1000; r_m1=$R
  rand 1000; r_m2=$R
  rand 1000; r_sub=$R

  if [ "$it" = 1 ] || [ "$FORCE_FRESH" = 1 ] || { [ "$fresh_every" -gt 0 ] && [ $(((it - 1) % fresh_every)) = 0 ]; }; then
    fresh=1
    FORCE_FRESH=0
    [ "$it" = 1 ] || lab_down
    lab_up
  fi
  kind=${kinds[$r_kind]}
  hi=$r_host
  host=${HOSTS[$hi]}
  for i in "${!HOSTS[@]}"; do
    LOGLINES[$i]=$(dx "$i" 'cat /var/log/slipway/apply.log 2>/dev/null | wc -l' 2>/dev/null || echo 0)
  done

  if [ "$fresh" = 1 ]; then
    drift_desc=first-converge
  else
    # one to three different drifts: the first drawn, then the next ones after a drawn gap
    local d picked=() j=$r_d1
    for ((i = 0; i <= r_nd; i++)); do
      picked+=("${DRIFTS[$j]}")
      j=$(((j + 1 + r_d2 % (5 - i)) % 6))
      while [[ " ${picked[*]} " == *" ${DRIFTS[$j]} "* ]]; do j=$(((j + 1) % 6)); done
    done
    drift_desc=$(IFS=+; echo "${picked[*]}")
    ev "drift: $drift_desc"
    for d in "${picked[@]}"; do drift "$d" "$r_m1" "$r_m2" "$r_cpu"; done
    [[ "$drift_desc" == *cpu-threshold* ]] && drift_desc="${drift_desc/cpu-threshold/cpu=$CPU}"
  fi
  case "$kind" in kill-slipway | concurrent) host=all ;; esac

  # The moment: a second apply comes 0..5 s after the first; any other fault comes once the
  # first apply has started step K (0..S) of the S steps it plans on the faulted host (K = 0:
  # while it observes, 0..2 s after its start), plus 0..0.5 s. The steps are counted with a plan
  # (read only, no lock) just before. When the drawn host plans no step, the other host is
  # faulted (or, for kill-slipway, counted).
  choose_user
  apply_args
  local steps=() k=0 sc ch=$hi moment
  if [ "$kind" != concurrent ]; then
    slip "$IT/preplan.json" "$PLAN_TIMEOUT" plan -i "$INV_USE" "$PLAYBOOK" "${USER_ARGS[@]}" --format json -e "alert_cpu_percent=$CPU"
    mapfile -t steps < <(python3 -c 'import json,sys
for h in json.load(open(sys.argv[1]))["hosts"]: print(len(h.get("changes", [])) + len(h.get("handlers", [])))' "$IT/preplan.json" 2>/dev/null)
    sc=${steps[$hi]:-0}
    if [ "$sc" = 0 ]; then
      ch=$((1 - hi)) sc=${steps[$ch]:-0}
      # a fault on one host goes to a host with work
      [ "$host" = all ] || [ "$sc" = 0 ] || { hi=$ch; host=${HOSTS[$hi]}; }
    fi
    k=$((r_frac * (sc + 1) / 1000))
    moment="$k/$sc"
    [ "$ch" != "$hi" ] && moment="$moment(${HOSTS[$ch]##*-})"
  else
    moment="+$((r_conc * 5 / 1000)).$((r_conc * 50 / 1000 % 10))s"
  fi
  say "iteration $it/$runs: $kind at $moment on $host after $drift_desc"

  # the interrupted apply
  ev "apply as $USERS: slipway ${APPLY[*]}"
  local apply_rc hit=no pdur=0 pid t_apply p2="" rc2="" s t0ns
  t_apply=$(now)
  t0ns=$(date +%s%N)
  bg_apply "$IT/apply.out"
  local first=$BG_PID
  ev "apply started (timeout pid $first)"
  if [ "$kind" = concurrent ]; then
    sleep "$((r_conc * 5 / 1000)).$(printf '%03d' $((r_conc * 5 % 1000)))"
  else
    wait_moment "$first" "$ch" "$k" "$r_sub"
  fi
  kill -0 "$first" 2>/dev/null && hit=yes
  s=$((($(date +%s%N) - t0ns) / 100000000))
  delay="$moment@$((s / 10)).$((s % 10))s"
  ev "fault moment: $delay"
  case "$kind" in
    kill-slipway)
      pid=$(child_of "$first")
      if [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; then ev "SIGKILL slipway pid $pid"; else hit=no; ev "slipway already ended"; fi ;;
    kill-session)
      s=""
      for i in 1 2 3 4 5 6 7 8 9 10; do
        s=$(sessions "$hi")
        [ -n "$s" ] || ! kill -0 "$first" 2>/dev/null && break
        sleep 0.5
      done
      if [ -n "$s" ]; then
        dx "$hi" "kill -KILL $s"
        ev "SIGKILL sshd sessions on $host: $s"
      else
        hit=no
        ev "no sshd session on $host to kill"
      fi ;;
    restart-sshd)
      restart_sshd "$hi"
      ev "restarted sshd on $host (rc $?)" ;;
    partition)
      pdur=$((8 + r_part * (max_partition - 8) / 1000))
      if partition_on "$hi"; then
        ev "partition of $host for ${pdur}s"
        (sleep "$pdur"; partition_off "$hi") &
        p2=$!
        BG+=("$p2")
      else
        ev "partition of $host FAILED"
        hit=no
      fi
      host="$host/${pdur}s" ;;
    concurrent)
      bg_apply "$IT/apply-2.out"
      ev "second apply started (timeout pid $BG_PID)" ;;
  esac
  { wait "$first"; } 2>/dev/null; apply_rc=$?
  ev "apply ended rc $apply_rc after $(($(now) - t_apply)) s"
  if [ "$kind" = concurrent ]; then
    wait "$BG_PID"; rc2=$?
    ev "second apply ended rc $rc2"
    local r1=ok r2=ok
    grep -q 'host is locked by' "$IT/apply.out" && r1=locked
    grep -q 'host is locked by' "$IT/apply-2.out" && r2=locked
    grep -q 'waited for the remaining script' "$IT/apply-2.out" && r2="$r2+waited"
    [ "$apply_rc" = 0 ] || [ "$r1" != ok ] || r1=failed
    [ "$rc2" = 0 ] || [ "$r2" != ok ] || r2=failed
    apply_rc="$apply_rc/$rc2"
    host="$r1/$r2"
  fi
  if [ -n "$p2" ]; then
    wait "$p2"
    partition_off "$hi"
    PARTITIONED=()
    ev "partition of ${HOSTS[$hi]} lifted"
  fi
  [ "$hit" = no ] && T_MISS=$((T_MISS + 1))

  # let the host settle: scripts of the dead run end, armed reverts fire
  local t_settle=$(now) settle_s reverts=0 lockout=0 who
  settle
  settle_s=$(($(now) - t_settle))
  for i in "${!HOSTS[@]}"; do
    s=$(dx "$i" "journalctl -t slipway --since @$t_start -o cat 2>/dev/null | grep -c '^reverted'" 2>/dev/null)
    reverts=$((reverts + ${s:-0}))
  done
  ev "settled after ${settle_s}s, $reverts revert(s) by the hosts ${SETTLE_NOTE:+($SETTLE_NOTE)}"
  local note=$SETTLE_NOTE
  for i in "${!HOSTS[@]}"; do
    who=$(login_as "$i")
    if [ "$who" = none ]; then
      lockout=$((lockout + 1))
      note="$note; LOCKOUT before re-run: ${HOSTS[$i]}"
      evidence "$i" "$IT/lockout-before-rerun-${HOSTS[$i]}.txt"
    fi
  done

  # the re-run: deploy, or root where deploy cannot log in; a lock refusal is retried
  local tries=0 rerun_rc t_rerun=$(now) t_refused=0 stale=0 waited=no holders locked
  for i in "${!HOSTS[@]}"; do
    holders=$(lock_holders "$i")
    [ -z "$holders" ] || ev "run lock of ${HOSTS[$i]} still held (pids $holders: $(dx "$i" 'cat /run/lock/slipway.owner' 2>/dev/null))"
  done
  while :; do
    tries=$((tries + 1))
    choose_user
    apply_args
    ev "re-run $tries as $USERS"
    slip "$IT/rerun-$tries.out" "$APPLY_TIMEOUT" "${APPLY[@]}"; rerun_rc=$?
    ev "re-run $tries rc $rerun_rc"
    grep -q 'waited for the remaining script' "$IT/rerun-$tries.out" && waited=yes
    [ "$rerun_rc" = 0 ] && break
    grep -q 'host is locked by' "$IT/rerun-$tries.out" || break
    [ "$t_refused" = 0 ] && t_refused=$(now)
    if [ $(($(now) - t_refused)) -ge "$LOCK_RETRY" ]; then
      # Still refused 90 s after the first refusal: a stale lock. Its evidence, then its holders
      # are ended so that the run can go on.
      [ "$stale" = 1 ] && break
      stale=1
      for i in "${!HOSTS[@]}"; do
        grep -q "^${HOSTS[$i]}: FAILED: host is locked by" "$IT/rerun-$tries.out" || continue
        holders=$(lock_holders "$i")
        locked=$(grep -m 1 -o "^${HOSTS[$i]}: FAILED: host is locked by.*since epoch [0-9]*" "$IT/rerun-$tries.out" | sed 's/.*locked by //')
        evidence "$i" "$IT/stale-lock-${HOSTS[$i]}.txt"
        note="$note; STALE LOCK on ${HOSTS[$i]} ($locked; holders ${holders:-gone by now})"
        [ -n "$holders" ] && dx "$i" "kill -KILL $holders"
        ev "stale lock on ${HOSTS[$i]}: $locked; killed holders ${holders:-(none left)}"
      done
      continue
    fi
    sleep 10
  done
  local rerun_s=$(($(now) - t_rerun))

  # converged?
  local plan_rc converged=no
  choose_user
  slip "$IT/plan.out" "$PLAN_TIMEOUT" plan -i "$INV_USE" "$PLAYBOOK" "${USER_ARGS[@]}" --detailed-exitcode --color never -e "alert_cpu_percent=$CPU"
  plan_rc=$?
  ev "plan --detailed-exitcode rc $plan_rc (as $USERS)"
  [ "$plan_rc" = 0 ] && converged=yes
  local rerun_user=$USERS

  # the hosts: temp files, invalid configuration, logins, armed reverts, overlapping runs
  local half=0 armed=0 overlaps=0 unterm=0 c
  for i in "${!HOSTS[@]}"; do
    local h=${HOSTS[$i]} f="$IT/checks-${HOSTS[$i]}.txt"
    {
      echo "== temp files"; dx "$i" "find / -xdev -name '.slipway.*' 2>/dev/null"
      echo "== sshd -t"; dx "$i" 'sshd -t 2>&1; echo "rc $?"'
      echo "== visudo -c"; dx "$i" 'visudo -c >/dev/null 2>&1; echo "rc $?"'
      echo "== drop-in"; dx "$i" "if [ -e $DROPIN ]; then sha256sum $DROPIN; head -n 1 $DROPIN; else echo absent; fi"
      echo "== armed"; dx "$i" 'ls /var/lib/slipway/guard/*.pending 2>/dev/null; systemctl is-active slipway-revert.timer'
      echo "== login"; echo "$(login_as "$i")"
    } >"$f" 2>&1
    c=$(awk '/^== temp files/{t=1;next} /^==/{t=0} t && /\.slipway\./' "$f" | wc -l)
    [ "$c" -gt 0 ] && note="$note; $c temp file(s) on $h"
    half=$((half + c))
    if ! awk '/^== sshd -t/{t=1;next} /^==/{t=0} t' "$f" | grep -qx 'rc 0'; then half=$((half + 1)); note="$note; sshd -t fails on $h"; fi
    if ! awk '/^== visudo -c/{t=1;next} /^==/{t=0} t' "$f" | grep -qx 'rc 0'; then half=$((half + 1)); note="$note; visudo -c fails on $h"; fi
    c=$(awk '/^== armed/{t=1;next} /^==/{t=0} t && /\.pending$/' "$f" | wc -l)
    if [ "$c" -gt 0 ]; then armed=$((armed + c)); note="$note; revert still armed on $h"; fi
    if [ "$(tail -n 1 "$f")" = none ]; then
      lockout=$((lockout + 1))
      note="$note; LOCKOUT after re-run: $h"
    fi
    dx "$i" 'cat /var/log/slipway/apply.log 2>/dev/null' >"$IT/apply-$h.log"
    python3 -c "$OVERLAP_PY" "$IT/apply-$h.log" "${LOGLINES[$i]}" >"$IT/overlap-$h.txt" 2>&1
    read -r c s <"$IT/overlap-$h.txt"
    overlaps=$((overlaps + ${c:-0})) unterm=$((unterm + ${s:-0}))
    [ "${c:-0}" -gt 0 ] && note="$note; OVERLAP on $h"
    [ "${s:-0}" -gt 0 ] && note="$note; unterminated step on $h"
    evidence "$i" "$IT/evidence-$h.txt"
  done
  [ "$stale" = 1 ] && T_STALE=$((T_STALE + 1))
  if [ "$converged" = no ]; then
    note="$note; NOT CONVERGED: $(grep -m 3 -E '^(error|  [~+-] |.*FAILED|.*not converged)' "$IT/plan.out" "$IT/rerun-$tries.out" 2>/dev/null | cut -c1-160 | tr '\n' ' ')"
    # Bring the hosts back for the next iterations: one more apply, else fresh hosts.
    choose_user
    apply_args
    slip "$IT/recover.out" "$APPLY_TIMEOUT" "${APPLY[@]}"
    if slip "$IT/recover-plan.out" "$PLAN_TIMEOUT" plan -i "$INV_USE" "$PLAYBOOK" "${USER_ARGS[@]}" --detailed-exitcode --color never -e "alert_cpu_percent=$CPU"; then
      note="$note; a second apply converged"
    else
      note="$note; a second apply did not converge: fresh hosts next"
      FORCE_FRESH=1
    fi
  else
    T_CONVERGED=$((T_CONVERGED + 1))
  fi
  T_HALF=$((T_HALF + half)) T_LOCKOUT=$((T_LOCKOUT + lockout)) T_OVERLAP=$((T_OVERLAP + overlaps))
  T_UNTERM=$((T_UNTERM + unterm))
  [ "$converged" = yes ] && T_ARMED=$((T_ARMED + armed))
  note=${note#; }
  [ "$hit" = no ] && note="${note:+$note; }interruption came after the run ended"

  local secs=$(($(now) - t_start))
  local row
  row=$(fmt_row "$it" "$kind" "$delay" "$host" "$drift_desc" "$hit" "$apply_rc" "$settle_s" "$reverts" "$rerun_rc" \
    "$rerun_user" "$tries" "$waited" "$plan_rc" "$converged" "$half" "$lockout" "$stale" "$overlaps" "$unterm" "$armed" "$secs" "${note:--}")
  printf '%s\n' "$row" >>"$OUT/iterations.txt"
  printf '%s\t' "$it" "$kind" "$delay" "$host" "$drift_desc" "$hit" "$apply_rc" "$settle_s" "$reverts" "$rerun_rc" \
    "$rerun_user" "$tries" "$waited" "$plan_rc" "$converged" "$half" "$lockout" "$stale" "$overlaps" "$unterm" "$armed" "$secs" >>"$TSV"
  printf '%s\n' "${note:--}" >>"$TSV"
  printf 'apply %ss, settle %ss, re-run %ss, total %ss\n' "$((t_settle - t_apply))" "$settle_s" "$rerun_s" "$secs" >>"$IT/timeline.txt"
  say "$row"
}

# ---------------------------------------------------------------------------------------------

cleanup() {
  local p i
  for p in "${BG[@]}"; do kill -0 "$p" 2>/dev/null && kill "$p" 2>/dev/null; done
  for i in "${PARTITIONED[@]}"; do partition_off "$i" 2>/dev/null; done
  if [ "$keep" = 1 ]; then
    say "lab $NAME kept (tests/lab/lab.sh down $NAME removes it)"
  else
    lab_down
  fi
}

command -v python3 >/dev/null || die "python3 is needed (the apply.log overlap check)"
command -v nsenter >/dev/null && command -v iptables >/dev/null || die "nsenter and iptables are needed (partition)"
[ "$(id -u)" = 0 ] || die "run as root (nsenter into the lab's network namespaces)"
say "results in $OUT; seed $seed; $runs iterations; kinds ${kinds[*]}; partitions up to ${max_partition}s"
say "building slipway"
until timeout 1200 cargo build --release --locked -q 2>"$OUT/build.err"; do
  tries=${tries:-0}; tries=$((tries + 1))
  [ "$tries" -lt 6 ] || { cat "$OUT/build.err" >&2; die "cargo build --release failed 6 times"; }
  say "build failed (others may be editing src/); retrying in 30 s"
  sleep 30
done
# A copy: others may rebuild target/release/slipway while this runs.
BIN=$OUT/slipway
cp "$ROOT/target/release/slipway" "$BIN" || die "cannot copy target/release/slipway to $OUT"
timeout -k 10 3600 bash "$LAB" image "${os_args[@]:1}" >"$OUT/lab-image.out" 2>&1 || die "lab.sh image failed: $OUT/lab-image.out"
trap cleanup EXIT
trap 'exit 130' INT TERM
printf '%s\n' "$COLS" | tr ' ' '\t' >"$TSV"
fmt_row $COLS >"$OUT/iterations.txt"
{
  echo "seed $seed runs $runs os ${os_args[*]:-default} max_partition $max_partition fresh_every $fresh_every kinds ${kinds[*]}"
  echo "slipway built from $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' with uncommitted changes in src/'), sha256 $(sha256sum "$BIN" | cut -c1-16)"
} >"$OUT/run-info.txt"

for ((n = 1; n <= runs; n++)); do iteration "$n"; done

{
  echo
  cat "$OUT/iterations.txt"
  echo
  echo "fault injection: $runs runs of $PLAYBOOK on 2 lab hosts, seed $seed (results: $OUT)"
  printf '%-34s %s\n' \
    "runs" "$runs" \
    "converged on re-run" "$T_CONVERGED/$runs" \
    "half-written/invalid files" "$T_HALF" \
    "lockouts" "$T_LOCKOUT" \
    "stale locks" "$T_STALE" \
    "overlaps" "$T_OVERLAP" \
    "reverts left armed after converge" "$T_ARMED" \
    "unterminated steps (info)" "$T_UNTERM" \
    "interruptions after the run (info)" "$T_MISS"
} | tee "$OUT/summary.txt"
[ "$T_CONVERGED" = "$runs" ] && [ "$T_HALF" = 0 ] && [ "$T_LOCKOUT" = 0 ] && [ "$T_STALE" = 0 ] &&
  [ "$T_OVERLAP" = 0 ] && [ "$T_ARMED" = 0 ]
