#!/usr/bin/env bash
# slipway test lab: systemd hosts as Docker containers on a private Docker network, reached over
# real SSH. Two OSes: Ubuntu 24.04 (noble, made like a cloud server image; the default) and
# Debian 12 (bookworm). See the usage text below (lab.sh help).
#
# Machine-readable output goes to stdout; progress and errors go to stderr.
set -euo pipefail

readonly LAB_OSES=(debian ubuntu)
readonly DEFAULT_OS=ubuntu
# Bump an OS's recipe when its image recipe changes (build_image, customize_rootfs and what
# they call; for shared code bump both): it invalidates that image's cache.
readonly DEBIAN_RECIPE=4 UBUNTU_RECIPE=2
readonly DEBIAN_INCLUDE=systemd-sysv,systemd,udev,openssh-server,sudo,iproute2,ca-certificates,procps,kmod,dbus
# What a 24.04 cloud server image has that the minimal Debian host lacks.
readonly UBUNTU_INCLUDE=$DEBIAN_INCLUDE,python3,ufw,rsyslog,needrestart,unattended-upgrades
# Debian 12's debootstrap has no noble script; gutsy's is the one later Ubuntu releases link to.
readonly UBUNTU_DEBOOTSTRAP_SCRIPT=/usr/share/debootstrap/scripts/gutsy
# Masked in the images: nothing fails at boot without them masked (tried), but these mount the
# shared kernel's debug/trace/config/fuse file systems, or would load kernel modules listed in
# /etc/modules-load.d into the machine's kernel (lab hosts have CAP_SYS_MODULE): useless in a
# container and not theirs to touch.
readonly MASK_UNITS=(
  sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount
  sys-fs-fuse-connections.mount systemd-modules-load.service
)
readonly CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/slipway-lab"
readonly STATE_ROOT="${XDG_STATE_HOME:-$HOME/.local/state}/slipway-lab"
readonly READY_TIMEOUT="${SLIPWAY_LAB_READY_TIMEOUT:-60}"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: tests/lab/lab.sh COMMAND [ARGS]

  deps                         install docker.io, debootstrap, openssh-client and -server, iproute2 (apt)
                               and start dockerd if it is not answering
  image [debian|ubuntu|all]    build the image of an OS (default ubuntu): slipway-lab:bookworm
                               (Debian 12) or slipway-lab:noble (Ubuntu 24.04); all: both.
                               A no-op when present; the imported tarball is cached under
                               ${XDG_CACHE_HOME:-~/.cache}/slipway-lab
  up NAME COUNT [--os debian|ubuntu] [--subnet-index K] [--no-known-hosts]
                               start COUNT hosts NAME-1..NAME-COUNT of the OS (default ubuntu;
                               its image must be built) on network slipway-NAME
                               (172.28.K.0/24, hosts at .11, .12, ...); prints
                               "host NAME-i IP", "key PATH", "known_hosts PATH", "os OS", ... lines
  down NAME                    remove a lab's containers, network and state (ignores missing)
  down-run RUN_ID              remove every lab started with SLIPWAY_LAB_RUN=RUN_ID
  down-all                     remove every slipway-lab container, network and state dir
  ssh NAME INDEX [CMD...]      ssh into host INDEX (1-based) of lab NAME
  list                         list running lab containers

environment:
  SLIPWAY_LAB_MIRROR, SLIPWAY_LAB_SECURITY_MIRROR  override the Debian mirrors read from apt's config
  SLIPWAY_LAB_UBUNTU_MIRROR     Ubuntu archive URI (default: the Debian mirror with its trailing
                                /debian replaced by /ubuntu)
  SLIPWAY_LAB_IMAGE, SLIPWAY_LAB_UBUNTU_IMAGE  image names (slipway-lab:bookworm, slipway-lab:noble)
  SLIPWAY_LAB_RUN               label labs with a run id (see down-run)
  SLIPWAY_LAB_KEEP=1            keep a lab whose 'up' failed, for debugging
  SLIPWAY_LAB_READY_TIMEOUT     seconds to wait for sshd / boot per lab (default 60)
EOF
}

is_root() { [ "$(id -u)" = 0 ]; }

# Sets OS, SUITE, IMAGE, RECIPE and INCLUDE for the lab OS $1 (debian or ubuntu).
set_os() {
  case "$1" in
    debian)
      OS=debian SUITE=bookworm IMAGE="${SLIPWAY_LAB_IMAGE:-slipway-lab:bookworm}"
      RECIPE=$DEBIAN_RECIPE INCLUDE=$DEBIAN_INCLUDE
      ;;
    ubuntu)
      OS=ubuntu SUITE=noble IMAGE="${SLIPWAY_LAB_UBUNTU_IMAGE:-slipway-lab:noble}"
      RECIPE=$UBUNTU_RECIPE INCLUDE=$UBUNTU_INCLUDE
      ;;
    *) die "unknown OS '$1': use one of ${LAB_OSES[*]}" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# docker

