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
