#!/usr/bin/env bash
# A throw-away PostgreSQL server for lrtune's tests and benchmarks.
#
#   eval "$(scripts/postgres.sh start)"   # exports LRTUNE_TEST_POSTGRES_URL and _DIR
#   scripts/postgres.sh stop "$LRTUNE_TEST_POSTGRES_DIR"
#
# start: installs Debian's postgresql package when no server is found (root only; the default
# cluster Debian would create and start is switched off first), initialises a cluster in a new
# temporary directory as a non-root user (PostgreSQL refuses to run as root: the `postgres`
# account the package creates), starts it on 127.0.0.1 at a free port, creates the database
# `lrtune` owned by the user `lrtune` with a random password, and prints the exports.
# stop DIR: stops that server and deletes its directory.
#
# Environment: PG_LISTEN (default 127.0.0.1) addresses to listen on, the first one goes in the
# URL; PG_NETNS runs the server inside that network namespace (the multi-host test).
# Exit status 3 means PostgreSQL cannot be installed here (tests then skip, saying why).
set -euo pipefail

die() { echo "postgres.sh: $1" >&2; exit "${2:-1}"; }

server_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n "$dir" && -x "$dir/pg_ctl" ]] && echo "$dir"
}

install_server() {
    [[ $(id -u) == 0 ]] || die "no PostgreSQL server found and not root: cannot install it" 3
    command -v apt-get >/dev/null || die "no PostgreSQL server found and no apt-get" 3
    mkdir -p /etc/postgresql-common  # no default cluster: nothing starts behind our back
    grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
        echo "create_main_cluster = false" >>/etc/postgresql-common/createcluster.conf
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold postgresql; } \
        >&2 || die "apt-get could not install postgresql" 3
}

# run CMD... as the server's user, inside PG_NETNS when set
as_server_user() {
    local prefix=()
    [[ -n "${PG_NETNS:-}" ]] && prefix=(ip netns exec "$PG_NETNS")
    if [[ $(id -u) == 0 ]]; then
        "${prefix[@]}" runuser -u postgres -- "$@"
    else
        "${prefix[@]}" "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local bin dir password port listen host
    bin=$(server_bin) || { install_server; bin=$(server_bin) || die "no server after install" 3; }
    if [[ $(id -u) == 0 ]] && ! id postgres >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi
    dir=$(mktemp -d /tmp/lrtune-pg.XXXXXX)
    [[ $(id -u) == 0 ]] && chown postgres: "$dir"
    chmod 700 "$dir"
    password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
    listen=${PG_LISTEN:-127.0.0.1}
    host=${listen%%,*}
    echo "${PG_NETNS:-}" >"$dir/netns"
    echo "$password" >"$dir/password"
    [[ $(id -u) == 0 ]] && chown postgres: "$dir/password" "$dir/netns"
    as_server_user "$bin/initdb" -D "$dir/data" -U lrtune --pwfile="$dir/password" \
        --auth-host=scram-sha-256 --auth-local=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
        die "initdb failed: $(tail -n 5 "$dir/initdb.log")"
    rm -f "$dir/password"
    if [[ "$listen" != 127.0.0.1 ]]; then  # clients on the directly attached links (namespaces)
        echo "host all all samenet scram-sha-256" >>"$dir/data/pg_hba.conf"
    fi
    for _ in 1 2 3; do  # a free port can be taken between the probe and the start: try again
        port=$(free_port)
        if as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses='$listen' -p $port -c unix_socket_directories='$dir'" \
            start >/dev/null; then
            as_server_user "$bin/createdb" -h "$dir" -p "$port" -U lrtune lrtune
            echo "export LRTUNE_TEST_POSTGRES_URL='postgresql://lrtune:$password@$host:$port/lrtune'"
            echo "export LRTUNE_TEST_POSTGRES_DIR='$dir'"
            return 0
        fi
    done
    die "the server did not start: $(tail -n 5 "$dir/server.log" 2>/dev/null)"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR} bin
    [[ -d "$dir/data" ]] || die "$dir holds no server"
    bin=$(server_bin) || die "no PostgreSQL binaries"
    PG_NETNS=$(cat "$dir/netns" 2>/dev/null || true) \
        as_server_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) die "usage: postgres.sh start | stop DIR" 2 ;;
esac