docker_ok() { docker info >/dev/null 2>&1; }

need_docker() {
  command -v docker >/dev/null 2>&1 || die "docker is not installed: run tests/lab/lab.sh deps"
  docker_ok || die "docker does not answer ('docker info' fails): run tests/lab/lab.sh deps"
}

start_dockerd() {
  if docker_ok; then
    log "dockerd is running"
    return
  fi
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    log "starting docker with systemctl"
    systemctl start docker || true
  fi
  if ! docker_ok && ! pgrep -x dockerd >/dev/null 2>&1; then
    # No systemd as PID 1 (containers, CI sandboxes): start dockerd by hand, detached.
    if ! grep -q ' /sys/fs/cgroup' /proc/mounts && command -v cgroupfs-mount >/dev/null 2>&1; then
      log "mounting cgroups (cgroupfs-mount)"
      cgroupfs-mount || true
    fi
    mkdir -p "$STATE_ROOT"
    log "starting dockerd in the background (log: $STATE_ROOT/dockerd.log)"
    setsid dockerd >"$STATE_ROOT/dockerd.log" 2>&1 </dev/null &
  fi
  local deadline=$((SECONDS + 60))
  until docker_ok; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      [ -f "$STATE_ROOT/dockerd.log" ] && tail -n 30 "$STATE_ROOT/dockerd.log" >&2
      die "dockerd did not answer within 60 s"
    fi
    sleep 1
  done
  log "dockerd answers ($(docker info --format '{{.ServerVersion}} {{.Driver}} cgroup v{{.CgroupVersion}}' 2>/dev/null))"
}

# ---------------------------------------------------------------------------------------------
# deps

cmd_deps() {
  local pkgs=(docker.io debootstrap openssh-client openssh-server iproute2 debian-archive-keyring ca-certificates
    util-linux tar)
  local missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    is_root || die "packages missing (${missing[*]}) and not root: run 'sudo tests/lab/lab.sh deps'"
    log "installing ${missing[*]}"
    apt-get update
    apt-get install -y "${missing[@]}" </dev/null
  else
    log "packages present: ${pkgs[*]}"
  fi
  if ! docker_ok; then
    is_root || die "dockerd does not answer and not root: start it, or run 'sudo tests/lab/lab.sh deps'"
  fi
  start_dockerd
}

# ---------------------------------------------------------------------------------------------
# mirrors: read at run time from this machine's apt configuration, never written in the repo

# Prints "URI SUITE" for every enabled deb source: the deb822 file first, then one-line files.
host_apt_sources() {
  local f=/etc/apt/sources.list.d/debian.sources
  if [ -r "$f" ]; then
    awk '
      function flush(   nu, ns, i, j, u, s) {
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
          nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
          for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
            if (u[i] != "" && s[j] != "") print u[i], s[j]
        }
        types = uris = suites = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[^ \t]/ {
        k = $0; sub(/:.*/, "", k); k = tolower(k)
        v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
        if (k == "types") types = v; else if (k == "uris") uris = v
        else if (k == "suites") suites = v; else if (k == "enabled") enabled = v
      }
      END { flush() }' "$f"
  fi
  local lists=()
  [ -r /etc/apt/sources.list ] && lists+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list; do [ -r "$f" ] && lists+=("$f"); done
  if [ "${#lists[@]}" -gt 0 ]; then
    awk '/^[ \t]*deb[ \t]/ {
        line = $0; sub(/^[ \t]*deb[ \t]+/, "", line)
        if (line ~ /^\[/) sub(/^\[[^]]*\][ \t]*/, "", line)
        n = split(line, a, /[ \t]+/); if (n >= 2) print a[1], a[2]
      }' "${lists[@]}"
  fi
}

# Sets MIRROR and SECURITY_MIRROR (may be empty: no security suite on this machine) to the
# Debian mirrors.
find_debian_mirrors() {
  local sources
  sources="$(host_apt_sources)"
  MIRROR="${SLIPWAY_LAB_MIRROR:-$(printf '%s\n' "$sources" |
    awk '$2 !~ /(-security|\/updates|-updates|-backports|-proposed-updates)$/ { print $1; exit }')}"
  SECURITY_MIRROR="${SLIPWAY_LAB_SECURITY_MIRROR:-$(printf '%s\n' "$sources" |
    awk '$2 ~ /(-security|\/updates)$/ { print $1; exit }')}"
  MIRROR="${MIRROR%/}"
  SECURITY_MIRROR="${SECURITY_MIRROR%/}"
  [ -n "$MIRROR" ] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list (set SLIPWAY_LAB_MIRROR)"
}

