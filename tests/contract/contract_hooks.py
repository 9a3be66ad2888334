"""schemathesis hooks of the contract test (loaded through SCHEMATHESIS_HOOKS).

Generated site domains are short and repeat ("a", "a.a"), and a domain is
taken once: most generated sites would be a 409 SITE_EXISTS, and the
stateful phase would rarely get a new site to follow. Just before a site is
created or edited, a well-formed domain gets a label of its own in front
(`s17.a.a`), so it is new; anything else is sent as generated.
"""

import itertools
import re

import schemathesis

HOST = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
SITE_WRITES = {"POST /api/v1/sites", "PATCH /api/v1/sites/{siteId}"}
counter = itertools.count(1)


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = context.operation
    if operation is None or operation.label not in SITE_WRITES:
        return
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("domain"), str):
        return
    domain = body["domain"]
    unique = f"s{next(counter)}.{domain}"
    if HOST.match(domain) and len(unique) <= 253:
        body["domain"] = unique
