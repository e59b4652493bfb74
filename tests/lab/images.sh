#!/usr/bin/env bash
# slipway lab images and lab registry: small container images assembled from Ubuntu 24.04
# packages (prometheus, alertmanager, node-exporter, postgres-exporter, postgres, redis, nginx,
# caddy, pebble, the distribution registry, and a tiny app and webhook receiver from
# busybox-static), and a registry serving them over TLS with a lab CA and htpasswd auth, on
# this machine's dockerd, for lab hosts to pull. See the usage text below (images.sh help).
#
# Machine-readable output goes to stdout; progress and errors go to stderr.
set -euo pipefail

# Bump when the image recipe changes (images-rootfs.sh, image_config): it invalidates the cache.
readonly RECIPE=8
readonly HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/slipway-lab"
readonly IMAGES_DIR="$CACHE_DIR/images"
readonly REG_DIR="$CACHE_DIR/registry"
readonly BUILDER="${SLIPWAY_LAB_UBUNTU_IMAGE:-slipway-lab:noble}"
readonly REGISTRY_CONTAINER=slipway-lab-registry
readonly REGISTRY_NAME=slipway-registry.test
readonly REGISTRY_PORT=5443
readonly PUSH_HOST="127.0.0.1:$REGISTRY_PORT"
readonly REGISTRY_USER=lab
# Rootfs names made by images-rootfs.sh; app-V becomes app:V, the others NAME:VERSION.
readonly IMAGES=(prometheus alertmanager node-exporter postgres-exporter postgres redis nginx
  caddy pebble registry app-1.0 app-1.1 app-broken receiver)

log() { printf 'images: %s\n' "$*" >&2; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: tests/lab/images.sh COMMAND

  build      build the lab images (slipway-lab/NAME:TAG) from Ubuntu 24.04 packages, in a
             container of the lab's Ubuntu image (lab.sh image ubuntu). A no-op when they are
             present; rootfs tarballs are cached under ${XDG_CACHE_HOME:-~/.cache}/slipway-lab/images
  registry   build, start the lab registry (container slipway-lab-registry, port 5443, TLS with
             a lab CA, htpasswd auth, storage under ${XDG_CACHE_HOME:-~/.cache}/slipway-lab/registry)
             if needed, and push the images (once per cache key). Prints "registry HOST:PORT",
             "ca PATH", "username U", "password_file PATH" and "image NAME REF" lines; REF is
             the reference lab hosts pull (they resolve slipway-registry.test to their gateway)
  down       stop and remove the registry container (keeps its storage, CA and credentials)
EOF
}

need_docker() {
  docker info >/dev/null 2>&1 || die "docker does not answer: run tests/lab/lab.sh deps"
}

# ---------------------------------------------------------------------------------------------
# images

# The repository and tag of a rootfs name, given its upstream version.
repo_of() { case "$1" in app-*) echo app ;; *) echo "$1" ;; esac; }
tag_of() { case "$1" in app-*) echo "${1#app-}" ;; *) echo "$2" ;; esac; }