# Sets MIRROR and SECURITY_MIRROR for $OS. Ubuntu: one archive serves noble, noble-updates and
# noble-security (SECURITY_MIRROR is empty); by default the machine's Debian mirror, whose
# server also serves Ubuntu's archive next to Debian's.
find_mirrors() {
  if [ "$OS" = ubuntu ]; then
    MIRROR="${SLIPWAY_LAB_UBUNTU_MIRROR:-}"
    if [ -z "$MIRROR" ]; then
      find_debian_mirrors
      [ "${MIRROR%/debian}" != "$MIRROR" ] ||
        die "the Debian mirror does not end in /debian: set SLIPWAY_LAB_UBUNTU_MIRROR to an Ubuntu archive URI"
      MIRROR="${MIRROR%/debian}/ubuntu"
    fi
    MIRROR="${MIRROR%/}"
    SECURITY_MIRROR=""
  else
    find_debian_mirrors
  fi
  case "$MIRROR" in
    http://* | https://* | file:/*) ;;
    *) die "mirror '$MIRROR' is not usable by debootstrap (set SLIPWAY_LAB_MIRROR or SLIPWAY_LAB_UBUNTU_MIRROR to an http(s) URI)" ;;
  esac
}

# apt options of this machine that make apt work against its mirror (a snapshot mirror needs
# Check-Valid-Until false; a proxy needs Acquire::http::Proxy), in apt.conf syntax.
host_apt_conf() {
  apt-config dump 2>/dev/null | grep -E '^Acquire::(Check-Valid-Until|Check-Date|Max-ValidTime|Retries|ForceIPv4|ForceIPv6|(http|https|ftp)::(Proxy|proxy|Timeout|Pipeline-Depth|Verify-Peer|Verify-Host)(::[^ ]+)?) ' || true
}

# ---------------------------------------------------------------------------------------------
# image

image_key() {
  { printf 'recipe %s\nsuite %s\ninclude %s\nmask %s\n' "$RECIPE" "$SUITE" "$INCLUDE" "${MASK_UNITS[*]}"
    printf 'mirror %s\nsecurity %s\n' "$MIRROR" "$SECURITY_MIRROR"
    host_apt_conf; } | sha256sum | cut -c1-16
}

image_current() {
  local key
  key="$(docker image inspect --format '{{ index .Config.Labels "slipway-lab.image-key" }}' "$IMAGE" 2>/dev/null)" || return 1
  [ "$key" = "$1" ]
}

import_tarball() {
  local tarball=$1 key=$2
  log "importing $tarball as $IMAGE"
  docker image rm "$IMAGE" >/dev/null 2>&1 || true
  docker import \
    --change 'ENV container=docker' \
    --change 'CMD ["/sbin/init"]' \
    --change "LABEL slipway-lab.image-key=$key" \
    "$tarball" "$IMAGE" >/dev/null
}

# Unmounts whatever debootstrap left mounted inside the rootfs, then removes it.
remove_rootfs() {
  local dir=$1 m
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  { awk '{ print $2 }' /proc/mounts | grep -F "$dir/" || true; } | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$dir"
}

# The image's apt sources, deb822, on stdout: the mirror read on this machine at build time.
apt_sources() {
  case "$OS" in
    debian)
      printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$MIRROR" "$SUITE" "$SUITE"
      if [ -n "$SECURITY_MIRROR" ]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
          "$SECURITY_MIRROR" "$SUITE"
      fi
      ;;
    ubuntu)
      printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates %s-security\nComponents: main restricted universe multiverse\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n' \
        "$MIRROR" "$SUITE" "$SUITE" "$SUITE"
      ;;
  esac
}

# Brings the rootfs up to date from -updates and -security, as a cloud image is (24.04.N, not
# the release's 24.04). No service starts in the chroot, needrestart does not run.
upgrade_rootfs() {
  local r=$1 out rc=0 start=$SECONDS
  out="$(dirname "$r")/upgrade.out"
  [ -s "$r/etc/resolv.conf" ] || cp -L /etc/resolv.conf "$r/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 755 "$r/usr/sbin/policy-rc.d"
  mount -t proc proc "$r/proc"
  {
    chroot "$r" apt-get update &&
      chroot "$r" env NEEDRESTART_SUSPEND=1 apt-get -y -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold dist-upgrade
  } </dev/null >"$out" 2>&1 || rc=$?
  umount "$r/proc"
  rm -f "$r/usr/sbin/policy-rc.d"
  rm -rf "$r/run/needrestart"
  if [ "$rc" != 0 ]; then
    tail -n 30 "$out" >&2
    die "apt-get dist-upgrade in the $SUITE rootfs failed"
  fi
  log "upgraded $(grep -c '^Setting up ' "$out" || true) packages from $SUITE-updates and $SUITE-security in $((SECONDS - start)) s"
}

