#!/usr/bin/env bash
# Start moto_server on 127.0.0.1:$MOTO_PORT in the background (installing it first if
# needed). Idempotent: reuses a server this script started. All messages go to stderr;
# the only line on stdout is the endpoint URL, so `export AWS_ENDPOINT_URL=$(start.sh)`
# works.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MOTO_VENV="${MOTO_VENV:-/opt/plinth/moto-venv}"
MOTO_PORT="${MOTO_PORT:-5555}"
RUN_DIR="${PLINTH_RUN_DIR:-/tmp/plinth-emulators}"
PIDFILE="$RUN_DIR/moto-$MOTO_PORT.pid"
LOG="$RUN_DIR/moto-$MOTO_PORT.log"
URL="http://127.0.0.1:$MOTO_PORT"

die() { echo "emulators/aws/start.sh: $*" >&2; exit 1; }
answers() { curl -sf -o /dev/null --max-time 2 "$URL/moto-api/"; }
is_moto() { [[ -n $1 ]] && grep -qas moto_server "/proc/$1/cmdline"; }

if ! [[ $MOTO_PORT =~ ^[1-9][0-9]{0,4}$ ]] || ((MOTO_PORT > 65535)); then die "bad MOTO_PORT '$MOTO_PORT'"; fi
mkdir -p "$RUN_DIR"
pid=$(cat "$PIDFILE" 2>/dev/null || true)
if is_moto "$pid"; then
  echo "moto_server already running (pid $pid)" >&2
else
  answers && die "port $MOTO_PORT already answers, but not from a moto_server started here ($PIDFILE)"
  MOTO_VENV="$MOTO_VENV" bash "$HERE/install.sh"
  nohup "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" </dev/null >"$LOG" 2>&1 &
  pid=$!
  echo "$pid" >"$PIDFILE"
fi

deadline=$((SECONDS + 30))
until answers; do
  is_moto "$pid" || { tail -n 20 "$LOG" >&2; die "moto_server (pid $pid) exited; log: $LOG"; }
  ((SECONDS < deadline)) || die "moto_server (pid $pid) did not answer on $URL within 30 s; log: $LOG"
  sleep 0.2
done
echo "$URL"
