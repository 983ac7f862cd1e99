# Shared by the scripts in this folder: install what a fresh Debian machine with a
# running Docker engine lacks, and build agentd. Sourced, not run.

# Installs Debian packages that are missing (needs root, or sudo).
need_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Checks that the Docker engine answers.
need_docker() {
  if ! docker info >/dev/null 2>&1; then
    echo "error: the Docker engine is not reachable (is dockerd running, and may this user use it?)" >&2
    exit 1
  fi
}

# Builds agentd (profile: debug or release) and prints the binary's path.
# Builds (once per target directory) the S3-protocol server the tests run as a
# process: s3s-fs from crates.io, into target/tools; prints its path.
need_s3s() {
  local root="${CARGO_TARGET_DIR:-$PWD/target}/tools"
  local bin="$root/bin/s3s-fs"
  if [ ! -x "$bin" ]; then
    echo "building the S3 test server (s3s-fs)" >&2
    cargo install --quiet --locked s3s-fs@0.14.1 --features binary --root "$root" >&2
  fi
  echo "$bin"
}

build_agentd() {
  local profile=${1:-debug}
  local flag=()
  [ "$profile" = release ] && flag=(--release)
  cargo build --locked "${flag[@]}" --bin agentd >&2
  echo "${CARGO_TARGET_DIR:-$PWD/target}/$profile/agentd"
}

# Makes a git repository from examples/sample-repo in a fresh temp dir; prints its path.
make_sample_repo() {
  local dir
  dir=$(mktemp -d)/sample-repo
  cp -r examples/sample-repo "$dir"
  git -C "$dir" init --quiet -b main
  git -C "$dir" add .
  git -C "$dir" -c user.name=agentd-demo -c user.email=demo@localhost commit --quiet -m "Sample project"
  echo "$dir"
}

# Registers gVisor with the Docker engine as runtime $1 (default runsc): installs
# Debian's runsc if missing, adds the runtime to the engine's daemon.json with the
# arguments agentd's sandbox needs (--network=none: the sandbox has no network and
# gVisor refuses to run a container in the root network namespace otherwise;
# --host-uds=open: the sandbox reaches agentd's gateway through a bind-mounted unix
# socket), keeping every other setting of the file, then makes dockerd reload its
# runtimes (SIGHUP; running containers are not touched) and waits until the engine
# lists the runtime. Idempotent: a runtime already registered so is left alone.
need_runsc() {
  local name=${1:-runsc}
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  command -v python3 >/dev/null || need_packages python3
  need_packages runsc
  local path
  path=$(command -v runsc || echo /usr/bin/runsc)
  if runsc_registered "$name" "$path"; then
    return 0
  fi
  local pid config
  pid=$(dockerd_pid)
  config=$(dockerd_config_file "$pid")
  echo "registering gVisor with the Docker engine: runtime $name in $config" >&2
  $sudo python3 - "$config" "$name" "$path" <<'PY'
import json, os, sys, tempfile
config, name, path = sys.argv[1:4]
try:
    with open(config) as f:
        text = f.read()
    settings = json.loads(text) if text.strip() else {}
except FileNotFoundError:
    settings = {}
except ValueError as error:
    sys.exit(f"{config}: not valid JSON ({error}); fix it by hand")
if not isinstance(settings, dict):
    sys.exit(f"{config}: not a JSON object; fix it by hand")
runtimes = settings.setdefault("runtimes", {})
if not isinstance(runtimes, dict):
    sys.exit(f"{config}: \"runtimes\" is not an object; fix it by hand")
runtimes[name] = {"path": path, "runtimeArgs": ["--network=none", "--host-uds=open"]}
os.makedirs(os.path.dirname(config) or ".", exist_ok=True)
fd, scratch = tempfile.mkstemp(dir=os.path.dirname(config) or ".", prefix=".daemon.json.")
with os.fdopen(fd, "w") as f:
    json.dump(settings, f, indent=2)
    f.write("\n")
if os.path.exists(config):
    st = os.stat(config)
    os.chmod(scratch, st.st_mode & 0o7777)
else:
    os.chmod(scratch, 0o644)
os.replace(scratch, config)
PY
  $sudo kill -HUP "$pid"
  local waited=0
  until runsc_registered "$name" "$path"; do
    if [ "$waited" -ge 30 ]; then
      echo "error: dockerd did not load runtime $name from $config within 30 s (see dockerd's log: a reload fails as a whole on any invalid setting)" >&2
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  echo "runtime $name registered: docker run --runtime $name … now runs under gVisor" >&2
}

# True when the engine lists runtime $1 at path $2 with agentd's runtimeArgs.
runsc_registered() {
  docker info --format '{{json .Runtimes}}' 2>/dev/null | python3 -c '
import json, sys
name, path = sys.argv[1:3]
runtime = (json.load(sys.stdin) or {}).get(name) or {}
args = runtime.get("runtimeArgs") or []
ok = runtime.get("path") == path and "--network=none" in args and "--host-uds=open" in args
sys.exit(0 if ok else 1)' "$1" "$2"
}

# The process id of the local dockerd.
dockerd_pid() {
  local pid=""
  [ -r /var/run/docker.pid ] && pid=$(cat /var/run/docker.pid)
  if [ -z "$pid" ] || ! [ -d "/proc/$pid" ]; then
    pid=$(pidof dockerd | awk '{print $1}')
  fi
  if [ -z "$pid" ]; then
    echo "error: no local dockerd process found to reload (is the engine on another host?)" >&2
    return 1
  fi
  echo "$pid"
}

# The daemon.json dockerd $1 reads: its --config-file, else /etc/docker/daemon.json.
dockerd_config_file() {
  local config=/etc/docker/daemon.json
  local previous="" arg
  while IFS= read -r -d '' arg; do
    case "$arg" in
      --config-file=*) config=${arg#--config-file=} ;;
    esac
    [ "$previous" = --config-file ] && config=$arg
    previous=$arg
  done < "/proc/$1/cmdline"
  echo "$config"
}

# The helm tools in a venv under target/ (helm-python-sdk: Helm's own Go library;
# kubernetes-validate; checkov), installed on first use; prints the venv's path.
need_helm_venv() {
  need_packages python3-venv >&2
  local venv=${CARGO_TARGET_DIR:-$PWD/target}/helm-venv
  local pins=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 checkov==3.3.30)
  local stamp=$venv/.pins
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
    echo "installing ${pins[*]} into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}" >&2
    echo "${pins[*]}" > "$stamp"
  fi
  echo "$venv"
}