# Ubuntu: what a 24.04 server made from a cloud image has (cloud-init itself left out).
customize_ubuntu() {
  local r=$1
  [ -s "$r/usr/share/keyrings/ubuntu-archive-keyring.gpg" ] ||
    die "debootstrap installed no /usr/share/keyrings/ubuntu-archive-keyring.gpg (ubuntu-keyring)"
  upgrade_rootfs "$r"
  # What cloud-init writes when a provider allows password logins.
  install -m 600 /dev/null "$r/etc/ssh/sshd_config.d/50-cloud-init.conf"
  echo 'PasswordAuthentication yes' >"$r/etc/ssh/sshd_config.d/50-cloud-init.conf"
  # ufw installed, inactive.
  sed -i 's/^ENABLED=.*/ENABLED=no/' "$r/etc/ufw/ufw.conf"
  grep -qx 'ENABLED=no' "$r/etc/ufw/ufw.conf" || die "ufw.conf has no ENABLED=no line"
  # /etc/default/locale links to it; cloud images set it (else pam_env warns at every login).
  echo 'LANG=C.UTF-8' >"$r/etc/locale.conf"
  # rsyslog's imklog would read /proc/kmsg, the machine's kernel log: every lab host would
  # copy it to its kern.log, and hosts would take messages from each other (a read consumes
  # them). Not theirs to touch, as the masked units.
  sed -i 's/^module(load="imklog"/# slipway lab: no kernel log in a container. &/' "$r/etc/rsyslog.conf"
  if grep -q '^module(load="imklog"' "$r/etc/rsyslog.conf"; then die "imklog is still loaded in rsyslog.conf"; fi
}

# Enables the units before --disable and disables those after it, in the rootfs; then checks
# that systemctl agrees.
enable_units() { # ROOTFS UNIT... [--disable UNIT...]
  local r=$1 u want=enabled
  shift
  local enable=() disable=()
  for u in "$@"; do
    if [ "$u" = --disable ]; then want=disabled; continue; fi
    if [ "$want" = enabled ]; then enable+=("$u"); else disable+=("$u"); fi
  done
  chroot "$r" systemctl enable "${enable[@]}" >/dev/null 2>&1
  if [ "${#disable[@]}" -gt 0 ]; then chroot "$r" systemctl disable "${disable[@]}" >/dev/null 2>&1; fi
  for u in "${enable[@]}"; do
    [ "$(chroot "$r" systemctl is-enabled "$u" 2>/dev/null)" = enabled ] || die "$u is not enabled in the image"
  done
  for u in "${disable[@]}"; do
    [ "$(chroot "$r" systemctl is-enabled "$u" 2>/dev/null)" = disabled ] || die "$u is not disabled in the image"
  done
}

