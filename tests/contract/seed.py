#!/usr/bin/env python3
"""Seeds a fresh chatdesk server for the contract test, through the CLI and
the HTTP API, and prints what it made as one JSON object on stdout.

Usage: seed.py BASE_URL CHATDESK_BINARY

What it makes:
- tenant "Contract" on ENTERPRISE with many credits, its OWNER (from the
  CLI) and an ADMIN, a MANAGER and a MEMBER (tokens), plus members that the
  fuzzer may remove;
- site contract.test: mapping COMPLETED, a published widget with a large
  rateLimitPerSession, a published Flow and Tooltip;
- a visitor session on it (site key, Origin https://contract.test, session
  token) with three questions, an UP and a DOWN vote and a support ticket;
- spare sites the fuzzer may delete, pause, re-key or remap;
- a second tenant with its own site, session and ticket, whose ids must be
  404 to the first tenant.
"""

import json
import subprocess
import sys
import urllib.error
import urllib.request

BASE, BINARY = sys.argv[1], sys.argv[2]
ORIGIN = "https://contract.test"


def cli(*args):
    out = subprocess.run([BINARY, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip().startswith("{") else out


def call(method, path, body=None, headers=None, expect=(200, 201, 204)):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    if status not in expect:
        sys.exit(f"seed: {method} {path} answered {status}: {raw[:500]!r}")
    return json.loads(raw) if raw else None


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def tenant(name, email):
    made = cli("tenant", "create", "--name", name, "--plan", "ENTERPRISE", "--owner-email", email)
    cli("tenant", "add-credits", made["tenantId"], "1000000")
    return made


def site(token, domain, name, published=True):
    created = call("POST", "/api/v1/sites", {"domain": domain, "name": name, "allowSubdomains": True},
                   bearer(token))
    site_id = created["site"]["id"]
    call("PUT", f"/api/v1/sites/{site_id}/mapping", {"status": "COMPLETED"}, bearer(token))
    call("PUT", f"/api/v1/sites/{site_id}/widget", {
        "welcomeMessage": "Hello from contract",
        "position": "BOTTOM_RIGHT",
        "supportEmail": "support@" + domain,
        "rateLimitPerSession": 1000,
    }, bearer(token))
    if published:
        call("POST", f"/api/v1/sites/{site_id}/widget/publish", None, bearer(token))
    return site_id, created["apiKey"]


def content(token, site_id, kind, name):
    return call("POST", f"/api/v1/sites/{site_id}/content", {
        "kind": kind, "name": name, "description": f"How to {name.lower()}",
        "status": "PUBLISHED", "audiences": ["Everyone"],
    }, bearer(token))["id"]


def visitor(site_key, domain, site_id, owner_token):
    """A session with two questions, an UP and a DOWN vote and a ticket."""
    sdk = {"X-Chatdesk-Site-Key": site_key, "Origin": f"https://{domain}"}
    opened = call("POST", "/api/v1/sdk/chat/sessions", {
        "anonymousId": "contract-visitor",
        "traits": {"email": "visitor@example.com", "plan": "pro"},
    }, sdk)
    session_id, token = opened["sessionId"], opened["sessionToken"]
    sdk["X-Chatdesk-Session"] = token
    asked = [call("POST", f"/api/v1/sdk/chat/sessions/{session_id}/messages",
                  {"content": question}, sdk)
             for question in ("How do I invite a teammate?", "Where is the billing page?",
                              "Can I invite a teammate as admin?")]
    up, down, unvoted = (a["assistantMessage"]["id"] for a in asked)
    call("PUT", f"/api/v1/sdk/chat/messages/{up}/feedback", {"vote": "UP"}, sdk)
    call("PUT", f"/api/v1/sdk/chat/messages/{down}/feedback", {"vote": "DOWN"}, sdk)
    ticket = call("POST", f"/api/v1/sdk/chat/sessions/{session_id}/tickets",
                  {"subject": "Billing", "body": "I cannot find the invoices."}, sdk)
    call("PATCH", f"/api/v1/sites/{site_id}/tickets/{ticket['id']}", {"status": "IN_PROGRESS"},
         bearer(owner_token))
    return {
        "sessionId": session_id,
        "sessionToken": token,
        "userMessageIds": [a["userMessage"]["id"] for a in asked],
        # The fuzzer votes on these; the DOWN vote stays, so tickets can be opened.
        "votableMessageIds": [up, unvoted],
        "downVotedMessageId": down,
        "ticketId": ticket["id"],
    }


def main():
    owner = tenant("Contract", "owner@contract.test")
    token = owner["token"]
    members = {}
    for role in ("ADMIN", "MANAGER", "MEMBER"):
        added = call("POST", "/api/v1/members", {"email": f"{role.lower()}@contract.test", "role": role},
                     bearer(token))
        members[role] = {"id": added["member"]["id"], "token": added["token"]}
    spare_members = [call("POST", "/api/v1/members", {"email": f"spare{i}@contract.test", "role": "MEMBER"},
                          bearer(token))["member"]["id"] for i in range(3)]

    site_id, site_key = site(token, "contract.test", "Contract")
    content_ids = [content(token, site_id, "FLOW", "Invite a teammate"),
                   content(token, site_id, "TOOLTIP", "Billing page"),
                   # Generated questions often hold a "0": those are answered
                   # by this Tooltip (an ASSISTANT message to vote on), the
                   # others by the notice that no model is configured.
                   content(token, site_id, "TOOLTIP", "0")]
    seen = visitor(site_key, "contract.test", site_id, token)
    spare_sites = [site(token, f"spare{i}.contract.test", f"Spare {i}", published=i % 2 == 0)[0]
                   for i in range(6)]

    other = tenant("Other", "owner@other.test")
    other_site, other_key = site(other["token"], "other.test", "Other")
    other_content = content(other["token"], other_site, "FLOW", "Invite a teammate")
    content(other["token"], other_site, "TOOLTIP", "Billing page")
    other_seen = visitor(other_key, "other.test", other_site, other["token"])

    print(json.dumps({
        "tenantId": owner["tenantId"],
        "ownerMemberId": owner["ownerMemberId"],
        "tokens": {"OWNER": token, **{role: m["token"] for role, m in members.items()}},
        "memberIds": [owner["ownerMemberId"], *(m["id"] for m in members.values())],
        "spareMemberIds": spare_members,
        "siteId": site_id,
        "siteKey": site_key,
        "origin": ORIGIN,
        "contentIds": content_ids,
        **seen,
        # Edited, re-keyed, remapped, paused and verified by the fuzzer…
        "spareSiteIds": spare_sites[:3],
        # … and deleted.
        "deletableSiteIds": spare_sites[3:],
        "other": {
            "siteId": other_site,
            "contentId": other_content,
            "sessionId": other_seen["sessionId"],
            "messageId": other_seen["downVotedMessageId"],
            "ticketId": other_seen["ticketId"],
            "memberId": other["ownerMemberId"],
        },
    }))


if __name__ == "__main__":
    main()
