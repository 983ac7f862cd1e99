#!/usr/bin/env python3
"""Figures for the supervisor (issue 3), measured in one run.

1. GET /v1/executions/{id} under load from wrk on loopback: requests per second
   and p99 latency, with SQLite and with PostgreSQL; and (issue 10) a page of 50
   executions against one execution's record on the same server.
2. Supervisor overhead: 50 executions of a scenario that ends at once, submitted
   together with a cap of 8: total wall time, agentd's own CPU time and peak RSS,
   against 50 `docker run --rm` of the same image and hardening, 8 at a time
   (wall time; CPU time of the docker CLI processes; peak RSS of one).

Usage: bench_service.py AGENTD IMAGE SAMPLE_REPO POSTGRES_URL [EXECUTIONS] [CAP]
"""

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from bench_run import HARDENED
from served import http, serve

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.join(HERE, "..", "examples", "scenarios", "ends-at-once.json")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, agentd, image, scratch, database_url, cap):
        self.process, self.url = serve(
            agentd, scratch, ["--image", image, "--scripted-model", SCENARIO,
                              "--max-concurrent", str(cap), "--database-url", database_url])

    def cpu_seconds(self):
        fields = open(f"/proc/{self.process.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def peak_rss_mib(self):
        for line in open(f"/proc/{self.process.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def submit(self, repo):
        return http("POST", f"{self.url}/v1/executions", {"repo": repo, "prompt": "say hello"})["id"]

    def wait(self, ids, timeout=900):
        deadline = time.monotonic() + timeout
        pending = set(ids)
        while pending:
            for id_ in list(pending):
                status = http("GET", f"{self.url}/v1/executions/{id_}")["status"]
                if status not in ("queued", "preparing", "running", "collecting"):
                    if status != "succeeded":
                        sys.exit(f"execution {id_} ended {status}")
                    pending.discard(id_)
            if time.monotonic() > deadline:
                sys.exit("executions did not finish")
            time.sleep(0.2)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def wrk(url, seconds=10):
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"wrk saw {errors.group(1)} error responses")
    return rps, p99_ms


def get_under_load(agentd, image, repo, database_url, label):
    with tempfile.TemporaryDirectory(prefix="bs", dir="/tmp") as scratch:
        server = Server(agentd, image, scratch, database_url, 8)
        try:
            id_ = server.submit(repo)
            server.wait([id_])
            rps, p99 = wrk(f"{server.url}/v1/executions/{id_}")
        finally:
            server.stop()
    print(f"GET /v1/executions/{{id}} ({label}): {rps:,.0f} requests/s, p99 {p99:.2f} ms")
    return rps, p99


def listing(server, one_id):
    """Issue 10: a page of 50 executions against one execution's record, on the
    same SQLite server holding 51 finished executions (goal: 5,000 pages/s)."""
    page = http("GET", f"{server.url}/v1/executions?limit=50")
    if len(page["items"]) != 50:
        sys.exit(f"expected a page of 50, got {len(page['items'])}")
    size = len(json.dumps(page))
    one_rps, _ = wrk(f"{server.url}/v1/executions/{one_id}")
    list_rps, p99 = wrk(f"{server.url}/v1/executions?limit=50")
    print(f"GET /v1/executions?limit=50 (SQLite, 50 briefs, {size / 1024:.1f} KiB): "
          f"{list_rps:,.0f} pages/s, p99 {p99:.2f} ms (goal 5,000)")
    print(f"GET /v1/executions/{{id}} on the same server: {one_rps:,.0f} requests/s; "
          f"ratio page / record {list_rps / one_rps:.2f}")


def overhead(agentd, image, repo, count, cap):
    with tempfile.TemporaryDirectory(prefix="bs", dir="/tmp") as scratch:
        server = Server(agentd, image, scratch, f"sqlite://{scratch}/agentd.db", cap)
        try:
            server.wait([server.submit(repo)])  # warm-up: mirror, page cache
            cpu_before = server.cpu_seconds()
            started = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                ids = list(pool.map(lambda _: server.submit(repo), range(count)))
            server.wait(ids)
            wall = time.monotonic() - started
            cpu = server.cpu_seconds() - cpu_before
            rss = server.peak_rss_mib()
            listing(server, ids[0])
        finally:
            server.stop()

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    names = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    with ThreadPoolExecutor(cap) as pool:
        list(pool.map(lambda name: subprocess.run(
            ["docker", "run", "--rm", "--name", name, *HARDENED, image, "true"],
            check=True, capture_output=True), names))
    docker_wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    docker_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    docker_rss = after.ru_maxrss / 1024

    print(f"{count} executions, cap {cap}: agentd {wall:.1f} s wall, {cpu:.2f} s CPU, "
          f"peak RSS {rss:.0f} MiB")
    print(f"{count} docker run --rm … true, {cap} at a time: {docker_wall:.1f} s wall, "
          f"{docker_cpu:.2f} s CPU (docker CLI processes), peak RSS {docker_rss:.0f} MiB (one CLI)")
    print(f"ratios agentd / docker: wall {wall / docker_wall:.2f}x, CPU {cpu / docker_cpu:.2f}x, "
          f"peak RSS {rss / docker_rss:.2f}x")
    print(f"agentd per execution: {cpu / count * 1000:.0f} ms CPU")


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    agentd, image, repo, postgres = sys.argv[1:5]
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 50
    cap = int(sys.argv[6]) if len(sys.argv) > 6 else 8
    with tempfile.TemporaryDirectory(prefix="bs", dir="/tmp") as scratch:
        get_under_load(agentd, image, repo, f"sqlite://{scratch}/load.db", "SQLite")
    database = f"agentd_bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", postgres, "-qc", f"CREATE DATABASE {database}"], check=True)
    try:
        url = postgres.rsplit("/", 1)[0] + "/" + database
        get_under_load(agentd, image, repo, url, "PostgreSQL")
    finally:
        subprocess.run(["psql", postgres, "-qc", f"DROP DATABASE {database} WITH (FORCE)"],
                       check=False)
    overhead(agentd, image, repo, count, cap)


if __name__ == "__main__":
    main()
