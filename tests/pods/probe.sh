# The attacker's side of the pod boundary (issue 12): what an agent in a sandbox of the
# dind pod tries. Each line: `<attack>: <what happened>`; written into the work so the
# test reads it from the diff. Run by the scripted model's first Bash call.
probe() {
  local found
  found=$(find / -xdev \( -name 'docker.sock' -o -name 'containerd.sock' \) 2>/dev/null | head -3)
  for sock in /run/agentd-engine/docker.sock /var/run/docker.sock $found; do
    if [ -S "$sock" ]; then
      if printf 'GET /containers/json HTTP/1.0\r\n\r\n' | timeout 3 socat - "UNIX-CONNECT:$sock" 2>/dev/null | grep -q '^HTTP/1.[01] 200'; then
        echo "engine socket: REACHED $sock"; return
      fi
      echo "engine socket: VISIBLE $sock"; return
    fi
  done
  echo "engine socket: none"
}
probe
for target in "127.0.0.1/8700" "${DB:-127.0.0.1/5432}"; do
  if timeout 3 bash -c "exec 3<>/dev/tcp/$target" 2>/dev/null; then
    echo "tcp $target: REACHED"
  else
    echo "tcp $target: refused"
  fi
done
if ls /var/lib/agentd/mirrors /var/lib/agentd/executions >/dev/null 2>&1; then
  echo "data dir: READABLE"
else
  echo "data dir: absent"
fi
if env | grep -Eq 'AGENTD_ADMIN_TOKEN|AGENTD_SECRET_KEY|DATABASE_URL|ANTHROPIC_API_KEY=sk'; then
  echo "secrets in env: FOUND"
else
  echo "secrets in env: none"
fi
