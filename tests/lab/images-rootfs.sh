#!/usr/bin/env bash
# Runs inside the Ubuntu 24.04 lab image (a plain container, no systemd), started by images.sh:
# installs the packages once and assembles one small rootfs per lab image under OUT/rootfs/NAME,
# and OUT/versions ("NAME TAG" per image). Each rootfs holds only its program, the shared
# libraries ldd lists, the data files the program reads, busybox (for health checks and
# docker exec), and passwd/group with the user the image runs as.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

readonly OUT=${1:?usage: images-rootfs.sh OUT}
readonly PACKAGES=(prometheus prometheus-alertmanager prometheus-node-exporter
  prometheus-postgres-exporter postgresql redis-server nginx caddy pebble docker-registry
  busybox-static apache2-utils openssl ca-certificates tzdata)

log() { printf 'images: %s\n' "$*" >&2; }

# Postinsts must start nothing: there is no init here, and the daemons are not wanted running.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
apt-get update -q >/tmp/apt.out 2>&1 || { cat /tmp/apt.out >&2; exit 1; }
apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" </dev/null >/tmp/apt.out 2>&1 ||
  { tail -n 40 /tmp/apt.out >&2; exit 1; }
log "installed $(grep -c '^Setting up ' /tmp/apt.out) packages"

# The upstream version of a package: no epoch, no Debian/Ubuntu revision, no +ds suffix.
upstream_version() {
  local v
  v="$(dpkg-query -W -f='${Version}' "$1")"
  v="${v#*:}"
  printf '%s\n' "${v%%[-+~]*}"
}

R=""
# Starts the rootfs of image $1: merged /usr, busybox with every applet linked, root and
# nobody in passwd/group, the CA bundle, a writable /tmp.
new_root() {
  R="$OUT/rootfs/$1"
  rm -rf "$R"
  mkdir -p "$R"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64} "$R"/{etc/ssl/certs,tmp,root,var/tmp,run}
  local d
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$R/$d"; done
  chmod 1777 "$R/tmp" "$R/var/tmp"
  chmod 700 "$R/root"
  cp /bin/busybox "$R/usr/bin/busybox"
  local a
  for a in $(busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$R/usr/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$R/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\nnobody:x:65534:\n' >"$R/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$R/etc/nsswitch.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/"
}

add_user() { # NAME UID HOME
  printf '%s:x:%s:%s:%s:%s:/bin/sh\n' "$1" "$2" "$2" "$1" "$3" >>"$R/etc/passwd"
  printf '%s:x:%s:\n' "$1" "$2" >>"$R/etc/group"
}

# Copies a file into the rootfs (dereferenced), replacing a busybox applet link of that name.
put() { # SRC [DEST]
  local dest="$R${2:-$1}"
  mkdir -p "$(dirname "$dest")"
  rm -f "$dest"
  cp -L "$1" "$dest"
}

