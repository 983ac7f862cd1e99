#!/usr/bin/env python3
"""The helm chart's pods on a real engine (issue 12). The chart is rendered
by Helm's own engine (helm-python-sdk), and tests/pods/kubelet.py runs the
rendered pods on the local Docker engine the way a kubelet would, with
PostgreSQL from this machine, agentd's own images and the agent image
loaded into the in-pod engine from a tarball by the chart's init container.

Scenarios (all by default):
  dind      the default mode: a dockerd native sidecar, agentd in its network
            namespace, the emptyDirs shared at identical paths. An execution
            submitted with a tenant key succeeds in the inner engine (never on
            the host's); a second is running when the pod is terminated: the
            pod stops being ready, the execution finishes (drain), agentd exits 0.
  host      host mode: agentd in its own container on the host's Docker socket,
            hostPath folders at the same path; an execution succeeds.
  replicas  two dind pods on one PostgreSQL share the queue; executions run on
            one (the other's claiming paused), that pod is killed (node loss),
            the other takes them over through the lease: the one without
            retries ends failed with reason engine_lost, the one with retries
            is queued again and succeeds there.
Figures: pod start to ready; execution start latency (submission to the
CLI's session) in the dind sidecar vs on the host engine.

Usage: pods.py AGENTD AGENT_IMAGE [SCENARIO...]
"""

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import helm_python as helm
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kubelet import Pod, docker, remove_all_test_pods  # noqa: E402

HERE = Path(__file__).resolve().parent
CHART = HERE.parent.parent / "helm" / "agentd"
SCENARIO = HERE / "slow.json"
PROBE = HERE / "probe.sh"
PG = os.environ.get("AGENTD_TEST_POSTGRES_URL", "postgres://agentd:agentd@127.0.0.1:5432/postgres")
ADMIN = "admin-" + secrets.token_hex(16)
SEALING = secrets.token_hex(32)


