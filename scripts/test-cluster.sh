#!/usr/bin/env bash
# npm run test:cluster: builds and starts the production Temporal server (scripts/cluster.sh), then runs
# the cluster suite and the end-to-end pipeline tests against it over mTLS. The cluster is stopped at the
# end unless OUTBOX_SYNC_CLUSTER_KEEP=1; extra arguments go to mocha (e.g. -g "frontend").
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/cluster.sh up
[ "${OUTBOX_SYNC_CLUSTER_KEEP:-}" = 1 ] || trap 'bash scripts/cluster.sh stop' EXIT

# The test stack reaches the server through TEMPORAL_TEST_*, and hands the TEMPORAL_* settings to the
# processes under test itself.
# shellcheck source=/dev/null
. .tools/cluster/env
export TEMPORAL_TEST_ADDRESS="$TEMPORAL_ADDRESS" TEMPORAL_TEST_NAMESPACE="$TEMPORAL_NAMESPACE"
export TEMPORAL_TEST_TLS_CA_FILE="$TEMPORAL_TLS_CA_FILE" TEMPORAL_TEST_TLS_CERT_FILE="$TEMPORAL_TLS_CERT_FILE"
export TEMPORAL_TEST_TLS_KEY_FILE="$TEMPORAL_TLS_KEY_FILE" TEMPORAL_TEST_TLS_SERVER_NAME="$TEMPORAL_TLS_SERVER_NAME"

npx mocha --no-config --require dist/test/hooks.js --timeout 600000 --reporter dist/test/support/reporter.js \
  dist/test/cluster/cluster.test.js dist/test/pipeline.test.js "$@"
