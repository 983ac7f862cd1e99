#!/usr/bin/env python3
"""Issue 11's delivery figure: an execution with `--push` against the same
execution without, on a local bare remote, measured side by side.

Each run is `agentd run` with a scenario that writes one file (so there is
a branch to deliver), alternately with and without `--push` (and, in a
third series, with `--push --merge-into integration`). Prints the median
wall time of each, their ratios, and the delivery's own part (from the
"delivering" progress event to the one that reports it) so the overhead
is not only a difference of two noisy medians.

Usage: bench_delivery.py AGENTD_BINARY IMAGE [RUNS]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench_run import stamp

SCENARIO = {
    "model": "claude-sonnet-4-5",
    "turns": [
        {"content": [
            {"type": "tool_use", "name": "Write", "input": {
                "file_path": "/workspace/repo/notes/delivered.txt",
                "content": "delivered by the benchmark\n"}}],
         "usage": {"input_tokens": 10, "output_tokens": 5}},
        {"content": [{"type": "text", "text": "Wrote notes/delivered.txt."}],
         "usage": {"input_tokens": 10, "output_tokens": 5}},
    ],
}


def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b",
                            GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b"))


def make_remote(scratch):
    seed = os.path.join(scratch, "seed")
    os.makedirs(seed)
    git("init", "-q", "-b", "main", cwd=seed)
    for n in range(200):
        with open(os.path.join(seed, f"file{n}.txt"), "w") as f:
            f.write(f"line {n}\n" * 20)
    git("add", ".", cwd=seed)
    git("commit", "-qm", "base", cwd=seed)
    remote = os.path.join(scratch, "remote.git")
    git("clone", "-q", "--bare", seed, remote)
    git("branch", "integration", "main", cwd=remote)
    return remote


def once(agentd, image, remote, scenario, env, extra):
    started = time.monotonic()
    out = subprocess.run(
        [agentd, "run", "--repo", remote, "--prompt", "write a note", "--image", image,
         "--scripted-model", scenario, "--json", *extra],
        capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - started
    if out.returncode != 0:
        sys.exit(f"agentd run failed ({out.returncode}):\n{out.stderr}")
    summary = json.loads(out.stdout)
    part = 0.0
    if extra:
        delivery = summary.get("delivery") or {}
        if delivery.get("status") not in ("pushed", "merged"):
            sys.exit(f"delivery did not land: {delivery}")
        events = [json.loads(line) for line in open(summary["events_path"])]
        messages = [(stamp(e["at"]), e.get("message", "")) for e in events
                    if e.get("type") in ("progress", "warning")]
        begin = next(at for at, m in messages if m.startswith("delivering branch"))
        end = next(at for at, m in messages if m.startswith("delivery "))
        part = (end - begin).total_seconds()
    return wall, part


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    agentd, image = sys.argv[1:3]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    with tempfile.TemporaryDirectory(prefix="bench", dir="/tmp") as scratch:
        scenario = os.path.join(scratch, "scenario.json")
        with open(scenario, "w") as f:
            json.dump(SCENARIO, f)
        remote = make_remote(scratch)
        env = dict(os.environ, AGENTD_DATA_DIR=f"{scratch}/data", AGENTD_RUN_DIR=f"{scratch}/run",
                   NO_COLOR="1")
        env.pop("ANTHROPIC_API_KEY", None)
        once(agentd, image, remote, scenario, env, [])  # warm-up: mirror, caches
        series = {"without": ([], []), "push": ([], []), "merge": ([], [])}
        flags = {"without": [], "push": ["--push"],
                 "merge": ["--push", "--merge-into", "integration"]}
        for _ in range(runs):
            for name, extra in flags.items():
                wall, part = once(agentd, image, remote, scenario, env, extra)
                series[name][0].append(wall)
                series[name][1].append(part)
    base = statistics.median(series["without"][0])
    print(f"runs: {runs} of each, interleaved, image {image}, local bare remote")
    print(f"agentd run (writes one file), no delivery, median wall: {base * 1000:7.0f} ms")
    for name, label in (("push", "--push"), ("merge", "--push --merge-into integration")):
        walls, parts = series[name]
        wall = statistics.median(walls)
        print(f"agentd run {label}, median wall: {wall * 1000:7.0f} ms"
              f"  (delivery itself, median {statistics.median(parts) * 1000:.0f} ms)")
        print(f"ratio {label} / no delivery: {wall / base:.2f}x")


if __name__ == "__main__":
    main()