# Copies a program and the shared libraries ldd lists for it (the loader included).
add_bin() { # SRC [DEST]
  put "$@"
  local lib
  for lib in $(ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    [ -e "$R$lib" ] || put "$lib"
  done
}

# Directories owned by a uid, for state and mounted configs.
own_dirs() { # UID DIR...
  local uid=$1 d
  shift
  for d in "$@"; do
    mkdir -p "$R$d"
    chown "$uid:$uid" "$R$d"
  done
}

: >"$OUT/versions"
version() { printf '%s %s\n' "$1" "$2" >>"$OUT/versions"; }

# --- prometheus (prom/prometheus layout: /bin/prometheus, /etc/prometheus, /prometheus) ---
new_root prometheus
add_bin /usr/bin/prometheus /bin/prometheus
# Debian's build serves its web UI from these files, not from the binary.
mkdir -p "$R/usr/share/prometheus"
cp -a /usr/share/prometheus/web "$R/usr/share/prometheus/"
own_dirs 65534 /etc/prometheus /prometheus
cat >"$R/etc/prometheus/prometheus.yml" <<'EOF'
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
EOF
version prometheus "$(upstream_version prometheus)"

# --- alertmanager (prom/alertmanager layout) ---
new_root alertmanager
add_bin /usr/bin/prometheus-alertmanager /bin/alertmanager
add_bin /usr/bin/amtool /bin/amtool
# Templates and the (UI-less) web assets Debian's build reads from disk.
mkdir -p "$R/usr/share/prometheus"
cp -a /usr/share/prometheus/alertmanager "$R/usr/share/prometheus/"
own_dirs 65534 /etc/alertmanager /alertmanager
cat >"$R/etc/alertmanager/alertmanager.yml" <<'EOF'
route:
  receiver: default
receivers:
  - name: default
EOF
version alertmanager "$(upstream_version prometheus-alertmanager)"

# --- node-exporter, postgres-exporter ---
new_root node-exporter
add_bin /usr/bin/prometheus-node-exporter /bin/node_exporter
version node-exporter "$(upstream_version prometheus-node-exporter)"

new_root postgres-exporter
add_bin /usr/bin/prometheus-postgres-exporter /bin/postgres_exporter
version postgres-exporter "$(upstream_version prometheus-postgres-exporter)"

# --- postgres (the official image's layout and entrypoint behaviour, uid 999) ---
new_root postgres
pgmajor="$(ls /usr/lib/postgresql)"
pgbin=/usr/lib/postgresql/$pgmajor/bin
for b in postgres initdb pg_ctl psql pg_isready pg_dump pg_restore createdb createuser; do add_bin "$pgbin/$b"; done
cp -a "/usr/lib/postgresql/$pgmajor/lib" "$R/usr/lib/postgresql/$pgmajor/"
mkdir -p "$R/usr/share/postgresql" "$R/usr/lib/locale"
cp -a "/usr/share/postgresql/$pgmajor" "$R/usr/share/postgresql/"
rm -rf "$R/usr/share/postgresql/$pgmajor/man"
# The LLVM JIT alone would add 125 MB (libLLVM); postgres runs without it (jit off).
rm -rf "$R/usr/lib/postgresql/$pgmajor/lib/llvmjit"* "$R/usr/lib/postgresql/$pgmajor/lib/bitcode"
# The extensions' shared objects need libraries of their own.
for lib in "$R/usr/lib/postgresql/$pgmajor/lib"/*.so; do
  for dep in $(ldd "$lib" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
    [ -e "$R$dep" ] || put "$dep"
  done
done
# Built with the system's time zones; initdb runs with the C.UTF-8 locale.
cp -a /usr/share/zoneinfo "$R/usr/share/"
cp -a /usr/lib/locale/C.utf8 "$R/usr/lib/locale/"
add_user postgres 999 /var/lib/postgresql
own_dirs 999 /var/lib/postgresql /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d
chmod 700 "$R/var/lib/postgresql/data"
mkdir -p "$R/usr/local/bin"
cat >"$R/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# Like the official postgres image: a first start on an empty PGDATA runs initdb with
# POSTGRES_USER (default postgres), POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (required),
# creates POSTGRES_DB (default: the user), runs /docker-entrypoint-initdb.d/*.sh and *.sql,
# and lets network clients in with scram-sha-256 passwords. Runs the server as postgres (999).
set -eu
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R 999:999 "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec su -p -s /bin/sh -c 'exec "$0" "$@"' -- postgres "$0" "$@"
fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"; fi
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "error: the database is not initialized: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" >&2
    exit 1
  fi
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  # shellcheck disable=SC2086 # extra initdb arguments are meant to split
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >&2
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >&2
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \"$db\"" >&2
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "running $f" >&2; . "$f" ;;
      *.sql) echo "running $f" >&2; psql -v ON_ERROR_STOP=1 -U "$user" -d "$db" -f "$f" >&2 ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >&2
fi
exec "$@"
EOF
chmod 755 "$R/usr/local/bin/docker-entrypoint.sh"
version postgres "$(upstream_version "postgresql-$pgmajor")"
echo "$pgmajor" >"$OUT/postgres-major"

# --- redis (the official image's behaviour, uid 999) ---
new_root redis
add_bin /usr/bin/redis-check-rdb /usr/bin/redis-server
add_bin /usr/bin/redis-cli
add_user redis 999 /data
own_dirs 999 /data
mkdir -p "$R/usr/local/bin"
cat >"$R/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# Like the official redis image: options alone (--requirepass ...) or a config file run
# redis-server; without a config file protected mode is off (the container's network is the
# boundary); the server runs as redis (999) in /data.
set -eu
case "${1:-}" in -* | *.conf) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ]; then
  shift
  case "${1:-}" in
    *.conf) conf=$1; shift; set -- redis-server "$conf" "$@" ;;
    *) set -- redis-server --protected-mode no "$@" ;;
  esac
  if [ "$(id -u)" = 0 ]; then
    chown -R 999:999 /data
    exec su -p -s /bin/sh -c 'exec "$0" "$@"' -- redis "$@"
  fi
fi
exec "$@"
EOF
chmod 755 "$R/usr/local/bin/docker-entrypoint.sh"
version redis "$(upstream_version redis-server)"

# --- nginx (the official image's layout: conf.d, html, user nginx 101) ---
new_root nginx
add_bin /usr/sbin/nginx
mkdir -p "$R/etc/nginx/conf.d" "$R/usr/share/nginx/html" "$R/var/log/nginx" "$R/var/lib/nginx"
cp /etc/nginx/mime.types "$R/etc/nginx/"
add_user nginx 101 /nonexistent
# Logs to the container's output, as upstream's symlinks do.
ln -s /dev/stdout "$R/var/log/nginx/access.log"
ln -s /dev/stderr "$R/var/log/nginx/error.log"
cat >"$R/etc/nginx/nginx.conf" <<'EOF'
user nginx;
worker_processes auto;
error_log /var/log/nginx/error.log notice;
pid /run/nginx.pid;
events {
  worker_connections 1024;
}
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log /var/log/nginx/access.log;
  sendfile on;
  keepalive_timeout 65;
  include /etc/nginx/conf.d/*.conf;
}
EOF
cat >"$R/etc/nginx/conf.d/default.conf" <<'EOF'
server {
  listen 80;
  server_name localhost;
  location / {
    root /usr/share/nginx/html;
    index index.html;
  }
}
EOF
echo '<!DOCTYPE html><title>nginx</title><p>nginx (slipway lab image)</p>' >"$R/usr/share/nginx/html/index.html"
version nginx "$(upstream_version nginx)"

# --- caddy (the official image's layout: /etc/caddy/Caddyfile, /srv, /data, /config) ---
new_root caddy
add_bin /usr/bin/caddy
mkdir -p "$R/etc/caddy" "$R/srv" "$R/data" "$R/config" "$R/usr/share/caddy"
cp /etc/caddy/Caddyfile "$R/etc/caddy/"
cp /usr/share/caddy/index.html "$R/usr/share/caddy/"
version caddy "$(upstream_version caddy)"

# --- pebble: the package ships no test config or certificate; made here like upstream's
# (a mini CA, a certificate for localhost and pebble, config in /test/config) ---
new_root pebble
add_bin /usr/bin/pebble
add_bin /usr/bin/pebble-challtestsrv
mkdir -p "$R/test/config" "$R/test/certs/localhost"
(
  cd "$R/test/certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj '/CN=pebble lab minica' -keyout pebble.minica.key.pem -out pebble.minica.pem 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=pebble' \
    -keyout localhost/key.pem -out localhost/req.pem 2>/dev/null
  printf 'subjectAltName=DNS:localhost,DNS:pebble,IP:127.0.0.1\n' >localhost/ext.cnf
  openssl x509 -req -in localhost/req.pem -CA pebble.minica.pem -CAkey pebble.minica.key.pem \
    -CAcreateserial -days 3650 -extfile localhost/ext.cnf -out localhost/cert.pem 2>/dev/null
  rm -f localhost/req.pem localhost/ext.cnf pebble.minica.srl
)
cat >"$R/test/config/pebble-config.json" <<'EOF'
{
  "pebble": {
    "listenAddress": "0.0.0.0:14000",
    "managementListenAddress": "0.0.0.0:15000",
    "certificate": "test/certs/localhost/cert.pem",
    "privateKey": "test/certs/localhost/key.pem",
    "httpPort": 5002,
    "tlsPort": 5001,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
EOF
version pebble "$(upstream_version pebble)"

# --- registry (docker-registry: the CNCF distribution registry; htpasswd and openssl too,
# to make its credentials and certificates) ---
new_root registry
add_bin /usr/bin/docker-registry /bin/registry
add_bin /usr/bin/htpasswd
add_bin /usr/bin/openssl
mkdir -p "$R/usr/lib/ssl"
cp /etc/ssl/openssl.cnf "$R/etc/ssl/"
ln -s /etc/ssl/openssl.cnf "$R/usr/lib/ssl/openssl.cnf"
mkdir -p "$R/etc/docker/registry" "$R/var/lib/registry"
cat >"$R/etc/docker/registry/config.yml" <<'EOF'
version: 0.1
log:
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
EOF
version registry "$(upstream_version docker-registry)"

# --- app: a tiny HTTP app in three versions; 'broken' has no /health (answers 404) ---
# /cgi-bin/items keeps rows in PostgreSQL (POSTGRES_HOST, _DB, _USER, _PASSWORD_FILE, as the
# reference stack passes them): POST stores the request body as a row and answers its id,
# GET answers how many rows there are.
for v in 1.0 1.1 broken; do
  new_root "app-$v"
  mkdir -p "$R/www/cgi-bin"
  echo "$v" >"$R/www/version"
  echo "slipway lab app $v" >"$R/www/index.html"
  [ "$v" = broken ] || echo ok >"$R/www/health"
  add_bin "$pgbin/psql" /usr/bin/psql
  cat >"$R/www/cgi-bin/items" <<'EOF'
#!/bin/sh
reply() { printf 'Status: %s\r\nContent-Type: text/plain\r\n\r\n%s\n' "$1" "$2"; exit 0; }
[ -n "${POSTGRES_HOST:-}" ] || reply "503 Service Unavailable" "no database configured"
PGPASSWORD="$(cat "${POSTGRES_PASSWORD_FILE:-/run/secrets/postgres_password}" 2>/dev/null)"
PGHOST="$POSTGRES_HOST" PGUSER="${POSTGRES_USER:-postgres}" PGDATABASE="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
export PGPASSWORD PGHOST PGUSER PGDATABASE
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@" 2>&1; }
init='SET client_min_messages TO warning; CREATE TABLE IF NOT EXISTS items (id bigserial PRIMARY KEY, body text NOT NULL, created timestamptz NOT NULL DEFAULT now());'
case "${REQUEST_METHOD:-GET}" in
  POST)
    body="$(head -c "${CONTENT_LENGTH:-0}")"
    out="$(printf '%s\nINSERT INTO items (body) VALUES (:%s) RETURNING id;\n' "$init" "'body'" | sql -v body="$body")" ||
      reply "500 Internal Server Error" "$out"
    reply "201 Created" "$out" ;;
  GET)
    out="$(printf '%s\nSELECT count(*) FROM items;\n' "$init" | sql)" || reply "500 Internal Server Error" "$out"
    reply "200 OK" "$out" ;;
  *) reply "405 Method Not Allowed" "GET or POST" ;;
esac
EOF
  chmod 755 "$R/www/cgi-bin/items"
done

# --- receiver: records webhook payloads (POST /hook), returns them (GET /received) ---
new_root receiver
own_dirs 65534 /data
cat >"$R/usr/bin/receiver" <<'EOF'
#!/bin/sh
# One HTTP request on stdin (nc -ll -e): POST /hook appends its body to
# /data/received.jsonl as one line (CR and LF removed); GET /received returns that file;
# GET /health answers ok.
cr="$(printf '\r')"
read -r method path _ || exit 0
path="${path%"$cr"}"
len=0
while read -r line; do
  line="${line%"$cr"}"
  [ -n "$line" ] || break
  case "$line" in
    [Cc]ontent-[Ll]ength:*) len="${line#*:}"; len="${len# }" ;;
  esac
done
reply() { # STATUS CONTENT_TYPE (body on stdin)
  body="$(cat; echo x)"
  body="${body%x}"
  printf 'HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
    "$1" "$2" "$(printf '%s' "$body" | wc -c)" "$body"
}
case "$method $path" in
  "POST /hook")
    body="$(head -c "$len" | tr -d '\r\n')"
    printf '%s\n' "$body" >>/data/received.jsonl
    echo ok | reply "200 OK" text/plain
    ;;
  "GET /received") cat /data/received.jsonl 2>/dev/null | reply "200 OK" application/x-ndjson ;;
  "GET /health") echo ok | reply "200 OK" text/plain ;;
  *) echo "not found" | reply "404 Not Found" text/plain ;;
esac
EOF
chmod 755 "$R/usr/bin/receiver"
version receiver "$(upstream_version busybox-static)"

chmod -R go-w "$OUT/rootfs"/*/usr
log "rootfs sizes: $(du -sh "$OUT/rootfs"/* | awk '{ sub(".*/", "", $2); printf "%s %s, ", $2, $1 }')"
