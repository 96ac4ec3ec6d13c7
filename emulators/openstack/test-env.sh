#!/usr/bin/env bash
# Prints the environment provider-openstack's tests need, for `eval "$(./test-env.sh)"`
# after start.sh: the clouds.yaml start.sh wrote, the cloud's name in it, and the
# MariaDB socket (the LB-in-ERROR test sets an LB's state there, as a failed amphora would).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/env.sh"
[ -f "$STATE/clouds.yaml" ] || { echo "test-env.sh: $STATE/clouds.yaml is missing: run start.sh" >&2; exit 1; }
echo "export OS_CLIENT_CONFIG_FILE=$STATE/clouds.yaml"
echo "export PLINTH_OS_TEST_CLOUD=peers-openstack"
echo "export PLINTH_OS_TEST_MYSQL_SOCKET=$RUN/mysqld.sock"
echo "export PLINTH_OS_TEST_AUTH_URL=$KEYSTONE_URL/v3"
echo "export PLINTH_OS_TEST_PASSWORD=$ADMIN_PASSWORD"
