#!/bin/bash
# agentd's PreToolUse hook, named by the sandbox's managed settings (which the
# repository cannot override). It hands the CLI's description of the tool call
# (JSON on stdin) to agentd outside the sandbox through a unix socket and
# waits for the answer. agentd decides on the call as the model asked for it
# in its answer (seen by agentd's gateway), not on what arrives here, and
# records the decision as an event. Anything but a plain "allow" denies the
# call: no answer, a malformed one, a socket error.
deny() {
  printf '%s\n' "${1:-agentd could not decide on this tool call, so it is denied}" >&2
  exit 2
}
answer=$(timeout 55 socat -t 55 -T 55 - "UNIX-CONNECT:@SOCKET@" 2>/dev/null | head -c 2048)
case $answer in
  allow) exit 0 ;;
  deny$'\t'*) deny "${answer#deny$'\t'}" ;;
  *) deny ;;
esac
