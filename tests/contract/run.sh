#!/usr/bin/env bash
# Contract test: schemathesis generates requests from chatdesk's own OpenAPI
# document and checks every answer: never a 500, only documented statuses,
# content types and headers, and bodies that match their schemas. Runs the
# debug binary against a fresh SQLite database on a free local port, and
# stops by itself.
set -euo pipefail
cd "$(dirname "$0")/../.."

SCHEMATHESIS_VERSION=4.32.5
venv=target/contract-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "contract: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --quiet --bin chatdesk
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DATABASE_URL="sqlite://$work/chatdesk.sqlite3"
export RUST_LOG=warn
./target/debug/chatdesk serve --bind "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 50); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
token=$(./target/debug/chatdesk tenant create --name Contract --plan ENTERPRISE --owner-email owner@contract.test \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

"$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples "${CONTRACT_EXAMPLES:-50}" \
  --max-response-time 5 \
  --no-color
