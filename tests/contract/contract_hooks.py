"""schemathesis hooks of the contract test (loaded through SCHEMATHESIS_HOOKS).

- Generated site domains are short and repeat ("a", "a.a"), and a domain is
  taken once: most generated sites would be a 409 SITE_EXISTS, and the
  stateful phase would rarely get a new site to follow. Just before a site
  is created or edited, a well-formed domain gets a label of its own in
  front (`s17.a.a`), so it is new; anything else is sent as generated.
- In the stateful phase, generated Idempotency-Keys repeat across scenarios
  too, and a repeated key rightly replays the first answer: a member made
  and removed in one scenario would come back as "made" in the next, with
  an id that is gone. There, a well-formed key gets a suffix of its own, so
  each scenario makes what it follows; the generated phases send the keys
  as generated (and see replays).
- A check, `foreign_ids_not_found`: a request naming an id of the second
  tenant (its site, content, session, message, ticket or member, listed in
  CONTRACT_FOREIGN_IDS) never succeeds; such ids are always 404.
- A check, `member_role_forbidden`: in the MEMBER run (CONTRACT_ROLE), every
  change but a ticket's status is refused (MEMBER can read and change
  ticket status, nothing else).
"""

import itertools
import os
import re
from collections.abc import MutableMapping

import schemathesis

HOST = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,240}$")
SITE_WRITES = {"POST /api/v1/sites", "PATCH /api/v1/sites/{siteId}"}
counter = itertools.count(1)


def phase_of(case):
    meta = getattr(case, "_meta", None)
    return str(meta.phase.name) if meta is not None else None


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = context.operation
    if operation is None:
        return
    headers = case.headers
    if phase_of(case) == "stateful" and isinstance(headers, MutableMapping):
        key = headers.get("Idempotency-Key")
        if isinstance(key, str) and IDEMPOTENCY_KEY.match(key):
            headers["Idempotency-Key"] = f"{key}-{next(counter)}"
    if operation.label not in SITE_WRITES:
        return
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("domain"), str):
        return
    domain = body["domain"]
    unique = f"s{next(counter)}.{domain}"
    if HOST.match(domain) and len(unique) <= 253:
        body["domain"] = unique


FOREIGN_IDS = frozenset(filter(None, os.environ.get("CONTRACT_FOREIGN_IDS", "").split(",")))


@schemathesis.check
def foreign_ids_not_found(ctx, response, case):
    """Another tenant's ids are never found (a 2xx answer to one leaks it)."""
    if not FOREIGN_IDS or response.status_code >= 300:
        return None
    named = {str(value) for value in (case.path_parameters or {}).values()} & FOREIGN_IDS
    if named:
        raise AssertionError(
            f"{case.method} {case.formatted_path} answered {response.status_code} "
            f"for another tenant's id {sorted(named)[0]}; it must be a 404"
        )
    return None


# Dashboard operations a MEMBER may not use (api.md: MEMBER can read and
# change ticket status; MANAGER and stronger roles edit the rest).
FORBIDDEN_FOR_MEMBER = frozenset(
    {
        "POST /api/v1/members",
        "DELETE /api/v1/members/{memberId}",
        "POST /api/v1/sites",
        "PATCH /api/v1/sites/{siteId}",
        "DELETE /api/v1/sites/{siteId}",
        "POST /api/v1/sites/{siteId}/api-key",
        "PUT /api/v1/sites/{siteId}/mapping",
        "POST /api/v1/sites/{siteId}/identity-secret",
        "PUT /api/v1/sites/{siteId}/widget",
        "POST /api/v1/sites/{siteId}/widget/publish",
        "POST /api/v1/sites/{siteId}/widget/pause",
        "POST /api/v1/sites/{siteId}/content",
        "PATCH /api/v1/sites/{siteId}/content/{contentId}",
    }
)


@schemathesis.check
def member_role_forbidden(ctx, response, case):
    """A MEMBER's token never changes sites, widgets, content or members."""
    if os.environ.get("CONTRACT_ROLE") != "MEMBER" or response.status_code >= 300:
        return None
    if case.operation.label in FORBIDDEN_FOR_MEMBER:
        raise AssertionError(
            f"{case.method} {case.formatted_path} answered {response.status_code} "
            "to a MEMBER; it must be a 403"
        )
    return None
