#!/bin/sh
# Managed by slipway: changes made here are reverted on the next apply.
# slipway-postgres-backup: pg_dump of a Swarm service's PostgreSQL on this node, proven by a
# restore drill (docs/roles-backup.md). Its settings: /etc/slipway/postgres-backup/backup.conf.
#   run            back up, drill, retention, copy off the node (what the timer starts)
#   drill FILE     the restore drill of one backup in the backup directory
#   status         the last run's result, one `key value` a line
#   inspect FROM   what restoring FROM (a backup's file name, or "latest") would replace
#   restore FROM   restore FROM into the running service (pg_restore --clean --if-exists)
set -u
umask 077
. /etc/slipway/postgres-backup/backup.conf
LOCK=/run/lock/slipway-postgres-backup.lock
LAST="$STATE/last"
METRICS_STATE="$STATE/metrics"
# Every user table with its exact row count, as `count SCHEMA.TABLE N` lines.
COUNT_SQL="SELECT 'count ' || format('%I.%I', table_schema, table_name) || ' ' || (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1;"

log() { printf '%s\n' "$*" >&2; }
# Records what went wrong (the first error wins) and fails.
fail() {
  log "error: $*"
  [ -n "$ERROR" ] || ERROR="$*"
  return 1
}
now() { date +%s; }

ERROR=
CLEAN_CONTAINER=
CLEAN_NETWORK=
CLEAN_DIR=
cleanup() {
  [ -z "$CLEAN_CONTAINER" ] || docker rm -f "$CLEAN_CONTAINER" >/dev/null 2>&1
  [ -z "$CLEAN_NETWORK" ] || docker network rm "$CLEAN_NETWORK" >/dev/null 2>&1
  [ -z "$CLEAN_DIR" ] || rm -rf "$CLEAN_DIR"
  CLEAN_CONTAINER='' CLEAN_NETWORK='' CLEAN_DIR=''
}
trap 'exit 1' HUP INT TERM

take_lock() {
  mkdir -p /run/lock "$STATE"
  exec 9>>"$LOCK"
  flock -w 3600 9 || { log "error: another backup, drill or restore holds $LOCK"; exit 1; }
}

# C: the running task of the service on this node.
container() {
  C=$(docker ps -q --filter "label=com.docker.swarm.service.name=$SERVICE" --filter status=running | head -n 1)
  [ -n "$C" ] || fail "no running container of service $SERVICE on this node"
}

psql_in() { # CONTAINER SQL: runs SQL as the database user over the local socket
  docker exec -u postgres "$1" psql -X -q -At -v ON_ERROR_STOP=1 -U "$DB_USER" -d "$DATABASE" -c "$2"
}

counts_in() { # CONTAINER: `SCHEMA.TABLE N` lines
  out=$(psql_in "$1" "$COUNT_SQL") || { fail "counting rows in $DATABASE failed"; return 1; }
  [ -z "$out" ] || printf '%s\n' "$out" | sed -n 's/^count //p'
}

# The backups' file names, oldest first (names sort by time).
backups() {
  for p in "$DIR"/*.dump; do [ ! -f "$p" ] || printf '%s\n' "${p##*/}"; done
}

