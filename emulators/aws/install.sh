#!/usr/bin/env bash
# Install moto's server (AWS EC2/ELBv2 emulator) into a venv. Idempotent: does nothing
# when the pinned version is already there. Messages go to stderr.
set -euo pipefail

MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
MOTO_VENV="${MOTO_VENV:-/opt/plinth/moto-venv}"

die() { echo "emulators/aws/install.sh: $*" >&2; exit 1; }

if "$MOTO_VENV/bin/python" -c "import moto, moto.server; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
  echo "moto[server]==$MOTO_VERSION already installed in $MOTO_VENV" >&2
  exit 0
fi
echo "installing moto[server]==$MOTO_VERSION into $MOTO_VENV" >&2
mkdir -p "$(dirname "$MOTO_VENV")"
# A fresh Debian has python3 without venv and pip; one apt at a time (see
# emulators/openstack/install.sh).
if ! dpkg -s python3-venv python3-pip >/dev/null 2>&1 && command -v apt-get >/dev/null; then
  exec 9>/var/lock/plinth-apt.lock
  flock 9
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv python3-pip >&2
  flock -u 9
fi
"${PYTHON:-python3}" -m venv "$MOTO_VENV" >&2 ||
  die "cannot create venv $MOTO_VENV (Debian: apt-get install python3-venv)"
"$MOTO_VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION" >&2 ||
  die "pip install moto[server]==$MOTO_VERSION failed"
