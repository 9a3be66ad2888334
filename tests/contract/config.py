#!/usr/bin/env python3
"""Writes the schemathesis.toml of one contract run from the seed's JSON.

Usage: config.py SEED_JSON ROLE MAX_EXAMPLES > schemathesis.toml

ROLE is OWNER (every operation: the owner's token on the dashboard, the
seeded site key, Origin and session token on the SDK) or MEMBER (the
dashboard with the weakest role's token, so the role checks' 403s are
reached). Generated ids are, most of the time, one of the seeded ids (so
requests reach real sites, content, sessions, messages and tickets) and
otherwise generated (unknown ids) or another tenant's (404 either way).
Operations that change what the others need (deleting or editing a site,
re-keying it, remapping it, editing or pausing its widget, turning on
identity verification, removing a member) get spare sites and members
only.
"""

import json
import sys

seed = json.load(open(sys.argv[1]))
role = sys.argv[2]
examples = int(sys.argv[3])
other = seed["other"]


def toml_str(value):
    return json.dumps(value)


def dictionary(name, values):
    return f"[dictionaries.{name}]\nvalues = [{', '.join(toml_str(v) for v in values)}]\n"


out = []
out.append(dictionary("siteId", [seed["siteId"]] * 6 + [other["siteId"]]))
out.append(dictionary("spareSiteId", seed["spareSiteIds"] + [other["siteId"]]))
out.append(dictionary("deletableSiteId", seed["deletableSiteIds"] + [other["siteId"]]))
out.append(dictionary("contentId", seed["contentIds"] * 3 + [other["contentId"]]))
out.append(dictionary("sessionId", [seed["sessionId"]] * 6 + [other["sessionId"]]))
out.append(dictionary("messageId", seed["votableMessageIds"] * 4 + seed["userMessageIds"] + [other["messageId"]]))
out.append(dictionary("ticketId", [seed["ticketId"]] * 6 + [other["ticketId"]]))
out.append(dictionary("spareMemberId", seed["spareMemberIds"] + [other["memberId"]]))
out.append(dictionary("sessionToken", [seed["sessionToken"]]))
out.append(dictionary("origin", [seed["origin"]] * 3 + ["https://www.contract.test", "https://elsewhere.test"]))

token = seed["tokens"][role]
out.append(f"""
[auth.openapi.bearer]
bearer = {toml_str(token)}

[auth.openapi.siteKey]
api_key = {toml_str(seed["siteKey"])}

[parameters]
"path.siteId" = {{ dictionary = "siteId", probability = 0.9 }}
"path.contentId" = {{ dictionary = "contentId", probability = 0.9 }}
"path.sessionId" = {{ dictionary = "sessionId", probability = 0.9 }}
"path.messageId" = {{ dictionary = "messageId", probability = 0.9 }}
"path.ticketId" = {{ dictionary = "ticketId", probability = 0.9 }}
"header.X-Chatdesk-Session" = {{ dictionary = "sessionToken", probability = 0.9 }}
"header.Origin" = {{ dictionary = "origin", probability = 0.9 }}
""")

# MAX_EXAMPLES cases per operation in the generated phases. The stateful
# phase walks the document's own links (none guessed) with valid requests,
# so each step reaches what the previous one made, in more scenarios for
# the owner (whose roots succeed) than for a MEMBER.
out.append(f"""
[generation]
max-examples = {examples}

[phases.stateful.generation]
mode = "positive"
max-examples = {examples * 8 if role == "OWNER" else examples * 2}

[phases.stateful.inference]
algorithms = []
""")

# Their site ids come from these dictionaries only, never from the ids
# other operations' responses carried (which include the seeded site's).
for operation_id, parameter, ids in (
        ("deleteSite", "siteId", "deletableSiteId"), ("updateSite", "siteId", "spareSiteId"),
        ("regenerateSiteApiKey", "siteId", "spareSiteId"), ("setSiteMapping", "siteId", "spareSiteId"),
        ("saveWidget", "siteId", "spareSiteId"), ("pauseWidget", "siteId", "spareSiteId"),
        ("issueIdentitySecret", "siteId", "spareSiteId"), ("removeMember", "memberId", "spareMemberId")):
    out.append(f"""
[[operations]]
include-operation-id = "{operation_id}"
parameters = {{ "path.{parameter}" = {{ dictionary = "{ids}", probability = 0.95 }} }}

[operations.phases.examples.extra-data-sources]
responses = false

[operations.phases.coverage.extra-data-sources]
responses = false

[operations.phases.fuzzing.extra-data-sources]
responses = false
""")

# The API reference page is Swagger UI's own service, which answers 404
# (not 405) to a method it does not serve.
out.append("""
[[operations]]
include-operation-id = "getApiReference"

[operations.phases.coverage]
unexpected-methods = []
""")

print("\n".join(out))
