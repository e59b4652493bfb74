#!/usr/bin/env bash
# Benchmark: a plan with nothing to change, against 3 lab hosts.
#   benches/noop_plan.sh [PLAYBOOK] [RUNS]     default: playbooks/example.toml, 20 runs
# Starts (or reuses) the lab "bench", converges it once, then times RUNS no-op plans and
# prints wall time and remote commands per host. Not part of the tests: timing depends on
# the machine. Remove the lab with: tests/lab/lab.sh down bench
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
playbook="${1:-playbooks/example.toml}"
runs="${2:-20}"
lab=tests/lab/lab.sh

cargo build --release --locked -q
bin=target/release/slipway
state="${XDG_STATE_HOME:-$HOME/.local/state}/slipway-lab/bench"
if [ ! -f "$state/inventory.toml" ] || ! docker inspect bench-1 >/dev/null 2>&1; then
  bash "$lab" image >/dev/null
  bash "$lab" down bench >/dev/null 2>&1 || true
  bash "$lab" up bench 3 >/dev/null
fi
inventory="$state/inventory.toml"
EXAMPLE_DB_PASSWORD="${EXAMPLE_DB_PASSWORD:-bench-secret}"
export EXAMPLE_DB_PASSWORD

"$bin" apply -i "$inventory" "$playbook" --yes --color never >/dev/null 2>&1 ||
  { echo "bench: the first apply failed; run it by hand to see why" >&2; exit 1; }
"$bin" plan -i "$inventory" "$playbook" --detailed-exitcode >/dev/null 2>&1 ||
  { echo "bench: the lab is not converged (plan shows changes)" >&2; exit 1; }

times=()
for _ in $(seq "$runs"); do
  start=$(date +%s%N)
  "$bin" plan -i "$inventory" "$playbook" --color never >/dev/null 2>&1
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
median=${sorted[$(( runs / 2 ))]}

echo "no-op plan of $playbook on 3 lab hosts, $runs runs"
echo
printf '%-10s %8s\n' "wall time" "ms"
printf '%-10s %8s\n' "min" "${sorted[0]}"
printf '%-10s %8s\n' "median" "$median"
printf '%-10s %8s\n' "max" "${sorted[$(( runs - 1 ))]}"
echo
printf '%-14s %16s %10s\n' "host" "remote commands" "changes"
"$bin" plan -i "$inventory" "$playbook" --format json 2>/dev/null |
  python3 -c 'import json,sys
for h in json.load(sys.stdin)["hosts"]:
    print("%-14s %16d %10d" % (h["host"], h["remote_commands"], len(h["changes"])))'
