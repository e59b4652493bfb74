#!/usr/bin/env bash
# The project's one test command: installs the test lab's prerequisites (docker, debootstrap;
# starts dockerd) and the validators of rendered configs, builds the lab image (cached), then
# runs every test.
#   scripts/test.sh [cargo test args...]     e.g. scripts/test.sh --test lab_smoke
# Needs root on a fresh Debian 12 machine (apt-get, dockerd, debootstrap), and rustup's cargo.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${HOME:-}" ]; then
  HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
  export HOME
fi
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "test.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }

bash tests/lab/lab.sh deps
bash tests/lab/lab.sh image all
# Workload images from Ubuntu 24.04 packages, pushed to the lab registry (cached).
bash tests/lab/images.sh registry >/dev/null

# The real validators the tests run: promtool, amtool and docker-compose on rendered files,
# vagrant on the Vagrantfiles (and to bring the docker variant up), groff on the man page.
# Only their commands are wanted, not the daemons the packages start, nor what they
# recommend (a kernel, for vagrant).
validators=(prometheus prometheus-alertmanager docker-compose vagrant vagrant-libvirt groff-base)
missing=()
for p in "${validators[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
  for unit in prometheus prometheus-alertmanager; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi

# ssh-audit judges the sshd ssh_hardening leaves (tests/ssh_audit_lab.rs). Pinned: its policies
# and verdicts change between releases.
ssh_audit_version=3.9.0
if ! pip3 show ssh-audit 2>/dev/null | grep -qx "Version: $ssh_audit_version"; then
  command -v pip3 >/dev/null 2>&1 || {
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-pip </dev/null
  }
  pip3 install --break-system-packages "ssh-audit==$ssh_audit_version"
fi

# The notification tests' endpoints on loopback: python3's http.server and smtpd (Debian 12's
# python3, 3.11, still has smtpd).
command -v python3 >/dev/null 2>&1 || {
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 </dev/null
}

# Labs started by this run carry this id, so that labs a killed test could not tear down
# are removed at the end (and only this run's: other runs' labs are left alone).
SLIPWAY_LAB_RUN="run-$$-$(date +%s)"
export SLIPWAY_LAB_RUN
trap 'bash tests/lab/lab.sh down-run "$SLIPWAY_LAB_RUN" || true' EXIT

cargo test --release --locked "$@"
