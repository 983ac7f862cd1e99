#!/usr/bin/env python3
"""Issue 13's figure, measured in one run on one `agentd serve`: the time from
a follow-up's submission to its first model request, against a fresh
execution's (goal: at most 1.2x). A request's arrival is its `model_call`
event's time less its duration, as agentd's gateway measured it; submission
is taken just before the POST. Each round submits a fresh execution, waits for
it, then follows it up; medians over the rounds.

Usage: bench_follow_up.py AGENTD IMAGE SAMPLE_REPO [RUNS]
"""

import datetime
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

from served import http, serve

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.join(HERE, "..", "examples", "scenarios", "ends-at-once.json")


def wait(url, id_, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = http("GET", f"{url}/v1/executions/{id_}")
        if execution["status"] not in ("queued", "preparing", "running", "collecting"):
            if execution["status"] != "succeeded":
                sys.exit(f"execution {id_} ended {execution['status']}: {execution.get('reason')}")
            return execution
        time.sleep(0.1)
    sys.exit(f"execution {id_} did not finish")


def first_request(url, id_):
    """Seconds since the epoch at which the execution's first model request
    reached agentd's gateway."""
    with urllib.request.urlopen(f"{url}/v1/executions/{id_}/events", timeout=60) as stream:
        lines = stream.read().decode().splitlines()
    events = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    for event in events:
        if event.get("type") == "model_call":
            at = datetime.datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
            return at.timestamp() - event["duration_ms"] / 1000
    sys.exit(f"execution {id_} made no model request")


def timed(url, path, body):
    submitted = time.time()
    id_ = http("POST", f"{url}{path}", body)["id"]
    execution = wait(url, id_)
    return id_, first_request(url, id_) - submitted, execution


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    agentd, image, repo = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    fresh, follow = [], []
    with tempfile.TemporaryDirectory(prefix="bf", dir="/tmp") as scratch:
        process, url = serve(agentd, scratch, ["--image", image, "--scripted-model", SCENARIO,
                                               "--database-url", f"sqlite://{scratch}/agentd.db"])
        try:
            warm, _, _ = timed(url, "/v1/executions", {"repo": repo, "prompt": "warm up"})
            timed(url, f"/v1/executions/{warm}/follow-ups", {"prompt": "warm up again"})
            for _ in range(runs):
                parent, seconds, _ = timed(url, "/v1/executions", {"repo": repo, "prompt": "say hello"})
                fresh.append(seconds)
                child, seconds, execution = timed(
                    url, f"/v1/executions/{parent}/follow-ups", {"prompt": "and goodbye"})
                if execution["parent_id"] != parent:
                    sys.exit(f"follow-up {child} does not name its parent")
                follow.append(seconds)
        finally:
            process.terminate()
            process.wait(timeout=30)
    f, c = statistics.median(fresh), statistics.median(follow)
    print(f"submission to first model request, medians of {runs}: "
          f"fresh {f:.2f} s, follow-up {c:.2f} s")
    print(f"  fresh: {', '.join(f'{s:.2f}' for s in fresh)}")
    print(f"  follow-up: {', '.join(f'{s:.2f}' for s in follow)}")
    print(f"ratio follow-up / fresh: {c / f:.2f}x (goal <= 1.2x)")


if __name__ == "__main__":
    main()
