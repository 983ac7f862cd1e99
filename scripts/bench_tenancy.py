#!/usr/bin/env python3
"""The cost of authentication (issue 9), measured in one run.

GET /v1/executions/{id} under wrk on loopback, on the same SQLite-backed
`agentd serve`: once in the loopback mode without keys (every request is the
local operator, as before tenancy), once with an admin credential and a
tenant's key sent as `Authorization: Bearer` (hash lookup, expiry, tenant
check, last use). Prints both and their ratio (goal >= 0.9).

Usage: bench_tenancy.py AGENTD IMAGE SAMPLE_REPO
"""

import os
import re
import subprocess
import sys
import tempfile
import time

from served import http, serve

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.join(HERE, "..", "examples", "scenarios", "ends-at-once.json")
ADMIN = "bench-admin-credential-0123456789abcdef"


def start(agentd, image, scratch, admin):
    args = ["--image", image, "--scripted-model", SCENARIO]
    if admin:
        with open(f"{scratch}/admin-token", "w") as f:
            f.write(ADMIN)
        args += ["--admin-token-file", f"{scratch}/admin-token"]
    return serve(agentd, scratch, args)


def wait(url, id_, token):
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = http("GET", f"{url}/v1/executions/{id_}", token=token)["status"]
        if status not in ("queued", "preparing", "running", "collecting"):
            return status
        time.sleep(0.2)
    sys.exit("the execution did not finish")


def wrk(url, token, seconds=10):
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", url]
    if token:
        args[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"wrk saw {errors.group(1)} error responses")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def prepare(agentd, image, repo, scratch, keyed):
    """A server with one finished execution: (process, url of the execution, token)."""
    process, url = start(agentd, image, scratch, keyed)
    token = None
    if keyed:
        http("POST", f"{url}/v1/admin/tenants", {"name": "bench"}, ADMIN)
        token = http("POST", f"{url}/v1/admin/tenants/bench/keys", {}, ADMIN)["key"]
        folder = os.path.dirname(repo.rstrip("/"))
        http("PUT", f"{url}/v1/admin/policy", {"sources": {"local_paths": [folder]}}, ADMIN)
    id_ = http("POST", f"{url}/v1/executions", {"repo": repo, "prompt": "hello"}, token)["id"]
    wait(url, id_, token)
    return process, f"{url}/v1/executions/{id_}", token


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    agentd, image, repo = sys.argv[1:4]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    with tempfile.TemporaryDirectory(prefix="bt", dir="/tmp") as a, \
            tempfile.TemporaryDirectory(prefix="bt", dir="/tmp") as b:
        local_process, local_url, _ = prepare(agentd, image, repo, a, keyed=False)
        keyed_process, keyed_url, token = prepare(agentd, image, repo, b, keyed=True)
        try:
            local, keyed = [], []
            # Interleaved, so what else the machine does weighs on both alike.
            for _ in range(rounds):
                local.append(wrk(local_url, None, seconds=5))
                keyed.append(wrk(keyed_url, token, seconds=5))
        finally:
            for process in (local_process, keyed_process):
                process.terminate()
                process.wait(timeout=30)
    local, keyed = median(local), median(keyed)
    print(f"GET /v1/executions/{{id}} without keys (loopback, as before tenancy): "
          f"{local:,.0f} requests/s (median of {rounds})")
    print(f"GET /v1/executions/{{id}} with a tenant's key: {keyed:,.0f} requests/s (median of {rounds})")
    print(f"ratio keyed/local: {keyed / local:.2f} (goal >= 0.9)")


if __name__ == "__main__":
    main()
