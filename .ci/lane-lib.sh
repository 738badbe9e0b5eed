# Shared by the server lanes (.ci/lane-postgres15, .ci/lane-postgres16): phase timings,
# a fresh password-protected cluster of a given server's binaries, and the suite against it.
# Sourced, not run. The caller sets LANE (its name), BIN (the server's bin/) and PORT.

declare -a TIMINGS=()
phase_start=0
begin() {
    phase="$1"
    phase_start=$(date +%s.%N)
    echo "== ${LANE}: ${phase}" >&2
}
end() {
    local took
    took=$(awk -v a="$phase_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    TIMINGS+=("$(printf '%-10s %7ss' "$phase" "$took")")
}
report() {
    echo "== ${LANE} timings:" >&2
    local line
    for line in "${TIMINGS[@]}"; do echo "   $line" >&2; done
}

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "${LANE}: run as root (it installs packages and runs the server as an unprivileged user)" >&2
        exit 2
    fi
}

# PostgreSQL refuses to run as root: the server runs as the `postgres` OS user
# (Debian's packages make it; created here where they did not run).
as_postgres() { (cd / && runuser -u postgres -- "$@"); }
ensure_postgres_user() {
    id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
}

# A fresh cluster in a temporary folder on 127.0.0.1:$PORT whose superuser
# `postgres` has a scram-sha-256 password; exports VECTORKEEP_TEST_ADMIN_URL
# and PGPASSFILE for the tests. Stopped and deleted on exit (LANE_KEEP=1 keeps it).
start_cluster() {
    ensure_postgres_user
    if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then
        echo "${LANE}: something already listens on 127.0.0.1:${PORT}" >&2
        exit 1
    fi
    base=$(mktemp -d "/tmp/${LANE}.XXXXXX")
    chmod 0755 "$base"
    pgdata="$base/pgdata"
    local password
    password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    install -d -o postgres -g postgres -m 0700 "$pgdata" "$base/run"
    install -o postgres -g postgres -m 0600 /dev/null "$base/pwfile"
    install -o postgres -g postgres -m 0600 /dev/null "$base/server.log"
    printf '%s\n' "$password" >"$base/pwfile"
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    as_postgres "$BIN/initdb" -D "$pgdata" -U postgres --pwfile="$base/pwfile" \
        --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$base/pwfile"
    cat >>"$pgdata/postgresql.conf" <<CONF

# ${LANE}
listen_addresses = '127.0.0.1'
port = ${PORT}
unix_socket_directories = '$base/run'
password_encryption = 'scram-sha-256'
max_connections = 200
# A throwaway test server: no durability needed, and faster CREATE DATABASE on shared cores.
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    # The tests make login roles without passwords (tests/conftest.py `login`, and a few tests of
    # their own), always in one of vectorkeep's groups: those are trusted on 127.0.0.1. Everyone
    # else (the superuser) gives a scram-sha-256 password, and so does every role in database
    # vk_managed, where the managed-mode tests (tests/test_managed.py) install vectorkeep as a
    # managed service would have it. Groups are looked up per connection, so they need not exist yet.
    cat >"$pgdata/pg_hba.conf" <<HBA
# TYPE  DATABASE    USER                          ADDRESS        METHOD
local   all         all                                          peer
host    vk_managed  all                           127.0.0.1/32   scram-sha-256
host    all         +vk_app,+vk_worker,+vk_admin  127.0.0.1/32   trust
host    all         all                           127.0.0.1/32   scram-sha-256
HBA
    as_postgres "$BIN/pg_ctl" -D "$pgdata" -l "$base/server.log" -w -t 60 start >/dev/null
    export VECTORKEEP_TEST_ADMIN_URL="postgresql://postgres:${password}@127.0.0.1:${PORT}/postgres"
    export VECTORKEEP_TEST_SCRAM_URL="$VECTORKEEP_TEST_ADMIN_URL"
    # As on a password-authenticated server of one's own: libpq finds the password in a passfile
    # where a connection string has none (psycopg's conn.info.dsn leaves it out).
    install -m 0600 /dev/null "$base/pgpass"
    printf '127.0.0.1:%s:*:postgres:%s\n' "$PORT" "$password" >"$base/pgpass"
    export PGPASSFILE="$base/pgpass"
    unset PGPASSWORD PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
    .venv/bin/python - <<'PY'
import os

import psycopg

with psycopg.connect(os.environ["VECTORKEEP_TEST_ADMIN_URL"]) as conn:
    version = conn.execute("SHOW server_version").fetchone()
    method = conn.execute("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'postgres'").fetchone()
    available = dict(conn.execute("SELECT name, default_version FROM pg_available_extensions WHERE name IN ('vector', 'dblink')").fetchall())
print(f"PostgreSQL {version[0]}, scram password: {method[0]}, extensions: {available}")
PY
}

cleanup() {
    local rc=$?
    set +e
    if [ -f "$pgdata/postmaster.pid" ]; then
        as_postgres "$BIN/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1
    fi
    if [ "$rc" -ne 0 ] && [ -f "$base/server.log" ]; then
        echo "== ${LANE}: server log (last 40 lines)" >&2
        tail -n 40 "$base/server.log" >&2
    fi
    if [ "${LANE_KEEP:-0}" = 1 ]; then
        echo "${LANE}: kept $base" >&2
    else
        rm -rf "$base"
    fi
    report
    exit "$rc"
}

run_suite() {
    begin pytest
    set +e
    # One process: the tests share this lane's server (its template database and group roles), where
    # the embedded lane's two processes (pyproject's addopts) each start their own.
    .venv/bin/python -m pytest -q -p no:cacheprovider -n 0 "$@"
    local status=$?
    set -e
    end
    return "$status"
}