# FROM_PATH: FROM (a file name in the backup directory, or "latest") as a path.
resolve() {
  case "$1" in
    latest) f=$(backups | tail -n 1) ;;
    */* | .*) fail "not a backup file name: $1"; return 1 ;;
    *) f=$1 ;;
  esac
  [ -n "$f" ] && [ -f "$DIR/$f" ] || { fail "no backup ${f:-at all} in $DIR"; return 1; }
  FROM_PATH=$DIR/$f
}

verify_checksum() { # PATH
  (cd "$(dirname "$1")" && sha256sum -c --status "$(basename "$1").sha256") ||
    { fail "checksum mismatch: $(basename "$1") differs from $(basename "$1").sha256"; return 1; }
}

# pg_dump and the row counts from one snapshot: a read-only repeatable-read
# transaction exports it, pg_dump uses it, and the counts are read in that
# transaction after the dump, so they describe exactly what the dump holds.
dump() { # CONTAINER OUT COUNTS
  work=$(mktemp -d); CLEAN_DIR=$work
  snapfile=/tmp/slipway-snapshot-$$
  mkfifo "$work/in"
  docker exec -i -u postgres "$1" psql -X -q -At -v ON_ERROR_STOP=1 -U "$DB_USER" -d "$DATABASE" \
    <"$work/in" >"$work/out" 2>"$work/err" &
  reader=$!
  exec 7>"$work/in"
  printf '%s\n' "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;" \
    "\\copy (SELECT pg_export_snapshot()) TO '$snapfile'" >&7
  snap='' i=0
  while [ $i -lt 300 ] && kill -0 "$reader" 2>/dev/null; do
    snap=$(docker exec "$1" cat "$snapfile" 2>/dev/null) && [ -n "$snap" ] && break
    i=$((i + 1)); sleep 0.2
  done
  rc=0
  if [ -z "$snap" ]; then
    fail "could not open a snapshot in $DATABASE: $(tr '\n' ' ' <"$work/err")" || rc=1
  elif ! docker exec -u postgres "$1" pg_dump -Fc --snapshot="$snap" -U "$DB_USER" -d "$DATABASE" >"$2" 2>"$work/dump.err"; then
    fail "pg_dump failed: $(tr '\n' ' ' <"$work/dump.err")" || rc=1
  fi
  [ $rc -ne 0 ] || printf '%s\n' "$COUNT_SQL" >&7
  printf '%s\n' "COMMIT;" >&7
  exec 7>&-
  wait "$reader" || [ $rc -ne 0 ] || fail "counting rows failed: $(tr '\n' ' ' <"$work/err")" || rc=1
  docker exec "$1" rm -f "$snapfile" >/dev/null 2>&1
  [ $rc -ne 0 ] || sed -n 's/^count //p' "$work/out" >"$3"
  cleanup
  return $rc
}

backup() {
  container || return 1
  IMAGE=$(docker inspect -f '{{.Image}}' "$C")
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  FILE="$DATABASE-$stamp.dump"
  tmp="$DIR/.$FILE.tmp"
  mkdir -p "$DIR"
  t0=$(now)
  dump "$C" "$tmp" "$tmp.counts" || { rm -f "$tmp" "$tmp.counts"; return 1; }
  (cd "$DIR" && sha256sum ".$FILE.tmp" | sed "s/ .*/  $FILE/") >"$tmp.sha256"
  SHA=$(cut -d ' ' -f 1 "$tmp.sha256")
  SIZE=$(stat -c %s "$tmp")
  # The side files first: a .dump in the directory always has both.
  mv "$tmp.sha256" "$DIR/$FILE.sha256" && mv "$tmp.counts" "$DIR/$FILE.counts" && mv "$tmp" "$DIR/$FILE" ||
    { fail "could not move $FILE into place"; return 1; }
  BACKUP_SECONDS=$(($(now) - t0))
  log "backup $FILE: $SIZE bytes, sha256 $SHA, ${BACKUP_SECONDS}s"
}

