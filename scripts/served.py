"""What the benchmarks share about a running `agentd serve`: starting one on
a free port with its own data and run directories (its URL read from its
log), and JSON over HTTP."""

import json
import os
import re
import subprocess
import sys
import urllib.request


def http(method, url, body=None, token=None):
    """One JSON request; the decoded answer (None for an empty body)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def serve(agentd, home, args, log="warn"):
    """Starts `agentd serve --listen 127.0.0.1:0 ARGS` with data and run
    directories under `home`, without a model key or admin token from the
    environment; answers the process and its URL once it listens."""
    env = dict(os.environ, AGENTD_DATA_DIR=f"{home}/data", AGENTD_RUN_DIR=f"{home}/run",
               AGENTD_LOG=log)
    env.pop("ANTHROPIC_API_KEY", None)
    env.pop("AGENTD_ADMIN_TOKEN", None)
    process = subprocess.Popen([agentd, "serve", "--listen", "127.0.0.1:0", *args],
                               env=env, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return process, match.group(1)
    sys.exit("agentd serve did not start")
