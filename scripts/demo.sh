#!/usr/bin/env bash
# The demo: start three lab hosts (Debian 12 systemd containers with sshd), then plan,
# apply, and plan again the example playbook against them.
#   scripts/demo.sh          bring the lab up (if needed) and run the demo
#   scripts/demo.sh down     remove the demo lab
# Needs root on Debian 12 (apt-get, dockerd, debootstrap) and rustup's cargo.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
lab=tests/lab/lab.sh

if [ "${1:-}" = down ]; then
  exec bash "$lab" down demo
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
bash "$lab" deps
bash "$lab" image
cargo build --release --locked
bin=target/release/slipway

state="${XDG_STATE_HOME:-$HOME/.local/state}/slipway-lab/demo"
if [ ! -f "$state/inventory.toml" ] || ! docker inspect demo-1 >/dev/null 2>&1; then
  bash "$lab" down demo >/dev/null 2>&1 || true
  bash "$lab" up demo 3 >/dev/null
fi
inventory="$state/inventory.toml"
# The example's secret: templates receive it, output never shows it.
EXAMPLE_DB_PASSWORD="$(head -c 12 /dev/urandom | base64)"
export EXAMPLE_DB_PASSWORD

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step slipway plan -i "$inventory" playbooks/example.toml
"$bin" plan -i "$inventory" playbooks/example.toml || true
step slipway apply -i "$inventory" playbooks/example.toml --yes
"$bin" apply -i "$inventory" playbooks/example.toml --yes
step slipway plan -i "$inventory" playbooks/example.toml --detailed-exitcode
"$bin" plan -i "$inventory" playbooks/example.toml --detailed-exitcode
echo
echo "The lab stays up: $bin facts -i $inventory demo-1; remove it with scripts/demo.sh down"