# The restore drill: the checksum, then pg_restore --list and pg_restore into
# a throwaway PostgreSQL of the same image on a private network, then every
# table's row count against the backup's.
drill() { # PATH
  t0=$(now)
  DRILL=failed
  rm -f "$STATE/drill.counts"
  verify_checksum "$1" || return 1
  [ -f "$1.counts" ] || { fail "$(basename "$1").counts is missing"; return 1; }
  if [ -z "${IMAGE:-}" ]; then
    container || return 1
    IMAGE=$(docker inspect -f '{{.Image}}' "$C")
  fi
  name="slipway-drill-$$"
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  CLEAN_NETWORK=$name
  docker network create --internal "$name" >/dev/null || { fail "could not create the drill network"; return 1; }
  CLEAN_CONTAINER=$name
  docker run -d --rm --name "$name" --network "$name" -e POSTGRES_PASSWORD="$pw" \
    -e POSTGRES_USER="$DB_USER" -e POSTGRES_DB="$DATABASE" "$IMAGE" >/dev/null ||
    { fail "could not start the drill container"; return 1; }
  # Over TCP: the entrypoint's first, socket-only server must not count as ready.
  i=0
  until docker exec "$name" pg_isready -q -h 127.0.0.1 -U "$DB_USER" -d "$DATABASE" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt "$DRILL_TIMEOUT" ] || { fail "the drill's PostgreSQL was not ready after ${DRILL_TIMEOUT}s"; return 1; }
    sleep 1
  done
  docker exec -i -u postgres "$name" sh -c 'cat > /tmp/drill.dump' <"$1" ||
    { fail "could not copy the backup into the drill container"; return 1; }
  docker exec -u postgres "$name" pg_restore --list /tmp/drill.dump >/dev/null 2>"$STATE/drill.err" ||
    { fail "pg_restore --list failed: $(tr '\n' ' ' <"$STATE/drill.err")"; return 1; }
  docker exec -u postgres "$name" pg_restore --exit-on-error --no-owner --no-privileges \
    -U "$DB_USER" -d "$DATABASE" /tmp/drill.dump 2>"$STATE/drill.err" ||
    { fail "pg_restore failed: $(tr '\n' ' ' <"$STATE/drill.err")"; return 1; }
  counts_in "$name" >"$STATE/drill.counts" || { fail "counting the restored rows failed"; return 1; }
  cleanup
  DRILL_SECONDS=$(($(now) - t0))
  if ! diff -u "$1.counts" "$STATE/drill.counts" >"$STATE/drill.err"; then
    fail "restored row counts differ from the backup's: $(grep '^[-+][^-+]' "$STATE/drill.err" | tr '\n' ' ')"
    return 1
  fi
  DRILL=passed
  log "restore drill of $(basename "$1"): passed, $(wc -l <"$1.counts") tables, ${DRILL_SECONDS}s"
}

# Keeps the newest backup of each of the newest KEEP_DAILY days, KEEP_WEEKLY
# ISO weeks and KEEP_MONTHLY months; removes the others with their side files.
retain() {
  days='' weeks='' months='' nd=0 nw=0 nm=0
  for f in $(backups | sort -r); do
    stamp=${f%.dump}; stamp=${stamp##*-}; day=${stamp%%T*}
    week=$(date -u -d "$day" +%G%V) month=${day%??} keep=''
    case " $days " in *" $day "*) ;; *) [ $nd -ge "$KEEP_DAILY" ] || { days="$days $day"; nd=$((nd + 1)); keep=1; } ;; esac
    case " $weeks " in *" $week "*) ;; *) [ $nw -ge "$KEEP_WEEKLY" ] || { weeks="$weeks $week"; nw=$((nw + 1)); keep=1; } ;; esac
    case " $months " in *" $month "*) ;; *) [ $nm -ge "$KEEP_MONTHLY" ] || { months="$months $month"; nm=$((nm + 1)); keep=1; } ;; esac
    [ -n "$keep" ] || { log "retention: removing $f"; rm -f "$DIR/$f" "$DIR/$f.sha256" "$DIR/$f.counts"; }
  done
}

# Mirrors the backup directory (retention included) to COPY_TO over SSH, then
# checks the new backup's checksum there.
copy_off() {
  [ -n "$COPY_HOST" ] || return 0
  ssh_cmd="ssh -i /etc/slipway/postgres-backup/id_copy -p $COPY_PORT -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$STATE/known_hosts -o ConnectTimeout=20"
  rsync -a --delete --include='*.dump' --include='*.dump.sha256' --include='*.dump.counts' --exclude='*' \
    -e "$ssh_cmd" "$DIR/" "$COPY_HOST:$COPY_PATH/" 2>"$STATE/copy.err" ||
    { fail "copy to $COPY_HOST:$COPY_PATH failed: $(tr '\n' ' ' <"$STATE/copy.err")"; return 1; }
  $ssh_cmd "$COPY_HOST" "cd '$COPY_PATH' && sha256sum -c --status '$FILE.sha256'" 2>"$STATE/copy.err" ||
    { fail "the copy of $FILE on $COPY_HOST does not match its checksum: $(tr '\n' ' ' <"$STATE/copy.err")"; return 1; }
  log "copied to $COPY_HOST:$COPY_PATH, checksum verified there"
}

