#!/usr/bin/env python3
"""How long the agent's CLI keeps retrying against a dead model socket, and
how long another replica takes to take the execution over, with the default
lease (issue 10), measured in one run.

1. Retry window: a replica is killed (SIGKILL) while the agent runs a 5 s
   command; nobody takes over. The CLI's next model request finds nothing
   behind the socket and retries until it gives up and the container exits:
   the window is the container's exit minus the command's end.
2. Takeover: the same, but a second replica with its own data and run
   directories (as another pod) starts at once on the same database: the time
   from the kill to its re-attachment, and whether the execution still
   succeeds (the CLI's retries must outlast the takeover).

Usage: bench_takeover.py AGENTD IMAGE SAMPLE_REPO
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from served import http, serve

COMMAND_SECONDS = 5


class Server:
    def __init__(self, agentd, image, scenario, home, database_url):
        self.process, self.url = serve(
            agentd, home, ["--image", image, "--scripted-model", scenario,
                           "--database-url", database_url], log="info")

    def kill(self):
        self.process.kill()
        self.process.wait()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


def wait_for_event(url, id_, text, timeout=600):
    """Reads the execution's event stream until an event contains `text`."""
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(f"{url}/v1/executions/{id_}/events", timeout=timeout) as stream:
        for raw in stream:
            if text in raw.decode("utf-8", "replace"):
                return time.monotonic()
            if time.monotonic() > deadline:
                break
    sys.exit(f"no event with {text!r}")


def container_of(id_):
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=agentd.execution={id_}"],
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0] if out else None


def running(container):
    out = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", container],
                         capture_output=True, text=True)
    return out.stdout.strip() == "true"


def start(agentd, image, scenario, scratch, repo):
    database = f"sqlite://{scratch}/agentd.db"
    first = Server(agentd, image, scenario, f"{scratch}/a", database)
    id_ = http("POST", f"{first.url}/v1/executions",
               {"repo": repo, "prompt": "wait", "limits": {"timeout": "15m"}})["id"]
    tool_call = wait_for_event(first.url, id_, '"tool_call"')
    return first, id_, tool_call, database


def retry_window(agentd, image, scenario, repo):
    with tempfile.TemporaryDirectory() as scratch:
        first, id_, tool_call, _ = start(agentd, image, scenario, scratch, repo)
        first.kill()
        container = container_of(id_)
        while running(container):
            time.sleep(0.2)
        window = time.monotonic() - (tool_call + COMMAND_SECONDS)
        subprocess.run([agentd, "gc"], env=dict(os.environ, AGENTD_DATA_DIR=f"{scratch}/a/data",
                                               AGENTD_RUN_DIR=f"{scratch}/a/run"),
                       capture_output=True)
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        return window


def takeover(agentd, image, scenario, repo):
    with tempfile.TemporaryDirectory() as scratch:
        first, id_, _, database = start(agentd, image, scenario, scratch, repo)
        first.kill()
        killed = time.monotonic()
        second = Server(agentd, image, scenario, f"{scratch}/b", database)
        reattached = wait_for_event(second.url, id_, "re-attached")
        deadline = time.monotonic() + 600
        while True:
            status = http("GET", f"{second.url}/v1/executions/{id_}")["status"]
            if status not in ("queued", "preparing", "running", "collecting"):
                break
            if time.monotonic() > deadline:
                sys.exit("the execution did not finish")
            time.sleep(0.5)
        second.stop()
        subprocess.run([agentd, "gc"], env=dict(os.environ, AGENTD_DATA_DIR=f"{scratch}/a/data",
                                               AGENTD_RUN_DIR=f"{scratch}/a/run"),
                       capture_output=True)
        return reattached - killed, status


def main():
    agentd, image, repo = sys.argv[1:4]
    with tempfile.TemporaryDirectory() as scratch:
        scenario = os.path.join(scratch, "scenario.json")
        with open(scenario, "w") as out:
            json.dump({"turns": [
                {"content": [{"type": "tool_use", "name": "Bash",
                              "input": {"command": f"sleep {COMMAND_SECONDS}",
                                        "description": "wait"}}],
                 "usage": {"input_tokens": 10, "output_tokens": 10}},
                {"content": [{"type": "text", "text": "Done."}],
                 "usage": {"input_tokens": 10, "output_tokens": 5}},
            ]}, out)
        window = retry_window(agentd, image, scenario, repo)
        print(f"CLI retry window against a dead model socket: {window:.1f} s", flush=True)
        taken, status = takeover(agentd, image, scenario, repo)
        print(f"takeover by a replica with its own directories (default lease 30 s): "
              f"{taken:.1f} s, execution {status}")
        print(f"ratio takeover / retry window: {taken / window:.2f} "
              f"({'takeover beats the retries' if taken < window else 'the retries give up first'})")


if __name__ == "__main__":
    main()