# docker import changes mirroring the upstream images, so stack files that pass only flags work.
# docker import takes no STOPSIGNAL nor HEALTHCHECK: stacks set stop_signal (postgres SIGINT,
# nginx SIGQUIT, as upstream) and health checks where they want them.
image_config() { # NAME POSTGRES_MAJOR
  local path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  case "$1" in
    prometheus)
      printf '%s\n' 'USER nobody' 'EXPOSE 9090' 'WORKDIR /prometheus' 'ENTRYPOINT ["/bin/prometheus"]' \
        'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]' ;;
    alertmanager)
      printf '%s\n' 'USER nobody' 'EXPOSE 9093' 'WORKDIR /alertmanager' 'ENTRYPOINT ["/bin/alertmanager"]' \
        'CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]' ;;
    node-exporter) printf '%s\n' 'USER nobody' 'EXPOSE 9100' 'ENTRYPOINT ["/bin/node_exporter"]' ;;
    postgres-exporter) printf '%s\n' 'USER nobody' 'EXPOSE 9187' 'ENTRYPOINT ["/bin/postgres_exporter"]' ;;
    postgres)
      path="/usr/lib/postgresql/$2/bin:$path"
      printf '%s\n' 'ENV PGDATA=/var/lib/postgresql/data' 'EXPOSE 5432' \
        'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["postgres"]' ;;
    redis)
      printf '%s\n' 'WORKDIR /data' 'EXPOSE 6379' 'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["redis-server"]' ;;
    nginx) printf '%s\n' 'EXPOSE 80' 'CMD ["nginx", "-g", "daemon off;"]' ;;
    caddy)
      printf '%s\n' 'ENV XDG_CONFIG_HOME=/config' 'ENV XDG_DATA_HOME=/data' 'WORKDIR /srv' \
        'EXPOSE 80 443 2019' 'CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]' ;;
    pebble)
      printf '%s\n' 'WORKDIR /' 'EXPOSE 14000 15000' 'ENTRYPOINT ["/usr/bin/pebble"]' \
        'CMD ["-config", "/test/config/pebble-config.json"]' ;;
    registry)
      printf '%s\n' 'EXPOSE 5000' 'ENTRYPOINT ["/bin/registry"]' 'CMD ["serve", "/etc/docker/registry/config.yml"]' ;;
    app-*)
      # No HEALTHCHECK: docker import cannot set one; stacks declare
      # wget -q -O- http://127.0.0.1:8080/health
      printf '%s\n' 'USER nobody' 'EXPOSE 8080' 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]' ;;
    receiver)
      printf '%s\n' 'USER nobody' 'WORKDIR /data' 'EXPOSE 8080' \
        'CMD ["nc", "-ll", "-p", "8080", "-e", "/usr/bin/receiver"]' ;;
    *) die "no image config for $1" ;;
  esac
  printf 'ENV PATH=%s\n' "$path"
}

builder_key() {
  docker image inspect --format '{{ index .Config.Labels "slipway-lab.image-key" }}' "$BUILDER" 2>/dev/null ||
    die "image $BUILDER missing: run tests/lab/lab.sh image ubuntu"
}

# The build of a builder image: its manifest names the cache key and the images' tags once
# built, so a warm run needs no apt-get update to learn the package versions.
manifest_path() { # BUILDER_KEY
  printf '%s/manifest-%s\n' "$IMAGES_DIR" "$(printf 'recipe %s\nbuilder %s\n' "$RECIPE" "$1" | sha256sum | cut -c1-16)"
}

# Prints "NAME REPO:TAG" for every image of a manifest.
manifest_images() { awk '$1 == "image" { print $2, $3 }' "$1"; }
manifest_key() { awk '$1 == "key" { print $2 }' "$1"; }

images_current() { # MANIFEST
  local key name ref
  [ -s "$1" ] || return 1
  key="$(manifest_key "$1")"
  while read -r name ref; do
    [ "$(docker image inspect --format '{{ index .Config.Labels "slipway-lab.images-key" }}' \
      "slipway-lab/$ref" 2>/dev/null)" = "$key" ] || return 1
  done < <(manifest_images "$1")
}

import_image() { # NAME REF KEY TARBALL
  local changes=() line
  while IFS= read -r line; do changes+=(--change "$line"); done < <(image_config "$1" "$(cat "$IMAGES_DIR/$3/postgres-major")")
  # The tag moves to the new image: the old one is not kept (untagged, unused).
  docker image rm "slipway-lab/$2" >/dev/null 2>&1 || true
  docker import "${changes[@]}" --change "LABEL slipway-lab.images-key=$3" "$4" "slipway-lab/$2" >/dev/null
}

import_all() { # MANIFEST
  local key name ref
  key="$(manifest_key "$1")"
  while read -r name ref; do
    import_image "$name" "$ref" "$key" "$IMAGES_DIR/$key/$name.tar"
  done < <(manifest_images "$1")
}

