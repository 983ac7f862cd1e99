#!/usr/bin/env python3
"""Issue 11's mirror figure, measured in one run: for a repository with a few
hundred MB of history, an execution's preparation with a cold mirror (the
first execution on the repository) and with a warm one (the next), against a
plain `git clone` of the same repository. Goal: warm <= 0.10x a plain clone.

Preparation is read from agentd's own event timestamps: from the first event
(status `preparing`) to the driver's "agent started" (the workspace ready,
before the agent CLI itself starts): the mirror fetched, the container
started, the workspace ready. The repository is large enough for a checkout
template (agentd's default: 64 MiB of packs), so the cold execution builds
one (checked out once in a sandbox of its own) and the warm one is layered
over it: only the clone's git folder is made (`--shared`, no object copied).
The part up to status `running` (host side: mirror, template, volume,
container) is printed too, and the part up to the agent CLI's init event
(`session_started`: its own start added).
The plain clone is
`git clone --no-local file://…` (what a clone over the network does: the whole
pack travels, then the checkout), timed around the command.

Usage: bench_mirror.py AGENTD IMAGE [REPOSITORY] [RUNS]
Without REPOSITORY one is generated: 20,000 commits over 20,000 files in 200
folders, each commit writing one file of 4-12 KiB of random bytes (~170 MB).
"""

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

from bench_run import stamp

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.join(HERE, "..", "examples", "scenarios", "ends-at-once.json")


def generate(path, commits=20_000, folders=200, per_folder=100):
    """A repository with `commits` commits, written through git fast-import."""
    subprocess.run(["git", "init", "--quiet", "-b", "main", path], check=True)
    importer = subprocess.Popen(["git", "-C", path, "fast-import", "--quiet"],
                                stdin=subprocess.PIPE)
    out = importer.stdin
    rng = random.Random(11)
    when = 1_700_000_000
    for n in range(commits):
        folder, name = rng.randrange(folders), rng.randrange(per_folder)
        data = os.urandom(rng.randrange(4096, 12288))
        message = f"change {n}\n".encode()
        out.write(b"commit refs/heads/main\n")
        out.write(f"committer bench <bench@localhost> {when + n} +0000\n".encode())
        out.write(b"data %d\n%s" % (len(message), message))
        out.write(f"M 644 inline d{folder:03}/f{name:03}.bin\n".encode())
        out.write(b"data %d\n%s\n" % (len(data), data))
    out.close()
    if importer.wait() != 0:
        sys.exit("git fast-import failed")
    subprocess.run(["git", "-C", path, "checkout", "--quiet", "main"], check=True)


def size_mb(path):
    total = 0
    for root, _, files in os.walk(os.path.join(path, ".git", "objects")):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total / 1e6


def plain_clone(url, scratch):
    dest = tempfile.mkdtemp(prefix="clone", dir=scratch)
    started = time.monotonic()
    subprocess.run(["git", "clone", "--quiet", "--no-local", url, os.path.join(dest, "r")],
                   check=True)
    took = time.monotonic() - started
    subprocess.run(["rm", "-rf", dest], check=True)
    return took


def preparation(agentd, image, url, env):
    out = subprocess.run(
        [agentd, "run", "--repo", url, "--prompt", "say hello", "--image", image,
         "--scripted-model", SCENARIO, "--json", "--workspace-size", "4g"],
        capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        sys.exit(f"agentd run failed ({out.returncode}):\n{out.stderr}")
    summary = json.loads(out.stdout)
    events = [json.loads(line) for line in open(summary["events_path"])]
    first = stamp(events[0]["at"])
    running = next(stamp(e["at"]) for e in events
                   if e.get("type") == "status" and e.get("status") == "running")
    ready = next(stamp(e["at"]) for e in events if e.get("type") == "session_started")
    agent = next(stamp(e["at"]) for e in events
                 if e.get("type") == "progress" and e.get("message") == "agent started")
    if not any(e.get("type") == "progress"
               and e.get("message", "").startswith("starting from the checkout template")
               for e in events):
        print("note: this execution was not layered over a checkout template", file=sys.stderr)
    return ((ready - first).total_seconds(), (running - first).total_seconds(),
            (agent - first).total_seconds())


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    agentd, image = sys.argv[1:3]
    given = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    with tempfile.TemporaryDirectory(prefix="benchmirror", dir="/tmp") as scratch:
        repo = given or os.path.join(scratch, "history")
        if not given:
            started = time.monotonic()
            generate(repo)
            print(f"generated {repo}: {size_mb(repo):.0f} MB of objects "
                  f"in {time.monotonic() - started:.0f} s")
        url = "file://" + os.path.abspath(repo)
        clones = [plain_clone(url, scratch) for _ in range(runs)]
        colds, warms = [], []
        for n in range(runs):
            env = dict(os.environ, AGENTD_DATA_DIR=f"{scratch}/data{n}",
                       AGENTD_RUN_DIR=f"{scratch}/run{n}", NO_COLOR="1")
            env.pop("ANTHROPIC_API_KEY", None)
            colds.append(preparation(agentd, image, url, env))
            warms.append(preparation(agentd, image, url, env))
        clone = statistics.median(clones)
        cold, cold_host, cold_agent = (statistics.median(v) for v in zip(*colds))
        warm, warm_host, warm_agent = (statistics.median(v) for v in zip(*warms))
        print(f"runs: {runs}; medians")
        print(f"plain git clone --no-local: {clone:6.2f} s")
        print(f"cold mirror: workspace ready {cold_agent:5.2f} s  ratio {cold_agent / clone:.2f}x"
              f"   (host side {cold_host:.2f} s; agent CLI's init {cold:.2f} s,"
              f" {cold / clone:.2f}x)")
        print(f"warm mirror: workspace ready {warm_agent:5.2f} s  ratio {warm_agent / clone:.3f}x"
              f" (goal <= 0.10x)   (host side {warm_host:.2f} s; agent CLI's init {warm:.2f} s,"
              f" {warm / clone:.2f}x)")


if __name__ == "__main__":
    main()
