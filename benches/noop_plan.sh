#!/usr/bin/env bash
# Benchmark: the whole site playbook planned against the 3 lab hosts of inventories/lab.toml
# when nothing needs to change (one manager, two workers, Ubuntu 24.04, converged first).
#   benches/noop_plan.sh [RUNS]      default 20 runs
#   SLIPWAY_BIN=path/to/slipway benches/noop_plan.sh   time that build instead (to compare two)
# Prints wall time (min / median / max) and remote commands per host. Not part of the
# tests: timing depends on the machine. The lab stays up (scripts/demo.sh down removes it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-20}"
lab=tests/lab/lab.sh
inventory=inventories/lab.toml
playbook=playbooks/site.toml

bin="${SLIPWAY_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --locked -q
  bin=target/release/slipway
fi
state="${XDG_STATE_HOME:-$HOME/.local/state}/slipway-lab/lab"
# Ubuntu 24.04 is the primary OS; a lab of another OS left by hand is replaced.
if [ ! -f "$state/id_ed25519" ] || [ "$(docker inspect -f '{{index .Config.Labels "slipway-lab.os"}}' lab-1 2>/dev/null)" != ubuntu ]; then
  bash "$lab" image ubuntu >/dev/null
  bash "$lab" down lab >/dev/null 2>&1 || true
  bash "$lab" up lab 3 --os ubuntu --subnet-index 10 >/dev/null
  "$bin" apply -i $inventory $playbook --user root --yes --color never >/dev/null 2>&1 ||
    { echo "bench: the first converge failed; run it by hand to see why" >&2; exit 1; }
fi
"$bin" plan -i $inventory $playbook --detailed-exitcode >/dev/null 2>&1 ||
  { echo "bench: the lab is not converged (plan shows changes or fails)" >&2; exit 1; }

times=()
for _ in $(seq "$runs"); do
  start=$(date +%s%N)
  "$bin" plan -i $inventory $playbook --color never >/dev/null 2>&1
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
done
mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)

echo "no-op plan of $playbook on the 3 hosts of $inventory, $runs runs"
echo
printf '%-10s %8s\n' "wall time" "ms" "min" "${sorted[0]}" "median" "${sorted[$(( runs / 2 ))]}" "max" "${sorted[$(( runs - 1 ))]}"
echo
printf '%-10s %16s %10s %10s\n' "host" "remote commands" "resources" "changes"
"$bin" plan -i $inventory $playbook --format json 2>/dev/null |
  python3 -c 'import json,sys
for h in json.load(sys.stdin)["hosts"]:
    print("%-10s %16d %10d %10d" % (h["host"], h["remote_commands"], len(h["fingerprints"]), len(h["changes"])))'
