"""Runs a rendered Kubernetes pod spec on the local Docker engine the way a
kubelet would, for the helm chart's proofs (tests/pods/pods.py). There is no
apiserver here: the manifests come from the chart rendered by Helm's own
engine, and this module does what the kubelet does with one pod.

- A pause container holds the pod's network namespace; every container joins
  it (`--network container:…`), so they share localhost and one IP.
- Volumes: an emptyDir is a fresh host directory (group `fsGroup`, setgid,
  as the kubelet makes it); a hostPath is the host's path; a configMap or a
  secret volume is a directory of its rendered keys. Each container mounts
  them at its own mountPath (subPath honoured).
- Env: values, secretKeyRef / configMapKeyRef against the rendered objects
  (and the Secrets an operator would have created: `secrets`), fieldRef for
  the pod's name and namespace.
- securityContext: user, group, fsGroup/supplementalGroups, read-only root,
  dropped and added capabilities, no-new-privileges, seccomp. `privileged:
  true` is refused by this machine's engine (it lacks CAP_SYS_RESOURCE), so
  it is replaced by what a privileged container gets that dockerd needs:
  every other capability, no seccomp or AppArmor confinement, the host's
  cgroup namespace with /sys/fs/cgroup writable (../shared/DESIGN.md).
- initContainers run in order to completion; one with `restartPolicy:
  Always` is a native sidecar: started, its startupProbe awaited, left
  running. Then the containers start; readiness is read from their
  readinessProbe. Stopping sends SIGTERM to the containers, waits up to
  terminationGracePeriodSeconds, then stops the sidecars.
"""

import base64
import json
import os
import shlex
import subprocess
import time
import urllib.request

ALL_CAPS_BUT_SYS_RESOURCE = [
    "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND",
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER",
    "KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP",
    "SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT",
    "SYS_PTRACE", "SYS_RAWIO", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
]


def docker(*args, check=True, capture=True, timeout=600):
    out = subprocess.run(["docker", *args], capture_output=capture, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}… failed ({out.returncode}): "
                           f"{(out.stderr or '').strip()[-2000:]}")
    return out


def find(objects, kind, name=None):
    """The rendered object of `kind` (and `name`), or None."""
    for obj in objects:
        if obj and obj.get("kind") == kind and (name is None or obj["metadata"]["name"] == name):
            return obj
    return None


def secret_data(obj):
    data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    data.update(obj.get("stringData") or {})
    return data


