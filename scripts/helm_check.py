"""Checks the helm chart with real engines (run by scripts/helm-check, in its venv).

For each values file in helm/agentd/ci/: Helm's own Go library (helm-python-sdk) lints
the chart and renders it with the values checked against values.schema.json; the
manifests go to target/helm/rendered/<name>.yaml; every manifest is validated with
kubernetes-validate (strict: unknown fields refused) against each Kubernetes version in
KUBE_VERSIONS; checkov scans them (framework kubernetes) and any failed check fails the
run. Custom resources (ServiceMonitor, PrometheusRule) have no schema in
kubernetes-validate: they are skipped there and checked here for apiVersion, kind and the
fields the Prometheus operator requires. What the chart promises of its pod (a hardened
agentd, secrets from Secrets, the engine's paths identical in both containers) is checked
here too, since checkov's skips cover a whole workload; and the chart's README must have
a row for every value.

Each file in helm/agentd/ci/bad/ must be refused when rendered, with the message its
`# expect:` line names (so it is refused for the reason it was written for).

Prints one line per check and a summary; exits 1 on any failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml
from kubernetes_validate.version import __version__ as kubernetes_validate_version

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "agentd"
OUT = ROOT / "target" / "helm" / "rendered"
RELEASE = "agentd"
NAMESPACE = "agentd"
# The floor the chart declares (kubeVersion: native sidecars are on from 1.29) and the two
# newest versions kubernetes-validate 1.37.0 ships schemas for.
KUBE_VERSIONS = ["1.29", "1.36", "1.37"]
# Custom resources the chart makes, by apiVersion: no Kubernetes schema has them.
CUSTOM = {"monitoring.coreos.com/v1": {"ServiceMonitor", "PrometheusRule"}}

failures: list[str] = []


def fail(what: str) -> None:
    failures.append(what)
    print(f"FAIL {what}")


def ok(what: str) -> None:
    print(f"ok   {what}")


def values_of(path: Path) -> dict:
    return helm.values_from_yaml(path.read_text())


def render(chart: helm.Chart, values: dict) -> dict[str, str]:
    return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests(rendered: dict[str, str]) -> list[tuple[str, dict]]:
    """(template, object) for every object rendered, in template order."""
    docs = []
    for template in sorted(rendered):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(rendered[template]):
            if doc:
                docs.append((template, doc))
    return docs


def check_custom(doc: dict) -> list[str]:
    """What the Prometheus operator's CRDs require of the two kinds the chart makes."""
    problems = []
    spec = doc.get("spec")
    if not doc.get("metadata", {}).get("name"):
        problems.append("metadata.name missing")
    if not isinstance(spec, dict):
        return problems + ["spec missing"]
    if doc["kind"] == "ServiceMonitor":
        if not isinstance(spec.get("selector"), dict):
            problems.append("spec.selector missing")
        endpoints = spec.get("endpoints")
        if not endpoints:
            problems.append("spec.endpoints missing")
        for n, endpoint in enumerate(endpoints or []):
            if not endpoint.get("port"):
                problems.append(f"spec.endpoints[{n}].port missing")
            secret = endpoint.get("bearerTokenSecret", {})
            if not (secret.get("name") and secret.get("key")):
                problems.append(f"spec.endpoints[{n}].bearerTokenSecret needs name and key")
    else:
        groups = spec.get("groups")
        if not groups:
            problems.append("spec.groups missing")
        for group in groups or []:
            if not group.get("name"):
                problems.append("a group has no name")
            for rule in group.get("rules") or []:
                if not (rule.get("alert") or rule.get("record")):
                    problems.append("a rule has neither alert nor record")
                if not isinstance(rule.get("expr"), str) or not rule["expr"].strip():
                    problems.append(f"rule {rule.get('alert')} has no expr")
                if "{{" in str(rule.get("expr")):
                    problems.append(f"rule {rule.get('alert')}: unrendered template in expr")
    return problems


