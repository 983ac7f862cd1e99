# agentd's in-container driver. It runs as the container's root user with only
# the capabilities needed to switch users (SETUID, SETGID, SETPCAP; no file,
# kill or trace powers), under the container's init, with no network. Every
# step that touches the workspace or runs the agent runs as the agent's uid
# with no capabilities at all, so the agent cannot trace, signal or write
# through the driver, the init or the output relay.
#
# Modes:
#   run <agent argv…>  connect the model socket, clone the repository from the
#                      read-only mirror, run the agent, then collect
#   collect            only collect (used after the agent container was killed)
#   template           check the repository out into a checkout template at
#                      /template (see engine::layers)
#   collect-inside     (internal) the collection itself, as the agent's uid
#   relay              (internal, and for tests) the output relay on stdin
#
# Channels: the container's stderr belongs to this driver alone (`::agentd::
# key=value` lines); the agent's stdout and stderr both go through a relay
# into the container's stdout, which bounds their volume and always keeps the
# end of the stream.
# Inputs (environment): AGENTD_BASE (commit), AGENTD_BRANCH, AGENTD_LLM_PORT,
# AGENTD_COMMIT_MESSAGE, AGENTD_GIT_NAME, AGENTD_GIT_EMAIL, AGENTD_AGENT_UID,
# AGENTD_COLLECT_GID, AGENTD_OUTPUT_BUDGET (bytes), AGENTD_MAX_FILE_BYTES, and
# optionally AGENTD_CONTEXT (written to ~/.claude/CLAUDE.md),
# AGENTD_HOOK_0, _1, … (lifecycle hooks, in order: `stage index seconds
# fail|warn base64-command`), AGENTD_SESSION_PROJECT (the CLI's folder name for
# its working directory), AGENTD_RESUME_SESSION (a follow-up: the session whose
# transcript is at /run/agentd-resume/session.jsonl) and AGENTD_STDIN=1
# (streaming input: the container's stdin, written by agentd alone, is the
# agent's), AGENTD_TEMPLATE=1 (/workspace/repo is an overlay already checked
# out at the base, with its index).
set -u

repo=/workspace/repo
state=/workspace/.agentd
out=$state/out
uid=${AGENTD_AGENT_UID:-10001}
collect_gid=${AGENTD_COLLECT_GID:-10002}

say() { printf '::agentd:: %s\n' "$*" >&2; }
die() { say "error=$*"; exit 90; }

# Runs a command as the agent: its uid, no supplementary groups, no capabilities.
as_agent() {
  setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=-all --bounding-set=-all -- "$@"
}

# Runs a command as the collector: the agent's uid plus the group that may use
# the workspace's reserved blocks (so a full workspace can still be committed).
as_collector() {
  setpriv --reuid="$uid" --regid="$uid" --groups="$collect_gid" --inh-caps=-all --bounding-set=-all -- "$@"
}

# Runs a setup step as the agent; on failure prints the end of its stderr.
agent_step() {
  local err
  if ! err=$(as_agent "$@" 2>&1 >/dev/null </dev/null); then
    printf '%s' "${err: -500}"
    return 1
  fi
}

# Kills every process of the agent's uid (they may outlive the CLI and meddle
# with the workspace or the output while results are collected), until none is
# left alive (zombies waiting to be reaped do not count).
stop_agent_processes() {
  as_agent /bin/bash -c '
    me=$(id -u)
    for _ in $(seq 1 200); do
      kill -KILL -1 2>/dev/null || exit 0
      alive=0
      for status in /proc/[0-9]*/status; do
        [ "$status" = "/proc/$$/status" ] && continue
        while read -r key value _; do
          case $key in
            State:) [ "$value" = Z ] && break ;;
            Uid:) [ "$value" = "$me" ] && alive=1; break ;;
          esac
        done <"$status" 2>/dev/null
      done
      [ "$alive" -eq 0 ] && exit 0
      sleep 0.01
    done
    exit 1' </dev/null >/dev/null 2>&1 || say "warning=agent processes survived being killed"
  if [ -n "${socat_pid:-}" ]; then
    wait "$socat_pid" 2>/dev/null
    socat_pid=
  fi
}