cmd_build() {
  need_docker
  local bkey manifest start=$SECONDS
  bkey="$(builder_key)"
  manifest="$(manifest_path "$bkey")"
  if images_current "$manifest"; then
    log "lab images are present (key $(manifest_key "$manifest"))"
    return
  fi
  mkdir -p "$IMAGES_DIR"
  # Concurrent test binaries may all ask: one builds, the others wait.
  exec 8>"$IMAGES_DIR/build.lock"
  flock 8
  if images_current "$manifest"; then
    log "lab images are present (key $(manifest_key "$manifest"))"
    return
  fi
  if [ -s "$manifest" ] && [ -d "$IMAGES_DIR/$(manifest_key "$manifest")" ]; then
    import_all "$manifest"
    log "lab images imported from cache in $((SECONDS - start)) s"
    return
  fi

  local tmp
  tmp="$(mktemp -d "$IMAGES_DIR/build.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  log "building lab images from Ubuntu 24.04 packages in a $BUILDER container"
  docker run --rm --network bridge -v "$HERE/images-rootfs.sh:/images-rootfs.sh:ro" -v "$tmp:/out" \
    "$BUILDER" bash /images-rootfs.sh /out
  log "packages installed and rootfs assembled in $((SECONDS - start)) s"

  local key name version ref
  key="$(printf 'recipe %s\nbuilder %s\n%s\n' "$RECIPE" "$bkey" "$(cat "$tmp/versions")" | sha256sum | cut -c1-16)"
  rm -rf "${IMAGES_DIR:?}/$key"
  mkdir -p "$IMAGES_DIR/$key"
  cp "$tmp/postgres-major" "$IMAGES_DIR/$key/"
  {
    printf 'key %s\n' "$key"
    for name in "${IMAGES[@]}"; do
      version="$(awk -v n="$name" '$1 == n { print $2 }' "$tmp/versions")"
      ref="$(repo_of "$name"):$(tag_of "$name" "$version")"
      [ "$ref" != "${ref%:}" ] && die "no version for $name"
      tar --numeric-owner -C "$tmp/rootfs/$name" -cf "$IMAGES_DIR/$key/$name.tar" .
      printf 'image %s %s\n' "$name" "$ref"
    done
  } >"$manifest.tmp"
  mv "$manifest.tmp" "$manifest"
  # Older builds' tarballs are no longer wanted.
  local d
  for d in "$IMAGES_DIR"/*/; do
    [ "$(basename "$d")" = "$key" ] || [ "${d#"$IMAGES_DIR"/build.}" != "$d" ] || rm -rf "$d"
  done
  import_all "$manifest"
  rm -rf "$tmp"
  trap - EXIT
  log "lab images built in $((SECONDS - start)) s: $(manifest_images "$manifest" | awk '{ printf "%s ", $2 }')"
}

# ---------------------------------------------------------------------------------------------
# registry

# The CA (10 years), the server certificate for slipway-registry.test (and localhost,
# 127.0.0.1), the user's random password and its bcrypt htpasswd entry: made once, kept.
# openssl and htpasswd are the registry image's.
ensure_credentials() { # REGISTRY_IMAGE
  mkdir -p "$REG_DIR/data"
  chmod 700 "$REG_DIR"
  if [ ! -s "$REG_DIR/certs/server.crt" ]; then
    log "making the lab CA and the registry's certificate"
    mkdir -p "$REG_DIR/certs"
    local out
    out="$(docker run --rm --user 0 --entrypoint /bin/sh -v "$REG_DIR/certs:/certs" "$1" -c '
      set -e
      cd /certs
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=slipway lab CA" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.crt
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN='"$REGISTRY_NAME"'" -keyout server.key -out server.csr
      printf "subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" \
        '"$REGISTRY_NAME"' >server.ext
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile server.ext -out server.crt.tmp
      rm -f server.csr server.ext ca.srl
      chmod 600 ca.key server.key
      mv server.crt.tmp server.crt' 2>&1)" || die "making the lab CA and certificate failed: $out"
  fi
  if [ ! -s "$REG_DIR/htpasswd" ]; then
    log "making the registry user's password"
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$REG_DIR/password")
    docker run --rm -i --entrypoint /usr/bin/htpasswd "$1" -iBn "$REGISTRY_USER" \
      <"$REG_DIR/password" >"$REG_DIR/htpasswd.tmp" || die "htpasswd failed"
    mv "$REG_DIR/htpasswd.tmp" "$REG_DIR/htpasswd"
  fi
  cat >"$REG_DIR/config.yml" <<EOF
version: 0.1
log:
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :$REGISTRY_PORT
  headers:
    X-Content-Type-Options: [nosniff]
  tls:
    certificate: /certs/server.crt
    key: /certs/server.key
auth:
  htpasswd:
    realm: slipway-lab
    path: /auth/htpasswd
EOF
}

ensure_registry_container() { # REGISTRY_IMAGE
  local want have
  want="$(printf '%s\n' "$(docker image inspect --format '{{.Id}}' "$1")" "$(cat "$REG_DIR/config.yml" "$REG_DIR/htpasswd" "$REG_DIR/certs/server.crt")" |
    sha256sum | cut -c1-16)"
  have="$(docker inspect --format '{{ index .Config.Labels "slipway-lab.registry-key" }} {{.State.Running}}' \
    "$REGISTRY_CONTAINER" 2>/dev/null || true)"
  [ "$have" = "$want true" ] && return
  docker rm -f "$REGISTRY_CONTAINER" >/dev/null 2>&1 || true
  log "starting $REGISTRY_CONTAINER on port $REGISTRY_PORT"
  docker run -d --name "$REGISTRY_CONTAINER" --restart unless-stopped -p "$REGISTRY_PORT:$REGISTRY_PORT" \
    --label "slipway-lab.registry-key=$want" \
    -v "$REG_DIR/config.yml:/etc/docker/registry/config.yml:ro" \
    -v "$REG_DIR/certs:/certs:ro" -v "$REG_DIR/htpasswd:/auth/htpasswd:ro" \
    -v "$REG_DIR/data:/var/lib/registry" "$1" >/dev/null
}

# This machine's dockerd trusts the CA for 127.0.0.1:5443 and logs in (password on stdin).
# Retries while the registry starts.
login() {
  install -d "/etc/docker/certs.d/$PUSH_HOST"
  install -m 644 "$REG_DIR/certs/ca.crt" "/etc/docker/certs.d/$PUSH_HOST/ca.crt"
  local deadline=$((SECONDS + 30)) out
  until out="$(docker login "$PUSH_HOST" -u "$REGISTRY_USER" --password-stdin <"$REG_DIR/password" 2>&1)"; do
    [ "$SECONDS" -lt "$deadline" ] || { docker logs --tail 20 "$REGISTRY_CONTAINER" >&2; die "docker login $PUSH_HOST failed: $out"; }
    sleep 1
  done
}

cmd_registry() {
  need_docker
  cmd_build
  local manifest key start=$SECONDS name ref
  manifest="$(manifest_path "$(builder_key)")"
  key="$(manifest_key "$manifest")"
  exec 7>"$IMAGES_DIR/registry.lock"
  flock 7
  local reg_image
  reg_image="slipway-lab/$(manifest_images "$manifest" | awk '$1 == "registry" { print $2 }')"
  ensure_credentials "$reg_image"
  ensure_registry_container "$reg_image"
  login
  # The stamp lives in the registry's storage: storage removed, stamp gone.
  if [ "$(cat "$REG_DIR/data/slipway-pushed" 2>/dev/null)" != "$key" ]; then
    log "pushing the lab images to $PUSH_HOST"
    while read -r name ref; do
      docker tag "slipway-lab/$ref" "$PUSH_HOST/lab/$ref"
      docker push -q "$PUSH_HOST/lab/$ref" >/dev/null || die "docker push $PUSH_HOST/lab/$ref failed"
      docker image rm "$PUSH_HOST/lab/$ref" >/dev/null
    done < <(manifest_images "$manifest")
    echo "$key" >"$REG_DIR/data/slipway-pushed"
    log "pushed in $((SECONDS - start)) s"
  else
    log "the registry holds the lab images (key $key)"
  fi
  printf 'registry %s:%s\nca %s\nusername %s\npassword_file %s\n' "$REGISTRY_NAME" "$REGISTRY_PORT" \
    "$REG_DIR/certs/ca.crt" "$REGISTRY_USER" "$REG_DIR/password"
  while read -r name ref; do
    case "$name" in app-*) name="app:${name#app-}" ;; esac
    printf 'image %s %s:%s/lab/%s\n' "$name" "$REGISTRY_NAME" "$REGISTRY_PORT" "$ref"
  done < <(manifest_images "$manifest")
}

cmd_down() {
  need_docker
  docker rm -f "$REGISTRY_CONTAINER" >/dev/null 2>&1 || true
  log "registry container $REGISTRY_CONTAINER removed (storage, CA and credentials kept in $REG_DIR)"
}

main() {
  local cmd="${1:-help}"
  [ $# -gt 0 ] && shift
  [ $# = 0 ] || { usage; exit 2; }
  case "$cmd" in
    build) cmd_build ;;
    registry) cmd_registry ;;
    down) cmd_down ;;
    help | -h | --help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
