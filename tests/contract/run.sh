#!/usr/bin/env bash
# Contract test: schemathesis generates requests from chatdesk's own OpenAPI
# document and checks every answer: never a 500, only documented statuses,
# content types and headers, and bodies that match their schemas.
#
# Runs the debug binary against a fresh SQLite database on a free local
# port, seeds it (seed.py: an ENTERPRISE tenant with a member of each role,
# a mapped site with a published widget and content, a visitor's session
# with questions, votes and a ticket, spare sites and members, a second
# tenant), then runs schemathesis three times, each with its
# schemathesis.toml written by config.py from the seed, and the hooks and
# checks of contract_hooks.py:
#   MEMBER          every dashboard operation with the weakest role's token
#                   (403s);
#   OWNER           every operation: the owner's token on the dashboard, the
#                   seeded site key, Origin and session token on the SDK;
#   OWNER-stateful  the same credentials, the stateful phase alone, for a
#                   fixed time.
# Generated ids are mostly the seeded ones; the stateful phase follows the
# document's links (a new site to its widget and content, a visitor's new
# session to its questions, votes and ticket, a GET's ETag to If-Match).
# report.py prints, per operation, the 2xx and 4xx answers of the generated
# and the stateful phases, and fails when an operation never answered 2xx
# or the stateful phase never reached a session's messages, votes and
# tickets. Stops by itself (about 2 minutes on 2 cores) and cleans up.
#
# CONTRACT_EXAMPLES (default 25) sets the cases per operation of the OWNER
# run (the MEMBER run takes a third), CONTRACT_STATEFUL_SECONDS (default 45)
# the owner's stateful phase; CONTRACT_SEED makes a run repeatable;
# CONTRACT_REPORT_DIR keeps the NDJSON reports, the configurations, the
# seed, the document and the server's log.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

SCHEMATHESIS_VERSION=4.32.5
venv=$repo/target/contract-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "contract: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --quiet --bin chatdesk
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export DATABASE_URL="sqlite://$work/chatdesk.sqlite3"
export RUST_LOG=warn
./target/debug/chatdesk serve --bind "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 50); do
  curl -fs "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done

python3 tests/contract/seed.py "$base" "$repo/target/debug/chatdesk" >"$work/seed.json"
curl -fsS "$base/api/v1/openapi.json" >"$work/openapi.json"
# The second tenant's ids, which the check foreign_ids_not_found (in
# contract_hooks.py) never lets succeed.
export CONTRACT_FOREIGN_IDS
CONTRACT_FOREIGN_IDS=$(python3 -c 'import json, sys; print(",".join(json.load(open(sys.argv[1]))["other"].values()))' "$work/seed.json")
examples=${CONTRACT_EXAMPLES:-25}
stateful_seconds=${CONTRACT_STATEFUL_SECONDS:-45}
seed_args=()
[ -n "${CONTRACT_SEED:-}" ] && seed_args=(--seed "$CONTRACT_SEED")

# Every check but positive_data_acceptance: the document does not spell out
# every rule a valid request must follow (an opaque cursor, a fresh
# Idempotency-Key, a current If-Match, no control characters in text).
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_schema_conformance,response_headers_conformance
checks+=,negative_data_rejection,missing_required_header,ignored_auth
checks+=,use_after_free,ensure_resource_availability
checks+=,unsupported_method,allow_header_conformance
checks+=,foreign_ids_not_found,member_role_forbidden

# run NAME ROLE MAX_EXAMPLES [schemathesis options…]
run() {
  local name=$1 role=$2 max=$3
  shift 3
  python3 tests/contract/config.py "$work/seed.json" "$role" "$max" >"$work/$name.toml"
  echo "contract: $name"
  # In the work directory, so schemathesis's caches go away with it.
  (cd "$work" && PYTHONPATH="$repo/tests/contract" SCHEMATHESIS_HOOKS=contract_hooks CONTRACT_ROLE="$role" \
    "$venv/bin/schemathesis" --config-file "$work/$name.toml" run "$base/api/v1/openapi.json" \
    --checks "$checks" \
    --max-response-time 5 \
    --generation-database none \
    --report ndjson --report-ndjson-path "$work/$name.ndjson" \
    --no-color "${seed_args[@]}" "$@")
}

status=0
run MEMBER MEMBER $(((examples + 2) / 3)) --exclude-tag sdk --exclude-tag operations || status=1
run OWNER OWNER "$examples" --phases examples,coverage,fuzzing || status=1
# Schemathesis ends a stateful pass after a few dozen scenarios; with a
# time budget it starts new ones until the budget is spent.
run OWNER-stateful OWNER "$examples" --phases stateful --max-time "$stateful_seconds" || status=1
python3 tests/contract/report.py "$work/openapi.json" "$work"/MEMBER.ndjson "$work"/OWNER*.ndjson \
  --require-stateful openChatSession,askChatQuestion,voteOnChatMessage,listChatMessages,openSupportTicket,getConversation,exportConversation,getTicket,updateTicket,createSite,createContent \
  || status=1
if [ -n "${CONTRACT_REPORT_DIR:-}" ]; then
  mkdir -p "$CONTRACT_REPORT_DIR"
  cp "$work"/*.ndjson "$work"/*.toml "$work/seed.json" "$work/openapi.json" "$work/server.log" "$CONTRACT_REPORT_DIR/"
fi
if [ "$status" -ne 0 ]; then
  echo "contract: FAILED (server log: last lines)"
  tail -n 20 "$work/server.log"
fi
exit "$status"