def log(message):
    print(f"[pods {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the machine's side: images, database, a relay to it ---------------------

def build_image(agentd, flag):
    out = subprocess.run([agentd, "image", "build", flag], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"agentd image build {flag} failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


def split(tag):
    repository, _, version = tag.rpartition(":")
    return repository, version


def bridge_gateway():
    """The host's address on the engine's default bridge (docker0)."""
    out = docker("network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}")
    if out.stdout.strip():
        return out.stdout.strip()
    addr = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True,
                          text=True, check=True).stdout.split()
    return addr[addr.index("inet") + 1].split("/")[0]


class Relay(threading.Thread):
    """host:port on the Docker bridge -> 127.0.0.1:5432, as a cluster's
    database Service would be reachable from a pod."""

    def __init__(self, host, target):
        super().__init__(daemon=True)
        self.server = socket.create_server((host, 0))
        self.port = self.server.getsockname()[1]
        self.target = target

    def run(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def database(name):
    subprocess.run(["psql", PG, "-q", "-c", f"DROP DATABASE IF EXISTS {name}"], check=True,
                   capture_output=True)
    subprocess.run(["psql", PG, "-q", "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)


def drop_database(name):
    subprocess.run(["psql", PG, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                   check=False, capture_output=True)


# --- the chart ----------------------------------------------------------------

def merge(base, over):
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def render(values_file, overrides):
    values = helm.values_from_yaml((CHART / "ci" / values_file).read_text())
    values = merge(values, overrides)
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="agentd", namespace="agents", is_install=True)
    objects = []
    for template in sorted(rendered):
        if not template.endswith("NOTES.txt"):
            objects += [d for d in yaml.safe_load_all(rendered[template]) if d]
    return objects


def workload(objects, kind):
    for obj in objects:
        if obj["kind"] == kind:
            return obj
    raise SystemExit(f"no {kind} rendered")


# --- the API, as a client ----------------------------------------------------

class Api:
    def __init__(self, pod, token):
        self.base = f"http://{pod.ip}:8700"
        self.token = token

    def call(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                text = answer.read().decode()
                return answer.status, (json.loads(text) if text.startswith(("{", "[")) else text)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def ok(self, method, path, body=None, token=None):
        status, answer = self.call(method, path, body, token)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

    def events(self, id, token):
        request = urllib.request.Request(f"{self.base}/v1/executions/{id}/events")
        request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=60) as answer:
            text = answer.read().decode()
        return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")
                and line[5:].strip().startswith("{") and '"seq"' in line]


def tenant(api, name, repos):
    api.ok("POST", "/v1/admin/tenants", {"name": name})
    api.ok("PUT", f"/v1/admin/tenants/{name}/policy", {"sources": {"local_paths": [repos]}})
    return api.ok("POST", f"/v1/admin/tenants/{name}/keys", {})["key"]


def wait_for(api, id, token, statuses, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, record = api.call("GET", f"/v1/executions/{id}", token=token)
        if status == 200 and record["status"] in statuses:
            return record
        time.sleep(0.3)
    raise RuntimeError(f"execution {id} not {statuses} in {timeout} s: {record}")


def start_latency(api, id, token):
    """Seconds from the execution's creation to the CLI's session."""
    from datetime import datetime
    record = api.ok("GET", f"/v1/executions/{id}", token=token)
    events = api.events(id, token)
    session = next(e for e in events if e.get("type") == "session_started")
    stamp = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (stamp(session["at"]) - stamp(record["created_at"])).total_seconds()


RUNS = int(os.environ.get("AGENTD_PODS_RUNS", "1"))


def more_latencies(api, key, repo, first):
    """The median start latency of `first` and RUNS - 1 more executions."""
    import statistics
    samples = [first]
    for _ in range(RUNS - 1):
        made = api.ok("POST", "/v1/executions", {"repo": repo, "prompt": "again"}, token=key)
        record = wait_for(api, made["id"], key, ("succeeded", "failed", "timed_out", "cancelled"))
        assert record["status"] == "succeeded", record
        samples.append(start_latency(api, made["id"], key))
    return statistics.median(samples)


def sample_repo(path):
    os.makedirs(path, exist_ok=True)
    run = lambda *a: subprocess.run(a, cwd=path, check=True, capture_output=True)  # noqa: E731
    run("git", "init", "-q", "-b", "main")
    Path(path, "README.md").write_text("# Sample project\n")
    run("git", "add", ".")
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    subprocess.run(["chown", "-R", "10100:10100", path], check=True)


# --- the scenarios -------------------------------------------------------------

class Setup:
    def __init__(self, agentd, agent_image, root):
        self.root = root
        began = time.monotonic()
        self.supervisor = build_image(agentd, "--supervisor")
        self.engine = build_image(agentd, "--engine")
        self.agent = agent_image
        log(f"images {self.supervisor}, {self.engine}, {self.agent} ({time.monotonic() - began:.0f} s)")
        self.tarballs = os.path.join(root, "images")
        os.makedirs(self.tarballs, exist_ok=True)
        began = time.monotonic()
        docker("save", "-o", os.path.join(self.tarballs, "agentd-agent.tar"), agent_image)
        # Readable by the init container's user, as an operator's volume would be.
        os.chmod(os.path.join(self.tarballs, "agentd-agent.tar"), 0o644)
        log(f"agent image saved for the init container ({time.monotonic() - began:.0f} s)")
        self.gateway = bridge_gateway()
        self.relay = Relay(self.gateway, ("127.0.0.1", 5432))
        self.relay.start()
        self.figures = {}
        self.scenarios = os.path.join(root, "scenarios")
        write_scenario(self.scenarios, f"{self.gateway}/{self.relay.port}")

    def overrides(self, database_name, extra=None):
        sup_repo, sup_tag = split(self.supervisor)
        eng_repo, eng_tag = split(self.engine)
        agent_repo, agent_tag = split(self.agent)
        values = {
            "image": {"repository": sup_repo, "tag": sup_tag},
            "engine": {"image": {"repository": eng_repo, "tag": eng_tag}},
            "agentImage": {"repository": agent_repo, "tag": agent_tag, "source": "tarball",
                           "tarball": {"volume": {"hostPath": {"path": self.tarballs,
                                                               "type": "Directory"}},
                                       "path": "agentd-agent.tar"}},
            "nodeSelector": {}, "tolerations": [],
            "config": {"lease": "4s", "reconcileInterval": "10s", "shutdownGraceSeconds": 120},
        }
        return merge(values, extra or {})

    def secrets(self, database_name):
        url = f"postgres://agentd:agentd@{self.gateway}:{self.relay.port}/{database_name}"
        return {"agentd-database": {"database-url": url, "url": url},
                "agentd-admin": {"admin-token": ADMIN},
                "agentd-sealing": {"secret-key": SEALING}, "agentd-model": {"api-key": "sk-unused"}}

    def pod(self, name, objects, kind, database_name):
        template = workload(objects, kind)["spec"]["template"]
        return Pod(name, template, objects, self.root, secrets=self.secrets(database_name),
                   extra_env={"agentd": {"AGENTD_SCRIPTED_MODEL": "/etc/agentd-test/slow.json"}},
                   extra_mounts=[(self.scenarios, "/etc/agentd-test")])


def write_scenario(folder, database):
    """slow.json with its first Bash call running the attacker's probe
    (probe.sh) inside the sandbox, its findings written into the work."""
    os.makedirs(folder, exist_ok=True)
    scenario = json.loads(SCENARIO.read_text())
    call = scenario["turns"][0]["content"][1]["input"]
    call["command"] = (f"cat > /tmp/probe.sh <<'PROBE'\n{PROBE.read_text()}PROBE\n"
                       f"DB={database} bash /tmp/probe.sh > /workspace/repo/PROBE.txt 2>&1; "
                       + call["command"])
    Path(folder, "slow.json").write_text(json.dumps(scenario))
    os.chmod(folder, 0o755)


def findings(text):
    """The probe's lines as {attack: result}."""
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def held(diff):
    """The probe's findings from inside a sandbox, read from the diff: every
    attack must have failed."""
    lines = [line[1:] for line in diff.splitlines()
             if line.startswith("+") and not line.startswith("+++")]
    start = next(i for i, l in enumerate(diff.splitlines()) if "PROBE.txt" in l)
    seen = findings("\n".join(l[1:] for l in diff.splitlines()[start:]
                              if l.startswith("+") and not l.startswith("+++")))
    assert lines and seen, f"no probe findings in the diff:\n{diff}"
    broken = {k: v for k, v in seen.items() if any(w in v for w in ("REACHED", "VISIBLE",
                                                                     "READABLE", "FOUND"))}
    assert not broken, f"the sandbox got through: {broken}"
    return seen


def control(pod, database):
    """The same probe in the pod's agentd container, where each of those
    things is there to find: the probe can tell."""
    out = docker("exec", "-e", f"DB={database}", f"{pod.name}-agentd", "bash", "-c",
                 PROBE.read_text(), check=False)
    seen = findings(out.stdout)
    assert "VISIBLE" in seen.get("engine socket", "") or "REACHED" in seen.get("engine socket", ""), seen
    assert seen.get("tcp 127.0.0.1/8700") == "REACHED", seen
    assert seen.get(f"tcp {database}") == "REACHED", seen
    assert seen.get("secrets in env") == "FOUND", seen
    return seen


def inner_containers(pod):
    out = docker("exec", f"{pod.name}-engine", "docker", "--host=unix:///run/agentd-engine/docker.sock",
                 "ps", "-aq", "--filter", "label=agentd.managed=true", check=False)
    return out.stdout.split()


def scenario_dind(setup):
    name = "agentd_pods_dind"
    database(name)
    objects = render("dind-values.yaml", setup.overrides(name))
    pod = setup.pod("pod-dind", objects, "Deployment", name)
    try:
        ready = pod.start(setup.engine)
        setup.figures["pod start to ready (dind)"] = ready
        log(f"dind pod ready in {ready:.1f} s at {pod.ip}")
        repos = "/var/lib/agentd/fixtures"
        sample_repo(os.path.join(pod.volumes["data"], "fixtures", "sample"))
        api = Api(pod, ADMIN)
        key = tenant(api, "acme", repos)
        first = api.ok("POST", "/v1/executions", {"repo": f"{repos}/sample", "prompt": "greet"},
                       token=key)
        seen_inside = False
        while True:
            record = api.ok("GET", f"/v1/executions/{first['id']}", token=key)
            seen_inside = seen_inside or bool(inner_containers(pod))
            host = docker("ps", "-aq", "--filter", f"label=agentd.execution={first['id']}").stdout
            assert not host.strip(), "the execution's sandbox is on the host's engine"
            if record["status"] in ("succeeded", "failed", "timed_out", "cancelled"):
                break
            time.sleep(0.3)
        assert record["status"] == "succeeded", record
        assert seen_inside, "no sandbox was seen in the pod's engine"
        status, diff = api.call("GET", f"/v1/executions/{first['id']}/diff", token=key)
        assert status == 200 and "GREETING.md" in diff, (status, diff)
        address = f"{setup.gateway}/{setup.relay.port}"
        inside, outside = held(diff), control(pod, address)
        log(f"attacks from the sandbox all failed: {inside}; the same probe in agentd's "
            f"container finds them: {outside}")
        setup.figures["start latency dind"] = more_latencies(
            api, key, f"{repos}/sample", start_latency(api, first["id"], key))
        log(f"execution succeeded in the inner engine; start latency "
            f"{setup.figures['start latency dind']:.2f} s")

        second = api.ok("POST", "/v1/executions", {"repo": f"{repos}/sample", "prompt": "again"},
                        token=key)
        wait_for(api, second["id"], key, ("running",))
        codes = {}
        stopper = threading.Thread(target=lambda: codes.update(pod.terminate()))
        stopper.start()
        unready = False
        while stopper.is_alive():
            unready = unready or pod.http_status({"port": 8700, "path": "/readyz"}) == 503
            time.sleep(0.2)
        stopper.join()
        assert unready, "the pod stayed ready while draining"
        assert codes == {"pod-dind-agentd": 0}, codes
        # agentd is gone: read the record from the database directly.
        out = subprocess.run(["psql", PG.rsplit("/", 1)[0] + "/" + name, "-tA", "-c",
                              f"SELECT status, coalesce(reason, '') FROM executions "
                              f"WHERE id = '{second['id']}'"], capture_output=True, text=True)
        assert out.stdout.strip() == "succeeded|", f"drained execution: {out.stdout!r}"
        log("drain: not ready at once, the running execution finished (succeeded), agentd exited 0")
    except Exception:
        print(pod.logs("agentd")[-4000:], file=sys.stderr)
        raise
    finally:
        pod.remove()
        drop_database(name)


def scenario_host(setup):
    name = "agentd_pods_host"
    database(name)
    base = os.path.join(setup.root, "node")
    data, run = os.path.join(base, "data"), os.path.join(base, "run")
    group = os.stat("/var/run/docker.sock").st_gid
    objects = render("host-values.yaml", setup.overrides(name, {
        "engine": {"host": {"dataDir": data, "runDir": run, "dockerGroup": group,
                            "nodeSelector": {}}},
        "agentImage": {"source": "registry"},
    }))
    pod = setup.pod("pod-host", objects, "DaemonSet", name)
    # The agent image is on the node's engine already: what a pull would do.
    pod.spec["initContainers"] = [c for c in pod.spec.get("initContainers", [])
                                  if c["name"] != "agent-image"]
    try:
        ready = pod.start(setup.supervisor)
        log(f"host pod ready in {ready:.1f} s at {pod.ip}")
        repos = os.path.join(data, "fixtures")
        sample_repo(os.path.join(repos, "sample"))
        api = Api(pod, ADMIN)
        key = tenant(api, "acme", repos)
        first = api.ok("POST", "/v1/executions", {"repo": f"{repos}/sample", "prompt": "greet"},
                       token=key)
        record = wait_for(api, first["id"], key, ("succeeded", "failed", "timed_out", "cancelled"))
        assert record["status"] == "succeeded", record
        status, diff = api.call("GET", f"/v1/executions/{first['id']}/diff", token=key)
        assert status == 200 and "GREETING.md" in diff, (status, diff)
        log(f"attacks from the sandbox on the host's engine all failed: {held(diff)}")
        setup.figures["start latency host"] = more_latencies(
            api, key, f"{repos}/sample", start_latency(api, first["id"], key))
        log(f"execution succeeded on the host's engine; start latency "
            f"{setup.figures['start latency host']:.2f} s")
        codes = pod.terminate(grace=30)
        assert codes == {"pod-host-agentd": 0}, codes
    except Exception:
        print(pod.logs("agentd")[-4000:], file=sys.stderr)
        raise
    finally:
        pod.remove()
        subprocess.run(["rm", "-rf", base], check=False)
        drop_database(name)


def scenario_replicas(setup):
    name = "agentd_pods_replicas"
    database(name)
    objects = render("replicas-values.yaml", setup.overrides(name, {
        "metrics": {"serviceMonitor": {"enabled": False}, "prometheusRule": {"enabled": False}}}))
    pods = [setup.pod(f"pod-replica-{n}", objects, "Deployment", name) for n in "ab"]
    try:
        for pod in pods:
            pod.start(setup.engine)
        a, b = pods
        repos = "/var/lib/agentd/fixtures"
        for pod in pods:
            sample_repo(os.path.join(pod.volumes["data"], "fixtures", "sample"))
        api_a, api_b = Api(a, ADMIN), Api(b, ADMIN)
        key = tenant(api_a, "acme", repos)
        api_b.ok("PUT", "/v1/admin/claiming", {"paused": True, "scope": "replica"})
        lost = api_a.ok("POST", "/v1/executions", {"repo": f"{repos}/sample", "prompt": "one"},
                        token=key)
        retried = api_a.ok("POST", "/v1/executions",
                           {"repo": f"{repos}/sample", "prompt": "two", "retries": 1}, token=key)
        for id in (lost["id"], retried["id"]):
            wait_for(api_a, id, key, ("running",))
        log("both executions running on replica a; killing it (node loss)")
        a.kill()
        api_b.ok("PUT", "/v1/admin/claiming", {"paused": False, "scope": "replica"})
        final = ("succeeded", "failed", "timed_out", "cancelled")
        one = wait_for(api_b, lost["id"], key, final)
        assert one["status"] == "failed" and one["reason"].startswith("engine_lost"), one
        two = wait_for(api_b, retried["id"], key, final)
        assert two["status"] == "succeeded" and two["retried"] == 1, two
        status, diff = api_b.call("GET", f"/v1/executions/{retried['id']}/diff", token=key)
        assert status == 200 and "GREETING.md" in diff, (status, diff)
        log("replica b took both over: one failed engine_lost, the one with retries "
            "was queued again and succeeded")
        b.terminate()
    except Exception:
        for pod in pods:
            print(f"--- {pod.name}\n" + pod.logs("agentd")[-3000:], file=sys.stderr)
        raise
    finally:
        for pod in pods:
            pod.remove()
        drop_database(name)


SCENARIOS = {"dind": scenario_dind, "host": scenario_host, "replicas": scenario_replicas}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    agentd, agent_image = sys.argv[1:3]
    chosen = sys.argv[3:] or list(SCENARIOS)
    remove_all_test_pods()
    root = tempfile.mkdtemp(prefix="agentd-pods-", dir="/tmp")
    os.chmod(root, 0o755)
    failed = []
    try:
        setup = Setup(agentd, agent_image, root)
        for name in chosen:
            began = time.monotonic()
            try:
                SCENARIOS[name](setup)
                log(f"{name}: ok ({time.monotonic() - began:.0f} s)")
            except Exception as error:  # noqa: BLE001
                log(f"{name}: FAILED: {error}")
                failed.append(name)
        f = setup.figures
        if "pod start to ready (dind)" in f:
            print(f"figure: pod start to ready (agentd + dockerd sidecar, agent image loaded): "
                  f"{f['pod start to ready (dind)']:.1f} s")
        if "start latency dind" in f and "start latency host" in f:
            print(f"figure ({RUNS} run(s), medians): execution start latency in the dind sidecar "
                  f"{f['start latency dind']:.2f} s vs on the host engine "
                  f"{f['start latency host']:.2f} s: ratio "
                  f"{f['start latency dind'] / f['start latency host']:.2f}x")
    finally:
        remove_all_test_pods()
        subprocess.run(["rm", "-rf", root], check=False)
    if failed:
        sys.exit(f"pods: failed: {', '.join(failed)}")
    print("pods: all scenarios passed")


if __name__ == "__main__":
    main()
