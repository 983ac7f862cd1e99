#!/usr/bin/env python3
"""Memory per idle event stream (issue 10), measured on the served binary.

An execution whose log is about 6 MB of large events (40 turns of three 50 KB
text blocks) finishes; then N clients open its event stream and never read
(a 4 KiB receive window). The figure: agentd's resident memory per idle
client, against the bytes of log each is owed (what a reader buffering the
log whole would hold), and the memory left once the clients have gone.

Usage: bench_streams.py AGENTD IMAGE SAMPLE_REPO [CLIENTS]
"""

import json
import os
import socket
import sys
import tempfile
import time
import urllib.request

from served import http, serve


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scenario():
    block = lambda n: {"type": "text", "text": f"{n}:" + "x" * 50_000}
    turns = [{"content": [{"type": "tool_use", "name": "Bash",
                           "input": {"command": f"echo turn {t}", "description": "step"}},
                          block(3 * t), block(3 * t + 1), block(3 * t + 2)],
              "usage": {"input_tokens": 10, "output_tokens": 5}} for t in range(40)]
    turns.append({"content": [{"type": "text", "text": "Done."}],
                  "usage": {"input_tokens": 10, "output_tokens": 5}})
    return {"turns": turns}


def idle_client(host, port, id_):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(f"GET /v1/executions/{id_}/events HTTP/1.1\r\nHost: x\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    return sock


def main():
    agentd, image, repo = sys.argv[1:4]
    clients = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "scenario.json")
        with open(path, "w") as out:
            json.dump(scenario(), out)
        server, url = serve(agentd, scratch, ["--image", image, "--scripted-model", path])
        try:
            id_ = http("POST", f"{url}/v1/executions", {"repo": repo, "prompt": "talk a lot"})["id"]
            while http("GET", f"{url}/v1/executions/{id_}")["status"] in (
                    "queued", "preparing", "running", "collecting"):
                time.sleep(0.5)
            with urllib.request.urlopen(f"{url}/v1/executions/{id_}/events", timeout=120) as log:
                log_bytes = len(log.read())
            time.sleep(1)
            before = rss_mib(server.pid)
            host, port = url.removeprefix("http://").split(":")
            sockets = [idle_client(host, int(port), id_) for _ in range(clients)]
            time.sleep(3)
            held = rss_mib(server.pid)
            for sock in sockets:
                sock.close()
            time.sleep(3)
            after = rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
        per_client = (held - before) / clients
        print(f"event log owed to each client: {log_bytes / 2**20:.2f} MiB")
        print(f"agentd RSS: {before:.1f} MiB idle, {held:.1f} MiB with {clients} idle clients, "
              f"{after:.1f} MiB after they left")
        print(f"RSS per idle client: {per_client * 1024:.0f} KiB; "
              f"ratio to the log it is owed: {per_client / (log_bytes / 2**20):.3f}")


if __name__ == "__main__":
    main()