# Metrics for node-exporter's textfile collector, kept across runs in $METRICS_STATE.
write_metrics() {
  labels="service=\"$SERVICE\",database=\"$DATABASE\""
  {
    for m in last_success_timestamp_seconds:gauge:"the last backup whose restore drill passed finished (Unix time)" \
      last_run_success:gauge:"1 when the last run (backup, drill, copy) succeeded" \
      size_bytes:gauge:"size of the last good backup" \
      duration_seconds:gauge:"how long the last backup took" \
      drill_duration_seconds:gauge:"how long the last restore drill took" \
      drill_success:gauge:"1 when the last restore drill passed"; do
      key=${m%%:*} rest=${m#*:}
      eval "value=\${M_$key:-}"
      [ -n "$value" ] || continue
      printf '# HELP slipway_postgres_backup_%s %s\n# TYPE slipway_postgres_backup_%s %s\n' "$key" "${rest#*:}" "$key" "${rest%%:*}"
      printf 'slipway_postgres_backup_%s{%s} %s\n' "$key" "$labels" "$value"
    done
  } >"$TEXTFILE/.slipway_postgres_backup.prom.tmp"
  chmod 644 "$TEXTFILE/.slipway_postgres_backup.prom.tmp"
  mv "$TEXTFILE/.slipway_postgres_backup.prom.tmp" "$TEXTFILE/slipway_postgres_backup.prom"
  set | grep '^M_' >"$METRICS_STATE"
}

# POSTs to each webhook the payload slipway rendered, with the error in it,
# and mails it. The URLs and the SMTP login stay in root-only curl config
# files: never on a command line. A notification that fails is logged only.
notify() { # TEXT
  text=$(printf '%s' "$1" | tr -c 'A-Za-z0-9 .,:;/_=()+@%#-' ' ' | cut -c 1-1500)
  for hook in "$NOTIFY"/*.curl; do
    [ -f "$hook" ] || continue
    sed "s|@@DETAIL@@|$text|" "${hook%.curl}.json" |
      curl -fsS --max-time 10 -K "$hook" -H 'Content-Type: application/json' --data-binary @- >/dev/null ||
      log "notification by $(basename "${hook%.curl}") failed"
  done
  send_mail "$text"
}

# The mail slipway rendered, dated now, TEXT folded in place of its marker
# line, with the CRLF line ends SMTP wants; curl's SMTP settings and login
# come from config files.
send_mail() { # TEXT
  [ -f "$NOTIFY/email.smtp" ] || return 0
  login=''
  [ ! -f "$NOTIFY/email.login" ] || login="$NOTIFY/email.login"
  {
    printf 'Date: %s\n' "$(date -R)"
    while IFS= read -r line; do
      if [ "$line" = @@DETAIL@@ ]; then printf '%s\n' "$1" | fold -s -w 76; else printf '%s\n' "$line"; fi
    done <"$NOTIFY/email.txt"
  } | sed 's/$/\r/' |
    curl -sS --max-time 30 -K "$NOTIFY/email.smtp" ${login:+-K "$login"} --upload-file - ||
    log "notification by e-mail failed"
}

finish() {
  rc=$?
  cleanup
  [ $rc -eq 0 ] || [ -n "$ERROR" ] || ERROR="exited with status $rc"
  [ -z "$ERROR" ] || RESULT=failed
  {
    printf 'result %s\nmode %s\nstarted %s\nfinished %s\n' "$RESULT" "$MODE" "$STARTED" "$(now)"
    printf 'file %s\nsize %s\nsha256 %s\n' "${FILE:-}" "${SIZE:-}" "${SHA:-}"
    printf 'backup_seconds %s\ndrill %s\ndrill_seconds %s\n' "${BACKUP_SECONDS:-}" "${DRILL:-}" "${DRILL_SECONDS:-}"
    printf 'copy %s\n' "${COPY_HOST:+$COPY_HOST:$COPY_PATH}"
    printf 'error %s\n' "$ERROR" | tr -d '\r'
    [ ! -f "$STATE/drill.counts" ] || sed 's/^/restored /' "$STATE/drill.counts"
  } >"$LAST.tmp" && mv "$LAST.tmp" "$LAST"
  [ ! -f "$METRICS_STATE" ] || . "$METRICS_STATE"
  [ "${DRILL:-}" = none ] || { M_drill_success=$([ "$DRILL" = passed ] && echo 1 || echo 0); M_drill_duration_seconds=${DRILL_SECONDS:-0}; }
  if [ "$MODE" = run ]; then
    M_last_run_success=$([ "$RESULT" = ok ] && echo 1 || echo 0)
    [ -z "${BACKUP_SECONDS:-}" ] || M_duration_seconds=$BACKUP_SECONDS
    [ "$RESULT" != ok ] || { M_last_success_timestamp_seconds=$(now); M_size_bytes=$SIZE; }
  fi
  write_metrics
  if [ "$RESULT" != ok ]; then
    log "$MODE failed: $ERROR"
    notify "$MODE of $SERVICE/$DATABASE on $HOST_NAME failed: $ERROR"
    exit 1
  fi
}

start() { # MODE
  MODE=$1 STARTED=$(now) RESULT=ok DRILL=none
  take_lock
  trap finish EXIT
}

cmd=${1:-}
case "$cmd" in
  run)
    start run
    backup || exit 1
    drill "$DIR/$FILE" || exit 1
    retain
    copy_off || exit 1
    ;;
  drill)
    [ $# -eq 2 ] || { log "usage: $0 drill FILE"; exit 2; }
    start drill
    resolve "$2" || exit 1
    FILE=$(basename "$FROM_PATH")
    drill "$FROM_PATH" || exit 1
    ;;
  status)
    cat "$LAST" 2>/dev/null || { log "no backup has run yet"; exit 1; }
    ;;
  inspect)
    [ $# -eq 2 ] || { log "usage: $0 inspect FROM"; exit 2; }
    resolve "$2" && verify_checksum "$FROM_PATH" && container || exit 1
    current=$(counts_in "$C") || exit 1
    printf 'file %s\nservice %s\ndatabase %s\nsize %s\n' "$(basename "$FROM_PATH")" "$SERVICE" "$DATABASE" "$(stat -c %s "$FROM_PATH")"
    [ -z "$current" ] || printf '%s\n' "$current" | sed 's/^/current /'
    sed 's/^/backup /' "$FROM_PATH.counts"
    ;;
  restore)
    [ $# -eq 2 ] || { log "usage: $0 restore FROM"; exit 2; }
    take_lock
    resolve "$2" && verify_checksum "$FROM_PATH" && container || exit 1
    docker exec -i -u postgres "$C" pg_restore --clean --if-exists --exit-on-error \
      -U "$DB_USER" -d "$DATABASE" <"$FROM_PATH" || { log "error: pg_restore into $SERVICE failed"; exit 1; }
    log "restored $(basename "$FROM_PATH") into $SERVICE/$DATABASE"
    restored=$(counts_in "$C") || exit 1
    printf 'file %s\n' "$(basename "$FROM_PATH")"
    [ -z "$restored" ] || printf '%s\n' "$restored" | sed 's/^/restored /'
    ;;
  *)
    log "usage: $0 run | drill FILE | status | inspect FROM | restore FROM"
    exit 2
    ;;
esac
