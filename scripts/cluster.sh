#!/usr/bin/env bash
# A Veil cluster on loopback for one command: starts `veil scheduler` and
# EXECUTORS `veil executor`s (default 2; each with VCORES task slots,
# default one per core) on free 127.0.0.1 ports, runs
# COMMAND with VEIL_CLUSTER=df://127.0.0.1:PORT in its environment (which
# `veil query`, `veil shell`, `veil serve` and `veil bench` read as
# --cluster), then stops them. Everything is stopped after SECONDS (default
# 600) at the latest, and on any exit.
#
#   scripts/cluster.sh [-n EXECUTORS] [-c VCORES] [-t SECONDS] COMMAND [ARGS...]
#   VEIL=target/release/veil scripts/cluster.sh veil query -w testdata/sample -u bob "SELECT ..."
#
# The veil binary is $VEIL, else `veil` on PATH, else the debug build under
# $CARGO_TARGET_DIR (or target/). Executors read the secret from
# VEIL_SECRET, as the workspace does (settings.secret_env); a workspace with
# another secret_env needs VEIL_SECRET set to the same value.
set -euo pipefail

executors=2
vcores=0
seconds=600
while getopts "n:c:t:" opt; do
    case "$opt" in
        n) executors="$OPTARG" ;;
        c) vcores="$OPTARG" ;;
        t) seconds="$OPTARG" ;;
        *) echo "usage: $0 [-n EXECUTORS] [-c VCORES] [-t SECONDS] COMMAND [ARGS...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ "$#" -eq 0 ]; then
    echo "usage: $0 [-n EXECUTORS] [-c VCORES] [-t SECONDS] COMMAND [ARGS...]" >&2
    exit 2
fi

if [ -z "${VEIL:-}" ]; then
    if command -v veil >/dev/null 2>&1; then
        VEIL=veil
    else
        VEIL="${CARGO_TARGET_DIR:-$(dirname "$0")/../target}/debug/veil"
    fi
fi
if ! command -v "$VEIL" >/dev/null 2>&1; then
    echo "error: no veil binary at '$VEIL'; build it (cargo build) or set VEIL" >&2
    exit 2
fi

# A port nothing listens on right now, and (for an executor, whose task
# service takes the next port) the one after it.
free_port() {
    python3 - <<'PY'
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); port = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", port + 1))
    except OSError:
        a.close(); continue
    a.close(); b.close(); print(port); break
PY
}

# Waits until 127.0.0.1:$1 accepts connections (up to 60 s).
wait_port() {
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    return 1
}

logs="$(mktemp -d "${TMPDIR:-/tmp}/veil-cluster.XXXXXX")"
pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$logs"
}
trap stop EXIT
trap 'exit 130' INT TERM

scheduler_port="$(free_port)"
timeout "$seconds" "$VEIL" scheduler --bind "127.0.0.1:$scheduler_port" >"$logs/scheduler.log" 2>&1 &
pids+=($!)
if ! wait_port "$scheduler_port"; then
    echo "error: the scheduler did not start:" >&2
    cat "$logs/scheduler.log" >&2
    exit 1
fi
for i in $(seq 1 "$executors"); do
    port="$(free_port)"
    mkdir -p "$logs/work-$i"
    timeout "$seconds" "$VEIL" executor --scheduler "df://127.0.0.1:$scheduler_port" \
        --bind "127.0.0.1:$port" --work-dir "$logs/work-$i" --vcores "$vcores" \
        >"$logs/executor-$i.log" 2>&1 &
    pids+=($!)
    # The Flight port opens once the executor registered with the scheduler.
    if ! wait_port "$port"; then
        echo "error: executor $i did not start:" >&2
        cat "$logs/executor-$i.log" >&2
        exit 1
    fi
done
echo "veil cluster: scheduler df://127.0.0.1:$scheduler_port, $executors executors" >&2

export VEIL_CLUSTER="df://127.0.0.1:$scheduler_port"
status=0
timeout "$seconds" "$@" || status=$?
exit "$status"
