# agentd's in-container driver. Runs as the sandbox's non-root user under the
# container's init, with no network. Two modes:
#   run <agent argv…>  connect the model socket, clone the repository from the
#                      read-only mirror, run the agent, then collect
#   collect            only collect (used after the agent container was killed)
# Its own messages go to stderr as `::agentd:: key=value`; stdout is the agent's.
# Inputs (environment): AGENTD_BASE (commit), AGENTD_BRANCH, AGENTD_LLM_PORT,
# AGENTD_COMMIT_MESSAGE, AGENTD_GIT_NAME, AGENTD_GIT_EMAIL, and optionally
# AGENTD_CONTEXT (written to ~/.claude/CLAUDE.md).
set -u

repo=/workspace/repo
state=/workspace/.agentd
out=$state/out

say() { printf '::agentd:: %s\n' "$*" >&2; }
die() { say "error=$*"; exit 90; }

collect() {
  mkdir -p "$out" || { say "error=cannot create $out"; return 1; }
  rm -f "$out/done" "$out/changes.diff" "$out/files" "$out/head" "$out/branch.bundle"
  cd "$repo" 2>/dev/null || { say "error=no repository to collect from"; return 1; }
  local g="git -c core.hooksPath=/dev/null -c core.fsmonitor=false"
  $g add --all . >/dev/null 2>"$state/add.err" || say "warning=git add failed: $(head -c 300 "$state/add.err")"
  if ! $g diff --cached --quiet --no-ext-diff 2>/dev/null; then
    $g -c user.name="$AGENTD_GIT_NAME" -c user.email="$AGENTD_GIT_EMAIL" \
      commit --quiet --no-verify --no-gpg-sign -m "$AGENTD_COMMIT_MESSAGE" >/dev/null \
      || say "warning=git commit failed"
  fi
  local head
  head=$($g rev-parse --verify HEAD) || { say "error=repository has no HEAD"; return 1; }
  if [ "$($g symbolic-ref -q HEAD)" != "refs/heads/$AGENTD_BRANCH" ]; then
    $g update-ref "refs/heads/$AGENTD_BRANCH" "$head" || say "warning=cannot move $AGENTD_BRANCH"
  fi
  $g diff --binary --no-color --no-ext-diff --no-textconv --full-index "$AGENTD_BASE" "$head" \
    >"$out/changes.diff" || say "warning=git diff failed"
  $g diff --name-status -z --no-renames --no-ext-diff "$AGENTD_BASE" "$head" >"$out/files" \
    || say "warning=git diff --name-status failed"
  printf '%s\n' "$head" >"$out/head"
  if [ "$head" != "$AGENTD_BASE" ]; then
    $g bundle create --quiet "$out/branch.bundle" "refs/heads/$AGENTD_BRANCH" "^$AGENTD_BASE" \
      2>"$state/bundle.err" || say "warning=git bundle failed: $(head -c 300 "$state/bundle.err")"
  fi
  : >"$out/done"
  say phase=collected
}

run() {
  mkdir -p "$out" "$state/artifacts" || die "cannot create $state"
  # nodelay: without it socat's small writes of a streamed answer wait for the
  # client's delayed ACK, ~40 ms per model request (scripts/bench-gateway).
  socat "TCP-LISTEN:$AGENTD_LLM_PORT,bind=127.0.0.1,fork,reuseaddr,nodelay" UNIX-CONNECT:/run/agentd/llm.sock \
    2>"$state/socat.err" &
  say phase=cloning
  git clone --quiet --shared --no-checkout /mirror/repo.git "$repo" 2>"$state/clone.err" \
    || die "git clone from the mirror failed: $(head -c 500 "$state/clone.err")"
  cd "$repo" || die "cannot enter $repo"
  git checkout --quiet -b "$AGENTD_BRANCH" "$AGENTD_BASE" 2>"$state/checkout.err" \
    || die "checkout of $AGENTD_BASE failed: $(head -c 500 "$state/checkout.err")"
  git config user.name "$AGENTD_GIT_NAME"
  git config user.email "$AGENTD_GIT_EMAIL"
  if [ -n "${AGENTD_CONTEXT:-}" ]; then
    # Project instructions as user memory: the CLI reads it, the diff never sees it.
    mkdir -p "$HOME/.claude" && printf '%s\n' "$AGENTD_CONTEXT" >"$HOME/.claude/CLAUDE.md" \
      || die "cannot write the context file"
  fi
  unset AGENTD_CONTEXT
  local i
  for i in $(seq 1 250); do
    (exec 3<>"/dev/tcp/127.0.0.1/$AGENTD_LLM_PORT") 2>/dev/null && break
    sleep 0.02
  done
  say phase=agent
  "$@"
  local rc=$?
  say agent_exit=$rc
  say phase=collecting
  collect || say "error=collecting results failed"
  exit "$rc"
}

mode=${1:-}
shift || true
case "$mode" in
  run) run "$@" ;;
  collect) collect; exit $? ;;
  *) die "unknown driver mode '$mode'" ;;
esac