class Pod:
    """One pod of a rendered workload, run on the local engine."""

    def __init__(self, name, template, objects, root, secrets=None, extra_env=None,
                 extra_mounts=None, namespace="default"):
        self.name = name
        self.spec = template["spec"]
        self.labels = template.get("metadata", {}).get("labels", {})
        self.objects = objects
        self.root = os.path.join(root, name)
        self.secrets = dict(secrets or {})
        for obj in objects:
            if obj and obj.get("kind") == "Secret":
                self.secrets.setdefault(obj["metadata"]["name"], secret_data(obj))
        self.extra_env = extra_env or {}
        self.extra_mounts = extra_mounts or []
        self.namespace = namespace
        self.volumes = {}
        self.containers = []   # names started, in order
        self.sidecars = []
        self.main = []
        self.ip = None

    # --- volumes -------------------------------------------------------------
    def _pod_security(self):
        return self.spec.get("securityContext") or {}

    def make_volumes(self):
        fs_group = self._pod_security().get("fsGroup")
        for volume in self.spec.get("volumes", []):
            name = volume["name"]
            if "emptyDir" in volume:
                path = os.path.join(self.root, "volumes", name)
                os.makedirs(path, exist_ok=True)
                if fs_group is not None:
                    os.chown(path, 0, fs_group)
                    os.chmod(path, 0o2777 if volume["emptyDir"].get("medium") else 0o2775)
                else:
                    os.chmod(path, 0o777)
            elif "hostPath" in volume:
                path = volume["hostPath"]["path"]
                kind = volume["hostPath"].get("type", "")
                if kind == "DirectoryOrCreate":
                    os.makedirs(path, exist_ok=True)
            elif "configMap" in volume or "secret" in volume:
                if "configMap" in volume:
                    ref = volume["configMap"]["name"]
                    obj = find(self.objects, "ConfigMap", ref)
                    if obj is None:
                        raise RuntimeError(f"volume {name}: no ConfigMap {ref} rendered")
                    data = obj.get("data") or {}
                    items = volume["configMap"].get("items")
                else:
                    ref = volume["secret"]["secretName"]
                    if ref not in self.secrets:
                        raise RuntimeError(f"volume {name}: no Secret {ref}")
                    data = self.secrets[ref]
                    items = volume["secret"].get("items")
                path = os.path.join(self.root, "volumes", name)
                os.makedirs(path, exist_ok=True)
                pairs = [(i["key"], i["path"]) for i in items] if items else [(k, k) for k in data]
                for key, rel in pairs:
                    target = os.path.join(path, rel)
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "w") as f:
                        f.write(data[key])
                    os.chmod(target, 0o644)
            else:
                raise RuntimeError(f"volume {name}: kind not supported here: {list(volume)}")
            self.volumes[name] = path

    # --- containers ----------------------------------------------------------
    def env_of(self, container):
        env = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                obj = find(self.objects, "ConfigMap", source["configMapRef"]["name"])
                env.update((obj or {}).get("data") or {})
            if "secretRef" in source:
                env.update(self.secrets.get(source["secretRef"]["name"], {}))
        for item in container.get("env", []):
            name = item["name"]
            if "value" in item:
                env[name] = str(item["value"])
            elif "valueFrom" in item:
                source = item["valueFrom"]
                if "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    value = self.secrets.get(ref["name"], {}).get(ref["key"])
                    if value is None:
                        if ref.get("optional"):
                            continue
                        raise RuntimeError(f"env {name}: no key {ref['key']} in Secret {ref['name']}")
                    env[name] = value
                elif "configMapKeyRef" in source:
                    ref = source["configMapKeyRef"]
                    obj = find(self.objects, "ConfigMap", ref["name"]) or {}
                    env[name] = (obj.get("data") or {})[ref["key"]]
                elif "fieldRef" in source:
                    field = source["fieldRef"]["fieldPath"]
                    env[name] = {"metadata.name": self.name, "metadata.namespace": self.namespace,
                                 "status.podIP": self.ip or ""}.get(field, "")
                elif "resourceFieldRef" in source:
                    continue
        env.update(self.extra_env.get(container["name"], {}))
        return env

    def security_args(self, container):
        pod = self._pod_security()
        ctx = container.get("securityContext") or {}
        args = []
        user = ctx.get("runAsUser", pod.get("runAsUser"))
        group = ctx.get("runAsGroup", pod.get("runAsGroup"))
        if user is not None:
            args += ["--user", f"{user}:{group if group is not None else user}"]
        for extra in [pod.get("fsGroup")] + list(pod.get("supplementalGroups") or []):
            if extra is not None:
                args += ["--group-add", str(extra)]
        if ctx.get("privileged"):
            args += [f"--cap-add={c}" for c in ALL_CAPS_BUT_SYS_RESOURCE]
            args += ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                     "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"]
            return args
        if ctx.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        caps = ctx.get("capabilities") or {}
        args += [f"--cap-drop={c}" for c in caps.get("drop", [])]
        args += [f"--cap-add={c}" for c in caps.get("add", [])]
        if ctx.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        seccomp = (ctx.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
        if seccomp == "Unconfined":
            args += ["--security-opt", "seccomp=unconfined"]
        return args

    def run_args(self, container, detach=True):
        cname = f"{self.name}-{container['name']}"
        args = ["run", "--name", cname, "--network", f"container:{self.name}-pause",
                "--label", "agentd.podtest=true", "--label", f"agentd.podtest.pod={self.name}"]
        if detach:
            args.append("-d")
        args += self.security_args(container)
        for mount in container.get("volumeMounts", []):
            source = self.volumes[mount["name"]]
            if mount.get("subPath"):
                source = os.path.join(source, mount["subPath"])
            spec = f"{source}:{mount['mountPath']}"
            if mount.get("readOnly"):
                spec += ":ro"
            args += ["-v", spec]
        for source, target in self.extra_mounts if container["name"] == "agentd" else []:
            args += ["-v", f"{source}:{target}:ro"]
        for key, value in self.env_of(container).items():
            args += ["-e", f"{key}={value}"]
        limits = (container.get("resources") or {}).get("limits") or {}
        if "memory" in limits:
            args += ["--memory", str(limits["memory"]).replace("Gi", "g").replace("Mi", "m")]
        if container.get("workingDir"):
            args += ["-w", container["workingDir"]]
        command = container.get("command")
        rest = list(container.get("args", []))
        if command:
            args += ["--entrypoint", command[0], container["image"], *command[1:], *rest]
        else:
            args += [container["image"], *rest]
        return cname, args

    def probe(self, container, probe, timeout):
        """Waits until `probe` (a Kubernetes probe) succeeds, up to `timeout` s."""
        cname = f"{self.name}-{container['name']}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.probe_once(cname, probe):
                return time.monotonic()
            state = docker("inspect", "-f", "{{.State.Running}}", cname, check=False).stdout.strip()
            if state == "false":
                raise RuntimeError(f"{cname} exited:\n{self.logs(container['name'])}")
            time.sleep(0.2)
        raise RuntimeError(f"{cname}: probe did not pass in {timeout} s:\n{self.logs(container['name'])}")

    def probe_once(self, cname, probe):
        if "exec" in probe:
            return docker("exec", cname, *probe["exec"]["command"], check=False).returncode == 0
        if "httpGet" in probe:
            return self.http_status(probe["httpGet"]) == 200
        if "tcpSocket" in probe:
            import socket
            try:
                with socket.create_connection((self.ip, self.port(probe["tcpSocket"]["port"])), 1):
                    return True
            except OSError:
                return False
        raise RuntimeError(f"probe kind not supported: {probe}")

    def port(self, port):
        if isinstance(port, int):
            return port
        for container in self.spec["containers"]:
            for p in container.get("ports", []):
                if p.get("name") == port:
                    return p["containerPort"]
        raise RuntimeError(f"no port named {port}")

    def http_status(self, get):
        url = f"http://{self.ip}:{self.port(get['port'])}{get.get('path', '/')}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def logs(self, container):
        out = docker("logs", "--tail", "60", f"{self.name}-{container}", check=False)
        return (out.stdout or "") + (out.stderr or "")

    def start(self, pause_image):
        """Starts the pod; returns seconds from the first container to ready."""
        self.make_volumes()
        began = time.monotonic()
        docker("run", "-d", "--name", f"{self.name}-pause", "--label", "agentd.podtest=true",
               "--label", f"agentd.podtest.pod={self.name}", "--entrypoint", "/bin/sleep",
               pause_image, "infinity")
        self.containers.append(f"{self.name}-pause")
        self.ip = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}",
                         f"{self.name}-pause").stdout.strip()
        for container in self.spec.get("initContainers", []):
            if container.get("restartPolicy") == "Always":
                cname, args = self.run_args(container)
                docker(*args)
                self.containers.append(cname)
                self.sidecars.append(cname)
                if "startupProbe" in container:
                    probe = container["startupProbe"]
                    self.probe(container, probe,
                               probe.get("failureThreshold", 3) * probe.get("periodSeconds", 10) + 30)
            else:
                cname, args = self.run_args(container, detach=False)
                args = ["run", "--rm"] + args[1:]
                out = docker(*args, check=False)
                if out.returncode != 0:
                    raise RuntimeError(f"init container {cname} failed ({out.returncode}):\n"
                                       f"{out.stdout[-2000:]}{out.stderr[-2000:]}")
        for container in self.spec["containers"]:
            cname, args = self.run_args(container)
            docker(*args)
            self.containers.append(cname)
            self.main.append(cname)
        for container in self.spec["containers"]:
            for kind in ("startupProbe", "readinessProbe"):
                if kind in container:
                    self.probe(container, container[kind], 180)
        return time.monotonic() - began

    def ready(self):
        """The first container's readiness probe, once."""
        container = self.spec["containers"][0]
        probe = container.get("readinessProbe")
        return bool(probe) and self.probe_once(f"{self.name}-{container['name']}", probe)

    def terminate(self, grace=None):
        """SIGTERM to the containers, up to the grace period, then the
        sidecars; returns each main container's exit code."""
        grace = self.spec.get("terminationGracePeriodSeconds", 30) if grace is None else grace
        codes = {}
        for cname in self.main:
            docker("stop", "-t", str(grace), cname, check=False, timeout=grace + 60)
            codes[cname] = int(docker("inspect", "-f", "{{.State.ExitCode}}", cname).stdout.strip())
        for cname in self.sidecars:
            docker("stop", "-t", "30", cname, check=False, timeout=120)
        return codes

    def kill(self):
        """The node is lost: every container killed at once."""
        for cname in reversed(self.containers):
            docker("kill", cname, check=False)

    def remove(self):
        for cname in reversed(self.containers):
            docker("rm", "-f", "-v", cname, check=False)
        subprocess.run(["rm", "-rf", self.root], check=False)


def remove_all_test_pods():
    ids = docker("ps", "-aq", "--filter", "label=agentd.podtest=true").stdout.split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)