def validate(name: str, docs: list[tuple[str, dict]]) -> None:
    for version in KUBE_VERSIONS:
        bad = 0
        skipped = []
        for template, doc in docs:
            kind = doc.get("kind")
            if kind in CUSTOM.get(doc.get("apiVersion"), set()):
                skipped.append(kind)
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                bad += 1
                path = ".".join(str(p) for p in e.path)
                fail(f"{name}: {kind}/{doc['metadata']['name']} against Kubernetes {version}: {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                bad += 1
                fail(f"{name}: {e.message}")
        if not bad:
            note = f" (skipped, no Kubernetes schema: {', '.join(skipped)})" if skipped else ""
            ok(f"{name}: {len(docs) - len(skipped)} manifests valid against Kubernetes {version}{note}")
    for template, doc in docs:
        if doc.get("kind") in CUSTOM.get(doc.get("apiVersion"), set()):
            problems = check_custom(doc)
            for problem in problems:
                fail(f"{name}: {doc['kind']}: {problem}")
            if not problems:
                ok(f"{name}: {doc['kind']} has the operator's required fields")


RESTRICTED = {
    "runAsNonRoot": True, "runAsUser": 10100, "runAsGroup": 10100,
    "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
}
SECRET_ENV = {"DATABASE_URL", "AGENTD_ADMIN_TOKEN", "AGENTD_SECRET_KEY",
              "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"}


def check_pod(name: str, docs: list[tuple[str, dict]], values: dict) -> None:
    """What the chart promises of its pod, beyond what checkov sees (checkov's skips are
    per resource, so agentd's own container is checked here)."""
    workloads = [d for _, d in docs if d["kind"] in ("Deployment", "DaemonSet")]
    if len(workloads) != 1:
        fail(f"{name}: {len(workloads)} workloads rendered, want one")
        return
    workload = workloads[0]
    pod = workload["spec"]["template"]["spec"]
    problems = []
    host = workload["kind"] == "DaemonSet"
    as_root = host and values.get("engine", {}).get("host", {}).get("runAsRoot", False)
    containers = {c["name"]: c for c in pod["containers"]}
    inits = {c["name"]: c for c in pod.get("initContainers", [])}
    agentd = containers.get("agentd")
    if agentd is None:
        fail(f"{name}: no agentd container")
        return
    want = dict(RESTRICTED)
    if as_root:
        want.update(runAsNonRoot=False, runAsUser=0, runAsGroup=0)
    for container in (agentd, inits.get("agent-image")):
        if container is None:
            problems.append("no agent-image init container")
        elif container.get("securityContext") != want:
            problems.append(f"{container['name']}'s securityContext is {container.get('securityContext')}")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("the service account token is mounted")
    env = {e["name"]: e for e in agentd.get("env", [])}
    for key in SECRET_ENV & env.keys():
        if "secretKeyRef" not in env[key].get("valueFrom", {}):
            problems.append(f"{key} is not from a Secret")
    config = next(d for _, d in docs if d["kind"] == "ConfigMap")["data"]["agentd.toml"]
    grace = int(next(line for line in config.splitlines() if line.startswith("shutdown-grace"))
                .split('"')[1].removesuffix("s"))
    if pod["terminationGracePeriodSeconds"] < grace:
        problems.append(f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} < shutdown-grace {grace}")
    mounts = {m["name"]: m["mountPath"] for m in agentd["volumeMounts"]}
    socket = env["DOCKER_HOST"]["value"].removeprefix("unix://")
    if host:
        paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
        for volume in ("docker-socket", "data", "run"):
            if paths.get(volume) != mounts.get(volume):
                problems.append(f"hostPath {volume} {paths.get(volume)} is mounted at {mounts.get(volume)}")
        if mounts.get("docker-socket") != socket:
            problems.append(f"DOCKER_HOST {socket} is not the mounted socket")
    else:
        engine = inits.get("engine")
        if engine is None or engine.get("restartPolicy") != "Always":
            problems.append("the engine is not a native sidecar (restartPolicy Always)")
        else:
            if "info" not in engine.get("startupProbe", {}).get("exec", {}).get("command", []):
                problems.append("the engine has no `docker info` startup probe")
            if list(inits)[0] != "engine":
                problems.append("the engine is not the first init container")
            engine_mounts = {m["name"]: m["mountPath"] for m in engine["volumeMounts"]}
            for volume in ("engine-socket", "data", "run"):
                if engine_mounts.get(volume) != mounts.get(volume):
                    problems.append(f"{volume} is at {engine_mounts.get(volume)} in the engine, {mounts.get(volume)} in agentd")
            if f"--host=unix://{socket}" not in engine["args"]:
                problems.append(f"dockerd does not listen on DOCKER_HOST {socket}")
    for problem in problems:
        fail(f"{name}: pod: {problem}")
    if not problems:
        ok(f"{name}: pod: hardened agentd{' (as root, no capabilities)' if as_root else ''}, secrets from Secrets, "
           f"{'hostPaths' if host else 'engine mounts'} at identical paths, grace {pod['terminationGracePeriodSeconds']} s")


def checkov_version() -> str:
    exe = Path(sys.executable).parent / "checkov"
    return subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.strip()


def checkov(name: str, path: Path) -> None:
    exe = Path(sys.executable).parent / "checkov"
    proc = subprocess.run(
        [str(exe), "--quiet", "--compact", "--framework", "kubernetes", "--output", "json",
         "--skip-download", "--file", str(path)],
        capture_output=True, text=True, cwd=ROOT,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        fail(f"{name}: checkov gave no report (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
        return
    # One report, or a list of them (one per framework). --compact leaves the passed
    # and skipped checks out of the lists: their numbers are in the summary.
    reports = report if isinstance(report, list) else [report]
    passed = skipped = resources = parse_errors = 0
    failed = []
    for r in reports:
        summary = r.get("summary", {})
        passed += summary.get("passed", 0)
        skipped += summary.get("skipped", 0)
        resources += summary.get("resource_count", 0)
        parse_errors += summary.get("parsing_errors", 0)
        failed += r.get("results", {}).get("failed_checks", [])
        if summary.get("failed", 0) and not r.get("results", {}).get("failed_checks"):
            fail(f"{name}: checkov counted {summary['failed']} failed checks it did not list")
    for check in failed:
        fail(f"{name}: checkov {check['check_id']} ({check['check_name']}) on {check['resource']}")
    if parse_errors or not resources or not passed:
        fail(f"{name}: checkov scanned {resources} resources with {parse_errors} parsing errors")
    elif not failed:
        ok(f"{name}: checkov {passed} passed, {skipped} skipped with a reason, 0 failed ({resources} resources)")


def check_good(chart: helm.Chart, path: Path) -> None:
    name = path.name.removesuffix("-values.yaml")
    values = values_of(path)
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + [
        {"path": "", "error": e} for e in report["errors"]]
    for m in problems:
        fail(f"{name}: lint: {m['path']}: {m['error'].strip()}")
    if not problems:
        ok(f"{name}: helm lint (strict)")
    try:
        rendered = render(chart, values)
    except helm.HelmError as e:
        fail(f"{name}: render: {e}")
        return
    docs = manifests(rendered)
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"{name}.yaml"
    out.write_text("".join(
        f"---\n# Source: {template}\n{yaml.safe_dump(doc, sort_keys=False)}" for template, doc in docs))
    kinds = ", ".join(sorted({d["kind"] for _, d in docs}))
    ok(f"{name}: rendered {len(docs)} manifests ({kinds}) to {out.relative_to(ROOT)}")
    validate(name, docs)
    check_pod(name, docs, values)
    checkov(name, out)


# Values that are one thing in the README's table although they are maps.
OPAQUE = {"engine.securityContext", "engine.host.nodeSelector", "networkPolicy.dns.namespaceSelector",
          "networkPolicy.dns.podSelector"}


def value_paths(values: dict, prefix: str = ""):
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in OPAQUE and not key == "resources":
            yield from value_paths(value, path + ".")
        else:
            yield path


def check_readme(chart: helm.Chart) -> None:
    """The chart's README has a row for every value in values.yaml."""
    readme = (CHART / "README.md").read_text()
    missing = [p for p in value_paths(chart.values) if f"| `{p}` |" not in readme]
    for path in missing:
        fail(f"README.md: no row for the value {path}")
    if not missing:
        ok(f"README.md: a row for each of the {len(list(value_paths(chart.values)))} values")


def check_bad(chart: helm.Chart, path: Path) -> None:
    name = "bad/" + path.name.removesuffix("-values.yaml")
    text = path.read_text()
    expect = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("# expect:")]
    if not expect:
        fail(f"{name}: no '# expect:' line")
        return
    try:
        render(chart, values_of(path))
    except helm.HelmError as e:
        message = str(e)
        if expect[0] in message:
            ok(f"{name}: refused ({expect[0]})")
        else:
            fail(f"{name}: refused, but not for '{expect[0]}': {message.strip()}")
        return
    fail(f"{name}: rendered, but must be refused ({expect[0]})")


def main() -> int:
    started = time.monotonic()
    print(f"Helm {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__}), "
          f"kubernetes-validate {kubernetes_validate_version}, checkov {checkov_version()}")
    good = sorted((CHART / "ci").glob("*-values.yaml"))
    bad = sorted((CHART / "ci" / "bad").glob("*-values.yaml"))
    if not good or not bad:
        fail("no values files under helm/agentd/ci/ or ci/bad/")
    with helm.Chart.load(str(CHART)) as chart:
        # The defaults alone must be refused: the agent image's tag has no default.
        try:
            render(chart, None)
            fail("defaults: rendered without agentImage.tag")
        except helm.HelmError as e:
            if "agentImage.tag is required" in str(e):
                ok("defaults: refused without agentImage.tag")
            else:
                fail(f"defaults: refused for another reason: {e}")
        check_readme(chart)
        for path in good:
            check_good(chart, path)
        for path in bad:
            check_bad(chart, path)
    elapsed = time.monotonic() - started
    print(f"\nhelm-check: {len(good)} values files (lint, render, Kubernetes {', '.join(KUBE_VERSIONS)}, checkov), "
          f"{len(bad)} bad values files; {len(failures)} failures; {elapsed:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
