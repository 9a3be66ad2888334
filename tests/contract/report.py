#!/usr/bin/env python3
"""Summarises schemathesis NDJSON reports: per operation, the responses by
status class in the generated phases (examples, coverage, fuzzing) and in
the stateful phase, then the number of cases and of operations covered.

Usage: report.py OPENAPI_JSON REPORT.ndjson... [--require-stateful OP,...]

Fails (exit 1) when an operation of the document was never called, when an
operation never answered 2xx in any run, or when an operation named in
--require-stateful never answered 2xx in the stateful phase (the stateful
phase must reach real sessions, messages and tickets through the links).
"""

import collections
import json
import re
import sys
import urllib.parse

args = sys.argv[1:]
required_stateful = []
if "--require-stateful" in args:
    at = args.index("--require-stateful")
    required_stateful = args[at + 1].split(",")
    del args[at:at + 2]
doc_path, reports = args[0], args[1:]
doc = json.load(open(doc_path))

operations = []  # (method, regex, label, operationId)
for path, item in doc["paths"].items():
    pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"
    for method, op in item.items():
        if method in ("get", "put", "post", "patch", "delete"):
            operations.append((method.upper(), re.compile(pattern), f"{method.upper()} {path}",
                               op.get("operationId", "?")))


def operation_of(method, uri):
    path = urllib.parse.urlsplit(uri).path
    for m, regex, label, op_id in operations:
        if m == method and regex.match(path):
            return label, op_id
    return None, None


# label -> phase kind -> status class -> count
seen = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
cases = 0
for report in reports:
    for line in open(report):
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        phase = "stateful" if finished["phase"] == "stateful" else "generated"
        recorder = finished["recorder"]
        cases += len(recorder.get("cases", {}))
        for interaction in recorder.get("interactions", {}).values():
            request, response = interaction["request"], interaction.get("response")
            if not response:
                continue
            label, _ = operation_of(request["method"], request["uri"])
            if label is None:
                continue
            seen[label][phase][f"{response['status_code'] // 100}xx"] += 1
            seen[label][phase][str(response["status_code"])] += 1

print(f"{'operation':<62} {'generated 2xx/4xx':>18} {'stateful 2xx/4xx':>17}")
failures = []
for _, _, label, op_id in operations:
    if label == "GET /api/v1/openapi.json":
        # The document itself: schemathesis loads it, it tests it not.
        seen[label]["generated"]["2xx"] += 1
    generated, stateful = seen[label]["generated"], seen[label]["stateful"]
    print(f"{label:<62} {generated['2xx']:>9}/{generated['4xx']:<8} {stateful['2xx']:>8}/{stateful['4xx']:<8}")
    if not generated and not stateful:
        failures.append(f"{label} was never called")
    elif generated["2xx"] + stateful["2xx"] == 0:
        failures.append(f"{label} never answered 2xx")
    if op_id in required_stateful and stateful["2xx"] == 0:
        failures.append(f"{label} never answered 2xx in the stateful phase")
    if generated["5xx"] + stateful["5xx"]:
        failures.append(f"{label} answered 5xx")

called = sum(1 for _, _, label, _ in operations if seen[label]["generated"] or seen[label]["stateful"])
succeeded = sum(1 for _, _, label, _ in operations
                if seen[label]["generated"]["2xx"] + seen[label]["stateful"]["2xx"])
print(f"contract: {cases} generated cases; {called} of {len(operations)} operations called, "
      f"{succeeded} answered 2xx")
for failure in failures:
    print(f"contract: {failure}")
sys.exit(1 if failures else 0)
