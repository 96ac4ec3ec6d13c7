#!/usr/bin/env bash
# Stop the moto_server that start.sh started (same MOTO_PORT and PLINTH_RUN_DIR). Kills
# only the PID in the pidfile, and only if that PID is still a moto_server.
set -euo pipefail

PIDFILE="${PLINTH_RUN_DIR:-/tmp/plinth-emulators}/moto-${MOTO_PORT:-5555}.pid"

[[ -f $PIDFILE ]] || { echo "emulators/aws/stop.sh: no $PIDFILE, nothing to stop" >&2; exit 0; }
pid=$(cat "$PIDFILE")
if grep -qas moto_server "/proc/$pid/cmdline"; then
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  echo "emulators/aws/stop.sh: stopped moto_server (pid $pid)" >&2
fi
rm -f "$PIDFILE"