customize_rootfs() {
  local r=$1 u

  # apt: this machine's mirror (Debian: bookworm + updates + security; Ubuntu: noble + updates
  # + security), and the apt options that make apt work against it.
  rm -f "$r/etc/apt/sources.list"
  apt_sources >"$r/etc/apt/sources.list.d/$OS.sources"
  {
    echo '// Copied from the apt configuration of the machine that built this lab image.'
    host_apt_conf
  } >"$r/etc/apt/apt.conf.d/90slipway-lab-host"

  if [ "$OS" = ubuntu ]; then customize_ubuntu "$r"; fi

  # ssh: no host keys in the image (each lab host gets its own, injected by 'up'; generated at
  # boot if missing), no authorized keys in the image (injected by 'up').
  rm -f "$r"/etc/ssh/ssh_host_*
  cat >"$r/etc/systemd/system/slipway-lab-hostkeys.service" <<'EOF'
[Unit]
Description=Generate missing SSH host keys (slipway lab)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
EOF
  # Network settings belong to the host's own network namespace, writable as on a VM; Docker
  # (27 and later) refuses to start containers when it cannot set IPv6 on their interfaces.
  # Kernel-wide settings stay read-only (they would be the machine's running the lab).
  cat >"$r/etc/systemd/system/slipway-lab-netns-sysctl.service" <<'EOF'
[Unit]
Description=Writable /proc/sys/net in this host's network namespace (slipway lab)
DefaultDependencies=no
Before=sysinit.target docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net'

[Install]
WantedBy=sysinit.target
EOF
  install -d -m 700 "$r/root/.ssh"
  # Debian starts sshd at boot; Ubuntu 24.04 (since 22.10) starts it on the first connection
  # to ssh.socket, and its packages leave it so: checked here.
  case "$OS" in
    debian) enable_units "$r" ssh.service slipway-lab-hostkeys.service slipway-lab-netns-sysctl.service ;;
    ubuntu) enable_units "$r" ssh.socket slipway-lab-hostkeys.service slipway-lab-netns-sysctl.service --disable ssh.service ;;
  esac

  # One image, N hosts: an empty machine-id makes systemd generate one per container at boot.
  : >"$r/etc/machine-id"
  rm -f "$r/var/lib/dbus/machine-id"
  if [ -d "$r/var/lib/dbus" ]; then ln -s /etc/machine-id "$r/var/lib/dbus/machine-id"; fi

  for u in "${MASK_UNITS[@]}"; do
    ln -sf /dev/null "$r/etc/systemd/system/$u"
  done

  # Docker manages these; do not ship the build machine's.
  : >"$r/etc/resolv.conf"
  : >"$r/etc/hostname"

  chroot "$r" apt-get clean
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/log/*.log "$r"/var/log/apt/* \
    "$r"/tmp/* "$r"/var/tmp/*
}

cmd_image() {
  [ $# -le 1 ] || { usage; exit 2; }
  local os
  case "${1:-$DEFAULT_OS}" in
    all) for os in "${LAB_OSES[@]}"; do build_image "$os"; done ;;
    debian | ubuntu) build_image "${1:-$DEFAULT_OS}" ;;
    *) usage; exit 2 ;;
  esac
}

build_image() { # OS
  set_os "$1"
  need_docker
  find_mirrors
  local key start=$SECONDS
  key="$(image_key)"
  if image_current "$key"; then
    log "image $IMAGE is present"
    return
  fi
  mkdir -p "$CACHE_DIR"
  # Concurrent test binaries may all ask for the image: one builds, the others wait.
  exec 9>"$CACHE_DIR/image-$SUITE.lock"
  if ! flock -n 9; then
    log "another process is building the image $IMAGE; waiting"
    flock 9
  fi
  if image_current "$key"; then
    log "image $IMAGE is present"
    return
  fi
  local tarball="$CACHE_DIR/$SUITE-$key.tar"
  if [ -s "$tarball" ]; then
    import_tarball "$tarball" "$key"
    log "image $IMAGE imported from cache in $((SECONDS - start)) s"
    return
  fi
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed: run tests/lab/lab.sh deps"
  is_root || die "building the image needs root (debootstrap)"
  local debootstrap_args=(--variant=minbase --include="$INCLUDE" "$SUITE")
  local script=()
  if [ "$OS" = ubuntu ]; then
    [ -f "$UBUNTU_DEBOOTSTRAP_SCRIPT" ] || die "debootstrap has no $UBUNTU_DEBOOTSTRAP_SCRIPT"
    # This machine has no Ubuntu keyring; apt in the image checks signatures (Signed-By).
    debootstrap_args=(--no-check-gpg "${debootstrap_args[@]}")
    script=("$UBUNTU_DEBOOTSTRAP_SCRIPT")
  fi

  local tmp
  tmp="$(mktemp -d "${TMPDIR:-/var/tmp}/slipway-lab-rootfs.XXXXXX")"
  # shellcheck disable=SC2064
  trap "remove_rootfs '$tmp'" EXIT
  local r="$tmp/rootfs"
  log "debootstrap $SUITE (minbase + systemd, openssh-server) from $MIRROR: takes a few minutes"
  if ! debootstrap "${debootstrap_args[@]}" "$r" "$MIRROR" "${script[@]}" \
    >"$tmp/debootstrap.out" 2>&1; then
    tail -n 30 "$tmp/debootstrap.out" >&2
    [ -f "$r/debootstrap/debootstrap.log" ] && tail -n 30 "$r/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
  fi
  log "debootstrap done in $((SECONDS - start)) s"
  customize_rootfs "$r"
  rm -f "$CACHE_DIR/$SUITE"-*.tar "$CACHE_DIR/$SUITE"-*.tar.tmp
  tar --numeric-owner -C "$r" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  import_tarball "$tarball" "$key"
  remove_rootfs "$tmp"
  trap - EXIT
  log "image $IMAGE built in $((SECONDS - start)) s ($(du -h "$tarball" | cut -f1) tarball in $CACHE_DIR)"
}

# ---------------------------------------------------------------------------------------------
# labs

check_name() {
  [[ "$1" =~ ^[a-z0-9][a-z0-9-]{0,39}$ ]] ||
    die "bad lab name '$1': use 1-40 of a-z 0-9 - (it becomes host names NAME-1, ...)"
}

ssh_opts() { # STATE_DIR KNOWN_HOSTS_FILE
  printf '%s\n' -F /dev/null -i "$1/id_ed25519" -o BatchMode=yes -o IdentitiesOnly=yes \
    -o IdentityAgent=none -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$2" \
    -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=3 -o LogLevel=ERROR
}

lab_ssh() { # STATE_DIR IP CMD... (checks host keys against the out-of-band known_hosts)
  local state=$1 ip=$2
  shift 2
  local opts
  mapfile -t opts < <(ssh_opts "$state" "$state/known_hosts.full")
  # shellcheck disable=SC2029 # the command is meant to run remotely as given
  ssh "${opts[@]}" "root@$ip" "$@"
}

run_label_args() {
  if [ -n "${SLIPWAY_LAB_RUN:-}" ]; then printf '%s\n' --label "slipway-lab.run=$SLIPWAY_LAB_RUN"; fi
}

create_network() { # NAME K0 -> prints K
  local name=$1 k0=$2 try k out labels
  mapfile -t labels < <(run_label_args)
  for ((try = 0; try < 250; try++)); do
    k=$(((k0 - 1 + try) % 250 + 1))
    if out="$(docker network create --driver bridge --subnet "172.28.$k.0/24" \
      --label slipway-lab=1 --label "slipway-lab.name=$name" "${labels[@]}" \
      "slipway-$name" 2>&1 >/dev/null)"; then
      echo "$k"
      return
    fi
    case "$out" in
      *overlap*) continue ;;
      *) die "docker network create slipway-$name: $out" ;;
    esac
  done
  die "no free subnet 172.28.K.0/24 (K in 1..250)"
}

write_payload() { # DIR STATE_DIR HOST: files injected into a host before it boots
  local dir=$1 state=$2 host=$3 t
  install -d -m 755 "$dir/etc" "$dir/etc/ssh"
  install -d -m 700 "$dir/root" "$dir/root/.ssh"
  install -m 600 "$state/id_ed25519.pub" "$dir/root/.ssh/authorized_keys"
  for t in ed25519 ecdsa rsa; do
    install -m 600 "$state/hostkeys/$host/ssh_host_${t}_key" "$dir/etc/ssh/"
    install -m 644 "$state/hostkeys/$host/ssh_host_${t}_key.pub" "$dir/etc/ssh/"
  done
}

cmd_up() {
  local name="" count="" k0="" no_known_hosts=0 os=$DEFAULT_OS
  while [ $# -gt 0 ]; do
    case "$1" in
      --os) os="${2:-}"; shift 2 ;;
      --os=*) os="${1#*=}"; shift ;;
      --subnet-index) k0="${2:-}"; shift 2 ;;
      --subnet-index=*) k0="${1#*=}"; shift ;;
      --no-known-hosts) no_known_hosts=1; shift ;;
      -*) die "up: unknown option $1" ;;
      *)
        if [ -z "$name" ]; then name=$1; elif [ -z "$count" ]; then count=$1; else die "up: too many arguments"; fi
        shift ;;
    esac
  done
  [ -n "$name" ] && [ -n "$count" ] || { usage; exit 2; }
  check_name "$name"
  set_os "$os"
  [[ "$count" =~ ^[0-9]+$ ]] && [ "$count" -ge 1 ] && [ "$count" -le 200 ] || die "COUNT must be 1..200"
  if [ -n "$k0" ]; then
    [[ "$k0" =~ ^[0-9]+$ ]] && [ "$k0" -ge 1 ] && [ "$k0" -le 250 ] || die "--subnet-index must be 1..250"
  else
    k0=$(($(printf '%s' "$name" | cksum | cut -d' ' -f1) % 250 + 1))
  fi
  need_docker
  docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE missing: run tests/lab/lab.sh image $OS"

  local start=$SECONDS state="$STATE_ROOT/$name"
  if docker network inspect "slipway-$name" >/dev/null 2>&1 ||
    [ -n "$(docker ps -aq --filter "label=slipway-lab.name=$name")" ] || [ -e "$state" ]; then
    log "lab $name exists: replacing it"
    cmd_down "$name"
  fi
  UP_NAME=$name
  trap 'up_failed' EXIT

  mkdir -p "$state"
  chmod 700 "$state"
  [ -n "${SLIPWAY_LAB_RUN:-}" ] && printf '%s\n' "$SLIPWAY_LAB_RUN" >"$state/run"
  printf '%s\n' "$OS" >"$state/os"
  ssh-keygen -q -t ed25519 -N '' -C "slipway-lab-$name" -f "$state/id_ed25519"
  # The monitoring stack's Grafana admin password, read by the lab inventory as a secret.
  (umask 077 && head -c 18 /dev/urandom | base64 >"$state/grafana_admin_password")

  local k i host ip
  k="$(create_network "$name" "$k0")"
  log "network slipway-$name 172.28.$k.0/24"

  # Host keys are made here, so known_hosts is exact (out of band, no trust on first use).
  for ((i = 1; i <= count; i++)); do
    host="$name-$i"
    mkdir -p "$state/hostkeys/$host"
    (for t in ed25519 ecdsa rsa; do
      ssh-keygen -q -t "$t" -N '' -C "root@$host" -f "$state/hostkeys/$host/ssh_host_${t}_key"
    done) &
  done
  wait

  local labels
  mapfile -t labels < <(run_label_args)
  # The lab registry (tests/lab/images.sh) publishes its port on this machine, which every
  # lab network reaches at its gateway.
  : >"$state/known_hosts.full"
  : >"$state/hosts"
  for ((i = 1; i <= count; i++)); do
    host="$name-$i"
    ip="172.28.$k.$((10 + i))"
    docker create --name "$host" --hostname "$host" \
      --label slipway-lab=1 --label "slipway-lab.name=$name" --label "slipway-lab.os=$OS" "${labels[@]}" \
      --stop-signal SIGRTMIN+3 --cap-add=ALL --cap-drop=SYS_RESOURCE \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      --device-cgroup-rule='a *:* rwm' --cgroupns=host \
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
      --network "slipway-$name" --ip "$ip" \
      --add-host "slipway-registry.test:172.28.$k.1" \
      "$IMAGE" /sbin/init >/dev/null
    local payload
    payload="$(mktemp -d)"
    write_payload "$payload" "$state" "$host"
    tar --owner=0 --group=0 --numeric-owner -C "$payload" -c etc root | docker cp - "$host:/"
    rm -rf "$payload"
    for t in ed25519 ecdsa rsa; do
      printf '%s %s\n' "$ip" "$(cut -d' ' -f1,2 "$state/hostkeys/$host/ssh_host_${t}_key.pub")" >>"$state/known_hosts.full"
    done
    printf '%s %s\n' "$host" "$ip" >>"$state/hosts"
  done
  for ((i = 1; i <= count; i++)); do docker start "$name-$i" >/dev/null; done
  chmod 600 "$state/known_hosts.full"
  if [ "$no_known_hosts" = 1 ]; then
    : >"$state/known_hosts"
  else
    cp "$state/known_hosts.full" "$state/known_hosts"
  fi
  chmod 600 "$state/known_hosts"
  log "started $count $OS host(s); waiting for sshd and boot"

  # Wait until every sshd answers with the injected host key and the injected client key,
  # then until systemd has finished booting. Only SSH is asked, not a unit: Debian starts
  # ssh.service at boot, Ubuntu starts it on the first connection to ssh.socket.
  local deadline=$((SECONDS + READY_TIMEOUT)) states="" st
  while read -r host ip; do
    until lab_ssh "$state" "$ip" true >/dev/null 2>&1; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        lab_ssh "$state" "$ip" true || true
        docker logs --tail 30 "$host" >&2 || true
        die "$host ($ip): sshd did not answer within ${READY_TIMEOUT} s"
      fi
      sleep 0.5
    done
  done <"$state/hosts"
  while read -r host ip; do
    st="$(lab_ssh "$state" "$ip" "timeout $((deadline - SECONDS > 5 ? deadline - SECONDS : 5)) systemctl is-system-running --wait" 2>/dev/null </dev/null || true)"
    case "$st" in
      running) ;;
      degraded)
        log "$host: degraded; failed units: $(lab_ssh "$state" "$ip" 'systemctl list-units --failed --plain --no-legend' </dev/null | awk '{print $1}' | tr '\n' ' ')"
        ;;
      *)
        lab_ssh "$state" "$ip" 'systemctl list-jobs --no-pager; systemctl --failed --no-pager' </dev/null >&2 || true
        die "$host: systemd did not finish booting within ${READY_TIMEOUT} s (state: ${st:-unknown})"
        ;;
    esac
    states="$states $host=$st"
  done <"$state/hosts"

  # Inventory in slipway's format: first host a manager, the others workers.
  {
    printf '[defaults]\nuser = "root"\nidentity_file = "%s"\nknown_hosts = "%s"\nhost_key_checking = "strict"\n' \
      "$state/id_ed25519" "$state/known_hosts"
    i=0
    while read -r host ip; do
      i=$((i + 1))
      printf '\n[hosts.%s]\naddress = "%s"\ngroups = ["%s"]\n' "$host" "$ip" "$([ "$i" = 1 ] && echo managers || echo workers)"
    done <"$state/hosts"
  } >"$state/inventory.toml"

  {
    printf 'lab %s\nos %s\nnetwork slipway-%s 172.28.%s.0/24\n' "$name" "$OS" "$name" "$k"
    while read -r host ip; do printf 'host %s %s\n' "$host" "$ip"; done <"$state/hosts"
    printf 'key %s\nknown_hosts %s\nknown_hosts_full %s\ninventory %s\nstate_dir %s\n' \
      "$state/id_ed25519" "$state/known_hosts" "$state/known_hosts.full" "$state/inventory.toml" "$state"
  } >"$state/summary"
  trap - EXIT
  log "lab $name ($OS) up in $((SECONDS - start)) s:$states"
  cat "$state/summary"
}

up_failed() {
  local rc=$?
  [ "$rc" = 0 ] && return
  if [ "${SLIPWAY_LAB_KEEP:-}" = 1 ]; then
    log "up failed; keeping lab $UP_NAME (SLIPWAY_LAB_KEEP=1)"
  else
    log "up failed; removing lab $UP_NAME"
    cmd_down "$UP_NAME" || true
  fi
  exit "$rc"
}

remove_labs() { # docker label filter
  local ids names n
  names="$( { docker ps -a --filter "label=$1" --format '{{.Label "slipway-lab.name"}}'
    docker network ls --filter "label=$1" --format '{{.Label "slipway-lab.name"}}'; } 2>/dev/null | sort -u)"
  ids="$(docker ps -aq --filter "label=$1")"
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null
  fi
  ids="$(docker network ls -q --filter "label=$1")"
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    docker network rm $ids >/dev/null
  fi
  for n in $names; do
    [[ "$n" =~ ^[a-z0-9][a-z0-9-]*$ ]] && rm -rf "${STATE_ROOT:?}/$n"
  done
  return 0
}

cmd_down() {
  [ $# = 1 ] || { usage; exit 2; }
  local name=$1
  check_name "$name"
  need_docker
  remove_labs "slipway-lab.name=$name"
  if docker network inspect "slipway-$name" >/dev/null 2>&1; then
    docker network rm "slipway-$name" >/dev/null
  fi
  rm -rf "${STATE_ROOT:?}/$name"
  log "lab $name is down"
}

cmd_down_run() {
  [ $# = 1 ] || { usage; exit 2; }
  need_docker
  remove_labs "slipway-lab.run=$1"
  local d
  for d in "$STATE_ROOT"/*/; do
    [ -f "$d/run" ] && [ "$(cat "$d/run")" = "$1" ] && rm -rf "$d"
  done
  log "labs of run $1 are down"
}

