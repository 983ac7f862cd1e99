#!/usr/bin/env python3
"""Figures for one execution's overhead (issue 2), measured side by side in one run.

1. Wall time of `agentd run` with a scenario that ends at once, against
   `docker run --rm` of the same image with the same hardening running `true`:
   medians over N runs each, interleaved, and their ratio.
2. Time from the start of `agentd run` to the CLI's `init` event (its
   session_started event), from agentd's own event timestamps, plus the time from
   the container start (status running) to that event.

Usage: bench_run.py AGENTD_BINARY IMAGE SAMPLE_REPO [RUNS]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

HARDENED = [
    "--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,exec,size=67108864,mode=1777",
    "--tmpfs", "/home/agent:rw,nosuid,nodev,exec,size=268435456,uid=10001,gid=10001,mode=0700",
    "--pids-limit", "256", "--memory", "2g", "--memory-swap", "2g", "--cpus", "1",
    "--init", "--user", "10001:10001", "--ulimit", "nofile=4096:4096", "--ipc", "private",
]


def stamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def agentd_once(agentd, image, repo, scenario, env):
    started = time.monotonic()
    out = subprocess.run(
        [agentd, "run", "--repo", repo, "--prompt", "say hello", "--image", image,
         "--scripted-model", scenario, "--json"],
        capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - started
    if out.returncode != 0:
        sys.exit(f"agentd run failed ({out.returncode}):\n{out.stderr}")
    summary = json.loads(out.stdout)
    events = [json.loads(line) for line in open(summary["events_path"])]
    first = stamp(events[0]["at"])
    running = next(stamp(e["at"]) for e in events
                   if e.get("type") == "status" and e.get("status") == "running")
    init = next(stamp(e["at"]) for e in events if e.get("type") == "session_started")
    return wall, (init - first).total_seconds(), (init - running).total_seconds()


def docker_once(image):
    started = time.monotonic()
    subprocess.run(["docker", "run", "--rm", *HARDENED, image, "true"],
                   check=True, capture_output=True)
    return time.monotonic() - started


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    agentd, image, repo = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 9
    scenario = os.path.join(os.path.dirname(__file__), "..", "examples", "scenarios",
                            "ends-at-once.json")
    with tempfile.TemporaryDirectory(prefix="bench", dir="/tmp") as scratch:
        env = dict(os.environ, AGENTD_DATA_DIR=f"{scratch}/data", AGENTD_RUN_DIR=f"{scratch}/run",
                   NO_COLOR="1")
        env.pop("ANTHROPIC_API_KEY", None)
        # Warm-up: the mirror clone, page cache, image layers.
        agentd_once(agentd, image, repo, scenario, env)
        docker_once(image)
        agentd_walls, to_init, running_to_init, docker_walls = [], [], [], []
        for _ in range(runs):
            wall, init, after_start = agentd_once(agentd, image, repo, scenario, env)
            agentd_walls.append(wall)
            to_init.append(init)
            running_to_init.append(after_start)
            docker_walls.append(docker_once(image))
    a = statistics.median(agentd_walls)
    d = statistics.median(docker_walls)
    print(f"runs: {runs} each, interleaved, image {image}")
    print(f"agentd run (scenario that ends at once), median wall: {a * 1000:7.0f} ms"
          f"  (min {min(agentd_walls) * 1000:.0f}, max {max(agentd_walls) * 1000:.0f})")
    print(f"docker run --rm (same image and hardening) true, median: {d * 1000:7.0f} ms"
          f"  (min {min(docker_walls) * 1000:.0f}, max {max(docker_walls) * 1000:.0f})")
    print(f"ratio agentd run / docker run --rm true: {a / d:.2f}x")
    print(f"start of agentd run -> CLI init event, median: {statistics.median(to_init) * 1000:.0f} ms")
    print(f"container running -> CLI init event, median: {statistics.median(running_to_init) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
