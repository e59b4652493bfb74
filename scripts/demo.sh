#!/usr/bin/env bash
# The demo: three fresh Ubuntu 24.04 lab hosts (containers with systemd and sshd, made like
# a cloud server image) become a hardened Docker Swarm: plan, apply as root (the deploy user
# does not exist yet), then plan and apply again as the deploy user: nothing left to do.
#   scripts/demo.sh          bring the lab up (if needed) and run the demo
#   scripts/demo.sh down     remove the lab hosts
# Needs root on Debian 12 (apt-get, dockerd, debootstrap) and rustup's cargo.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
lab=tests/lab/lab.sh

if [ "${1:-}" = down ]; then
  exec bash "$lab" down lab
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
bash "$lab" deps
bash "$lab" image
cargo build --release --locked
bin=target/release/slipway

# inventories/lab.toml describes exactly these hosts: lab-1 (manager), lab-2 and lab-3 (workers).
state="${XDG_STATE_HOME:-$HOME/.local/state}/slipway-lab/lab"
# A lab left by an older demo of other hosts (Debian 12) is replaced.
os_of_lab() { docker inspect -f '{{index .Config.Labels "slipway-lab.os"}}' lab-1 2>/dev/null; }
if [ ! -f "$state/id_ed25519" ] || [ "$(os_of_lab)" != ubuntu ]; then
  bash "$lab" down lab >/dev/null 2>&1 || true
  bash "$lab" up lab 3 --subnet-index 10 >/dev/null
  fresh=1
fi
inventory=inventories/lab.toml

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

if [ -n "${fresh:-}" ]; then
  step slipway plan -i $inventory playbooks/site.toml --user root
  "$bin" plan -i $inventory playbooks/site.toml --user root || true
  step slipway apply -i $inventory playbooks/site.toml --user root --yes
  "$bin" apply -i $inventory playbooks/site.toml --user root --yes
fi
step slipway plan -i $inventory playbooks/site.toml --detailed-exitcode
"$bin" plan -i $inventory playbooks/site.toml --detailed-exitcode
step slipway apply -i $inventory playbooks/site.toml --yes
"$bin" apply -i $inventory playbooks/site.toml --yes
step "docker node ls   (on lab-1)"
docker exec lab-1 docker node ls
echo
echo "The lab stays up: $bin facts -i $inventory lab-1; remove it with scripts/demo.sh down"