cmd_down_all() {
  need_docker
  remove_labs "slipway-lab=1"
  local d
  for d in "$STATE_ROOT"/*/; do [ -d "$d" ] && rm -rf "$d"; done
  log "all labs are down"
}

cmd_ssh() {
  [ $# -ge 2 ] || { usage; exit 2; }
  local name=$1 index=$2 state ip
  shift 2
  check_name "$name"
  state="$STATE_ROOT/$name"
  [ -f "$state/hosts" ] || die "no lab named $name (no $state/hosts)"
  ip="$(awk -v h="$name-$index" '$1 == h { print $2 }' "$state/hosts")"
  [ -n "$ip" ] || die "lab $name has no host $index"
  local opts
  mapfile -t opts < <(ssh_opts "$state" "$state/known_hosts.full")
  if [ $# = 0 ]; then
    exec ssh "${opts[@]}" -t "root@$ip"
  fi
  exec ssh "${opts[@]}" "root@$ip" "$@"
}

cmd_list() {
  need_docker
  docker ps -a --filter label=slipway-lab=1 \
    --format 'table {{.Names}}\t{{.Status}}\t{{.Label "slipway-lab.os"}}\t{{.Label "slipway-lab.name"}}\t{{.Label "slipway-lab.run"}}'
}

main() {
  local cmd="${1:-help}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    deps) cmd_deps "$@" ;;
    image) cmd_image "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    down-run) cmd_down_run "$@" ;;
    down-all) cmd_down_all "$@" ;;
    ssh) cmd_ssh "$@" ;;
    list) cmd_list "$@" ;;
    help | -h | --help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
