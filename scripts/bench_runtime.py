#!/usr/bin/env python3
"""What the gVisor sandbox costs (issue 7), measured side by side in one run.

The demo scenario (examples/scenarios/demo.json: the real CLI reads, writes and
edits files over four model turns) run by `agentd run`, with the sandbox under
the engine's default runtime and under gVisor, interleaved: medians of the wall
time, their ratio, and where the time goes (start of the run to the CLI's
`init` event, and the sandbox's running phase).

Usage: bench_runtime.py AGENTD_BINARY IMAGE SAMPLE_REPO [RUNS] [GVISOR_RUNTIME]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime


def stamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def once(agentd, image, repo, scenario, env, runtime):
    argv = [agentd, "run", "--repo", repo, "--prompt", "add a greeting", "--image", image,
            "--scripted-model", scenario, "--json"]
    if runtime:
        argv += ["--runtime", runtime]
    started = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - started
    if out.returncode != 0:
        sys.exit(f"agentd run ({runtime or 'default runtime'}) failed ({out.returncode}):\n"
                 f"{out.stderr}")
    summary = json.loads(out.stdout)
    if summary["files_changed"] != [{"path": "GREETING.md", "change": "A"},
                                    {"path": "README.md", "change": "M"}]:
        sys.exit(f"unexpected result under {runtime or 'the default runtime'}: {summary}")
    events = [json.loads(line) for line in open(summary["events_path"])]
    first = stamp(events[0]["at"])

    def status_at(name):
        return next(stamp(e["at"]) for e in events
                    if e.get("type") == "status" and e.get("status") == name)

    init = next(stamp(e["at"]) for e in events if e.get("type") == "session_started")
    running = (status_at("collecting") - status_at("running")).total_seconds()
    return wall, (init - first).total_seconds(), running


def line(label, values):
    return (f"{label}: median {statistics.median(values) * 1000:6.0f} ms"
            f"  (min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f})")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    agentd, image, repo = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 7
    gvisor = sys.argv[5] if len(sys.argv) > 5 else "runsc"
    scenario = os.path.join(os.path.dirname(__file__), "..", "examples", "scenarios", "demo.json")
    runtimes = [None, gvisor]
    results = {runtime: ([], [], []) for runtime in runtimes}
    with tempfile.TemporaryDirectory(prefix="bench", dir="/tmp") as scratch:
        env = dict(os.environ, AGENTD_DATA_DIR=f"{scratch}/data", AGENTD_RUN_DIR=f"{scratch}/run",
                   NO_COLOR="1")
        for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTD_RUNTIME"):
            env.pop(name, None)
        for runtime in runtimes:  # warm-up: the mirror clone, page cache, image layers
            once(agentd, image, repo, scenario, env, runtime)
        for _ in range(runs):
            for runtime in runtimes:
                for store, value in zip(results[runtime],
                                        once(agentd, image, repo, scenario, env, runtime)):
                    store.append(value)
    print(f"runs: {runs} each, interleaved, demo scenario, image {image}")
    for runtime in runtimes:
        label = f"--runtime {runtime} (gVisor)" if runtime else "engine default (runc)"
        walls, to_init, running = results[runtime]
        print(line(f"{label:30} wall", walls))
        print(line(f"{label:30} start -> CLI init", to_init))
        print(line(f"{label:30} sandbox running", running))
    for index, figure in enumerate(("wall", "start -> CLI init", "sandbox running")):
        ratio = statistics.median(results[gvisor][index]) / statistics.median(results[None][index])
        print(f"ratio gVisor / runc, median {figure}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
