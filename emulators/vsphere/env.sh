#!/usr/bin/env bash
# Prints the environment provider-vsphere's tests read, for the simulator start.sh runs:
#   eval "$(emulators/vsphere/env.sh)"
PORT=${VCSIM_PORT:-8989} PREFIX=${VSPHERESIM_PREFIX:-/opt/peers/vsphere}
S=https; [ "${VCSIM_TLS:-1}" = 0 ] && S=http
echo "export VSPHERE_URL=$S://127.0.0.1:$PORT/sdk"
echo "export VSPHERE_USERNAME=${VCSIM_USER:-admin}"
echo "export VSPHERE_PASSWORD=${VCSIM_PASSWORD:-secret}"
echo "export VSPHERE_DATACENTER=DC0"
echo "export VSPHERE_TEMPLATE=tmpl-base"
[ "$S" = https ] && echo "export VSPHERE_CA_CERT_FILE=$PREFIX/tls/cert.pem"
exit 0