# Copies stdin to stdout until AGENTD_OUTPUT_BUDGET bytes (or AGENTD_OUTPUT_LINES
# lines) have passed, then
# keeps only the last lines (up to 1 MiB) and writes them at the end, so the
# agent's final report is never lost however much it printed before.
relay() {
  perl -e '
    use strict; use warnings;
    my ($budget, $max_lines, $keep) = @ARGV;
    binmode STDIN; binmode STDOUT;
    my ($passed, $passed_lines, $tail, $dropped, $lines) = (0, 0, "", 0, 0);
    sub put { my $b = shift; while (length $b) { my $n = syswrite(STDOUT, $b); return unless defined $n; substr($b, 0, $n) = ""; } }
    sub trim { my $limit = shift; return if length $tail <= $limit;
      my $cut = length($tail) - $limit; my $nl = index($tail, "\n", $cut);
      $cut = $nl < 0 ? length $tail : $nl + 1;
      my $gone = substr($tail, 0, $cut, ""); $dropped += length $gone; $lines += ($gone =~ tr/\n//); }
    while (1) {
      my $n = sysread(STDIN, my $buf, 65536);
      if (!defined $n) { next if $!{EINTR}; last; }
      last if $n == 0;
      if ($passed < $budget) {
        my $room = $budget - $passed;
        my $count = ($buf =~ tr/\n//);
        if (length $buf <= $room && $passed_lines + $count <= $max_lines) {
          put($buf); $passed += length $buf; $passed_lines += $count; next;
        }
        my $end = length $buf < $room ? length $buf : $room;
        my $nl = rindex($buf, "\n", $end - 1);
        while ($nl >= 0 && $passed_lines + (substr($buf, 0, $nl + 1) =~ tr/\n//) > $max_lines) {
          $nl = $nl > 0 ? rindex($buf, "\n", $nl - 1) : -1;
        }
        my $head = $nl < 0 ? "" : substr($buf, 0, $nl + 1);
        put($head); $passed = $budget; $buf = substr($buf, length $head);
      }
      $tail .= $buf; trim(2 * $keep) if length $tail > 4 * $keep;
    }
    trim($keep);
    print STDERR "::agentd:: output_dropped=$dropped $lines\n" if $dropped;
    put($tail);
  ' "${AGENTD_OUTPUT_BUDGET:-33554432}" "${AGENTD_OUTPUT_LINES:-100000}" 1048576
}

# Passes a hook's output on as the driver's `hook_output=STAGE INDEX LINE`
# lines: at most 1000 lines and 64 KiB per hook (then how much was dropped).
hook_output() {
  perl -e '
    use strict; use warnings;
    my ($stage, $index) = @ARGV;
    my ($lines, $bytes, $dropped_lines, $dropped_bytes) = (0, 0, 0, 0);
    binmode STDIN; binmode STDERR;
    while (my $line = <STDIN>) {
      $line =~ s/\r?\n\z//;
      $line = substr($line, 0, 4096);
      if ($lines < 1000 && $bytes + length($line) <= 65536) {
        print STDERR "::agentd:: hook_output=$stage $index $line\n";
        $lines++; $bytes += length $line;
      } else { $dropped_lines++; $dropped_bytes += length $line; }
    }
    print STDERR "::agentd:: warning=hook $stage $index printed $dropped_lines more lines ($dropped_bytes bytes), not kept\n" if $dropped_lines;
  ' "$1" "$2"
}

# Runs the hooks of one stage in order (AGENTD_HOOK_0, _1, …), each as the
# agent, entering the repository as the agent, within its time limit. Its
# output goes to a file in a folder only root can reach, read once the hook
# ended (a process the hook left running cannot hold the driver). Stops at
# the first failure whose policy is `fail`: prints why and returns 1.
run_hooks() {
  local stage=$1 n var line hstage index seconds policy encoded command start rc ms dir
  dir=$(mktemp -d /tmp/agentd-hooks.XXXXXX) || { printf 'cannot make a folder for hook output'; return 1; }
  for n in $(seq 0 15); do
    var=AGENTD_HOOK_$n
    line=${!var:-}
    [ -n "$line" ] || break
    read -r hstage index seconds policy encoded <<<"$line"
    [ "$hstage" = "$stage" ] || continue
    if ! command=$(printf '%s' "$encoded" | base64 -d 2>/dev/null); then
      printf '%s hook %s cannot be read' "$stage" "$index"
      return 1
    fi
    say "hook_started=$stage $index"
    start=$(date +%s%N)
    as_agent timeout --kill-after=5 "$seconds" /bin/bash -c 'cd -- "$0" || exit 97; eval "$1"' \
      "$repo" "$command" </dev/null >"$dir/out" 2>&1
    rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    hook_output "$stage" "$index" <"$dir/out"
    rm -f "$dir/out"
    say "hook_finished=$stage $index $rc $ms"
    if [ "$rc" -ne 0 ] && [ "$policy" != warn ]; then
      if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        printf '%s hook %s ran out of its %s s' "$stage" "$index" "$seconds"
      else
        printf '%s hook %s exited with code %s' "$stage" "$index" "$rc"
      fi
      return 1
    fi
  done
  return 0
}

# True when the repository is the overlay agentd layered over a checkout
# template. An engine in another mount namespace than agentd's binds an empty
# folder instead (or none), and committing that would remove every file.
repo_is_overlay() {
  [ "$(stat -f -c %T "$repo" 2>/dev/null)" = overlayfs ]
}

# The agent's HEAD commit, read without running git on its repository (whose
# configuration the agent controls); fails when it cannot be read plainly.
agent_head() {
  local g=$repo/.git h ref
  [ -d "$g" ] && [ -f "$g/HEAD" ] || return 1
  h=$(head -c 256 "$g/HEAD")
  case $h in
    "ref: "*)
      ref=${h#ref: }
      ref=${ref%%[[:space:]]*}
      case $ref in refs/heads/*) ;; *) return 1 ;; esac
      case $ref in *..* | */.* | *//*) return 1 ;; esac
      if [ -f "$g/$ref" ]; then
        h=$(head -c 64 "$g/$ref")
      elif [ -f "$g/packed-refs" ]; then
        h=$(head -c 16777216 "$g/packed-refs" | awk -v r="$ref" '$2 == r { print $1; exit }')
      else
        return 1
      fi
      ;;
  esac
  h=${h%%[[:space:]]*}
  [[ $h =~ ^[0-9a-f]{40}$ ]] || return 1
  printf '%s' "$h"
}

# The collection, as the agent's uid with the collect group, in a git
# directory of its own: the repository's configuration, hooks, attributes
# filters, replace refs and fsmonitor never apply. Leaves in $out: head,
# branch.bundle (when there are commits), left-out (size TAB path NUL per file
# too large to collect) and done.
collect_inside() {
  export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_NO_REPLACE_OBJECTS=1 \
    GIT_ATTR_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 GIT_OPTIONAL_LOCKS=0 \
    HOME=/nonexistent XDG_CONFIG_HOME=/nonexistent \
    GIT_AUTHOR_NAME="$AGENTD_GIT_NAME" GIT_AUTHOR_EMAIL="$AGENTD_GIT_EMAIL" \
    GIT_COMMITTER_NAME="$AGENTD_GIT_NAME" GIT_COMMITTER_EMAIL="$AGENTD_GIT_EMAIL"
  unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES \
    GIT_CONFIG GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT GIT_EXEC_PATH GIT_SSH GIT_SSH_COMMAND GIT_EXTERNAL_DIFF
  if [ -L "$state" ] || [ ! -d "$state" ]; then
    rm -rf "$state" && mkdir -p "$state" || { echo "cannot create $state"; return 1; }
  fi
  rm -rf "$out" "$state/collect.git"
  mkdir -p "$out" || { echo "cannot create $out"; return 1; }
  [ -d "$repo" ] || { echo "no repository to collect from"; return 1; }
  # A layered workspace (its writable layer is there) whose overlay is not.
  if [ -d /workspace/.layer ] && ! repo_is_overlay; then
    echo "the layered repository is not in the sandbox: nothing is committed"
    return 1
  fi

  local t=$state/collect.git
  git init --quiet --bare "$t" || { echo "cannot create the collection repository"; return 1; }
  printf '%s\n' "$repo/.git/objects" /mirror/repo.git/objects >"$t/objects/info/alternates"
  local key value
  while read -r key value; do
    git --git-dir="$t" config "$key" "$value"
  done <<'CONFIG'
core.bare false
core.hooksPath /dev/null
core.fsmonitor false
core.untrackedCache false
core.autocrlf false
core.safecrlf false
core.symlinks true
core.quotePath false
gc.auto 0
maintenance.auto false
CONFIG
  export GIT_DIR=$t GIT_WORK_TREE=$repo

  local head
  head=$(agent_head) && git cat-file -e "$head^{commit}" 2>/dev/null || {
    [ -e "$repo/.git" ] && echo "the agent's HEAD cannot be read; its work is committed on the base"
    head=$AGENTD_BASE
  }
  git read-tree "$head" || { echo "cannot read the tree of $head"; return 1; }

  # Files over the size limit are not collected (a file the base already had
  # at the same size is taken as unchanged).
  local max=${AGENTD_MAX_FILE_BYTES:-104857600} size path
  : >"$out/left-out"
  : >"$state/pathspec"
  printf '.\0' >"$state/pathspec"
  while IFS=$'\t' read -r -d '' size path; do
    if [ "$(git cat-file -s "$head:$path" 2>/dev/null)" = "$size" ]; then continue; fi
    printf '%s\t%s\0' "$size" "$path" >>"$out/left-out"
    printf ':(exclude,literal)%s\0' "$path" >>"$state/pathspec"
  done < <(cd "$repo" && find . \( -name .git -prune \) -o \( -type f -size "+${max}c" -printf '%s\t%P\0' \))

  git add --all --ignore-errors --pathspec-from-file="$state/pathspec" --pathspec-file-nul \
    2>"$state/add.err" || echo "git add: $(head -c 300 "$state/add.err"); what could be read was committed"
  local tree commit
  tree=$(git write-tree) || { echo "cannot write the tree"; return 1; }
  if [ "$tree" = "$(git rev-parse "$head^{tree}")" ]; then
    commit=$head
  else
    commit=$(printf '%s' "$AGENTD_COMMIT_MESSAGE" | git commit-tree "$tree" -p "$head") \
      || { echo "cannot commit"; return 1; }
  fi
  git update-ref "refs/heads/$AGENTD_BRANCH" "$commit" || { echo "cannot set the branch"; return 1; }
  printf '%s\n' "$commit" >"$out/head"
  if [ "$commit" != "$AGENTD_BASE" ]; then
    git bundle create --quiet "$out/branch.bundle" "refs/heads/$AGENTD_BRANCH" "^$AGENTD_BASE" \
      || { echo "cannot create the bundle"; return 1; }
  fi
  : >"$out/done"
}

collect() {
  stop_agent_processes
  local messages rc line
  messages=$(
    as_collector /bin/bash -c "$BASH_EXECUTION_STRING" agentd-driver collect-inside 2>&1 </dev/null \
      | head -c 4000
    exit "${PIPESTATUS[0]}"
  )
  rc=$?
  while IFS= read -r line; do
    [ -n "$line" ] && say "warning=collecting: ${line:0:300}"
  done <<<"$messages"
  if [ "$rc" -eq 0 ]; then say phase=collected; else say "error=collecting results failed"; fi
  report_workspace
  return "$rc"
}

# The workspace's size, use and space left for the agent, as the kernel sees it.
report_workspace() {
  local fields
  fields=$(df -B1 --output=size,used,avail /workspace 2>/dev/null | tail -n 1) \
    && say "workspace=$(printf '%s' "$fields" | tr -s ' ' | sed 's/^ //')"
}

# True when a setup hook is to run (AGENTD_HOOK_n lines start with the stage).
has_setup_hooks() {
  local n var
  for n in $(seq 0 15); do
    var=AGENTD_HOOK_$n
    [ -n "${!var:-}" ] || return 1
    [ "${!var%% *}" = setup ] && return 0
  done
  return 1
}

# Opens the model's door: a relay from the agent's loopback port to agentd's
# socket, as the agent (see await_door).
open_door() {
  # nodelay: without it socat's small writes of a streamed answer wait for the
  # client's delayed ACK, ~40 ms per model request (scripts/bench-gateway).
  as_agent socat "TCP-LISTEN:$AGENTD_LLM_PORT,bind=127.0.0.1,fork,reuseaddr,nodelay" \
    UNIX-CONNECT:/run/agentd/llm.sock </dev/null >/dev/null 2>&1 &
  socat_pid=$!
}

# Returns once the model's door listens (at most 5 s).
await_door() {
  local i
  for i in $(seq 1 250); do
    (exec 3<>"/dev/tcp/127.0.0.1/$AGENTD_LLM_PORT") 2>/dev/null && break
    sleep 0.02
  done
}

run() {
  local err
  # The CLI keeps its session transcripts under ~/.claude/projects: a link to
  # the workspace volume, so they outlive the container (a time limit kills
  # it) and the collection can hand them back for a follow-up to resume.
  err=$(agent_step /bin/bash -c 'mkdir -p "$0" "$1" "$2" "$HOME/.claude" && ln -sfn "$2" "$HOME/.claude/projects"' \
    "$out" "$state/artifacts" "$state/sessions") || die "cannot create $state: $err"
  # Setup hooks run before the model's door opens (they reach nothing);
  # without them it opens now, while the repository is made ready.
  has_setup_hooks || open_door
  say phase=cloning
  if [ "${AGENTD_TEMPLATE:-}" = 1 ]; then
    # The repository is an overlay over a checkout of the base (with its
    # index): only the clone's git folder is added (cloned within .git, a
    # path no tree can hold, so it is a rename away), and the branch set.
    repo_is_overlay && [ -f "$repo/.git/index" ] \
      || die "the layered repository is not in the sandbox (agentd's mounts are not visible to the Docker engine: run agentd in the engine's mount namespace, or --checkout-templates off)"
    err=$(agent_step /bin/bash -c 'set -e
      git clone --quiet --shared --no-checkout /mirror/repo.git "$0/.git/agentd-clone"
      mv "$0/.git/agentd-clone/.git/"* "$0/.git/"
      rm -rf "$0/.git/agentd-clone"
      git -C "$0" update-ref "refs/heads/$1" "$2"
      git -C "$0" symbolic-ref HEAD "refs/heads/$1"
      git -C "$0" config user.name "$3"
      git -C "$0" config user.email "$4"' \
      "$repo" "$AGENTD_BRANCH" "$AGENTD_BASE" "$AGENTD_GIT_NAME" "$AGENTD_GIT_EMAIL") \
      || die "git clone from the mirror failed: $err"
  else
    err=$(agent_step git clone --quiet --shared --no-checkout \
      -c "user.name=$AGENTD_GIT_NAME" -c "user.email=$AGENTD_GIT_EMAIL" /mirror/repo.git "$repo") \
      || die "git clone from the mirror failed: $err"
    # -B: the branch may be named like one the clone already has (its default
    # branch, say); in this throwaway clone it simply starts at the base.
    err=$(agent_step git -C "$repo" checkout --quiet -B "$AGENTD_BRANCH" "$AGENTD_BASE") \
      || die "checkout of $AGENTD_BASE failed: $err"
  fi
  if [ -n "${AGENTD_CONTEXT:-}" ]; then
    # Project instructions as user memory: the CLI reads it, the diff never sees it.
    err=$(agent_step /bin/bash -c 'mkdir -p "$HOME/.claude" && printf "%s\n" "$AGENTD_CONTEXT" >"$HOME/.claude/CLAUDE.md"') \
      || die "cannot write the context file: $err"
  fi
  unset AGENTD_CONTEXT
  if [ -n "${AGENTD_RESUME_SESSION:-}" ]; then
    [[ $AGENTD_RESUME_SESSION =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] \
      && [[ ${AGENTD_SESSION_PROJECT:-} =~ ^-[A-Za-z0-9-]+$ ]] || die "invalid session to resume"
    err=$(agent_step /bin/bash -c 'mkdir -p "$0" && cp /run/agentd-resume/session.jsonl "$0/$1.jsonl"' \
      "$state/sessions/$AGENTD_SESSION_PROJECT" "$AGENTD_RESUME_SESSION") \
      || die "cannot place the session to resume: $err"
  fi
  err=$(run_hooks setup) || die "setup_failed: $err"
  [ -n "${socat_pid:-}" ] || open_door
  await_door
  say phase=agent
  local relay_fd relay_pid agent rc
  exec {relay_fd}> >(relay)
  relay_pid=$!
  if [ "${AGENTD_STDIN:-}" = 1 ]; then
    # A background command's stdin would be /dev/null: hand it on by name.
    local input_fd
    exec {input_fd}<&0
    as_agent "$@" <&"$input_fd" >&"$relay_fd" 2>&1 {relay_fd}>&- {input_fd}<&- &
    exec {input_fd}<&-
  else
    as_agent "$@" </dev/null >&"$relay_fd" 2>&1 {relay_fd}>&- &
  fi
  agent=$!
  wait "$agent"
  rc=$?
  say agent_exit=$rc
  stop_agent_processes
  exec {relay_fd}>&-
  wait "$relay_pid"
  if ! err=$(run_hooks teardown); then
    say "teardown_failed=$err"
  fi
  stop_agent_processes
  say phase=collecting
  collect
  exit "$rc"
}

# Checks the repository out at AGENTD_BASE into the checkout template mounted
# at /template, as the agent: the tree in tree/repo, its index alone in
# tree/repo/.git (each workspace layered over it adds the rest).
template() {
  local err
  err=$(agent_step /bin/bash -c 'set -e
    t=/template
    mkdir -p "$t/tree/repo"
    git clone --quiet --shared --no-checkout /mirror/repo.git "$t/clone"
    git --git-dir="$t/clone/.git" --work-tree="$t/tree/repo" checkout --quiet --detach "$0"
    # Entries as new as their index are "racily clean": git reads them again
    # on every status until the index is written in a later second. This
    # tree is never written again (the template is read-only from here on),
    # so its index is dated a second on, and its stat data stands.
    touch -m -d "@$(($(date +%s) + 1))" "$t/clone/.git/index"
    mkdir "$t/tree/repo/.git"
    mv "$t/clone/.git/index" "$t/tree/repo/.git/index"
    rm -rf "$t/clone"' "$AGENTD_BASE") || die "checkout template: $err"
  say phase=template
}

mode=${1:-}
shift || true
case "$mode" in
  run) run "$@" ;;
  collect) collect; exit $? ;;
  collect-inside) collect_inside; exit $? ;;
  relay) relay; exit $? ;;
  template) template; exit $? ;;
  *) die "unknown driver mode '$mode'" ;;
esac
