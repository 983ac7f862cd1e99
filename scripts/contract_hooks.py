"""schemathesis hooks for scripts/contract: the world the contract runs in.

A request's `repo` must name a repository this tenant may use and that exists
(a policy's allow-list, the host's file system, DNS); `replay` must name an
execution this tenant recorded; a key's `expires_at` must lie in the future;
a `branch_template` may use `{agent_id}` or `{task_id}` only when the request
gives them, and must make a name of at most 255 bytes. No schema states any
of these, so for this run the document is narrowed to the one repository the
run prepared, to no replay and to keys without expiry, and requests carry no
`branch_template` (no narrower pattern is also exact: templates outside one
are valid too; branch naming has its own tests, `src/execution/branch.rs`
and `tests/api`) and no `merge_into` (a branch name, and only with `push`:
tested in `src/execution/request.rs` and `tests/api/delivery.rs`), and a
webhook's `url` is one fixed URL (`tests/api/webhooks.rs` tests the rules):
valid requests are then valid in this world too, and anything else generated
for those fields is a negative case the API must refuse.
"""

import os

import requests
import schemathesis

REPO = os.environ["AGENTD_CONTRACT_REPO"]


@schemathesis.hook
def before_load_schema(context, raw_schema):
    request = raw_schema["components"]["schemas"]["ExecutionRequest"]["properties"]
    request["repo"] = {"type": "string", "enum": [REPO]}
    request["replay"] = {"type": "null"}
    del request["branch_template"]
    del request["merge_into"]
    # A follow-up's `replay` and `merge_into` follow the same rules.
    follow_up = raw_schema["components"]["schemas"]["FollowUpRequest"]["properties"]
    follow_up["replay"] = {"type": "null"}
    del follow_up["merge_into"]
    raw_schema["components"]["schemas"]["NewKey"]["properties"]["expires_at"] = {"type": "null"}
    # A branch name has rules no pattern states exactly (git check-ref-format).
    del raw_schema["components"]["schemas"]["GitPolicy"]["properties"]["merge_into"]
    # Any http(s) URL the pattern admits is not one the URL parser reads
    # (`http://[`); the endpoint's address rules have their own tests.
    raw_schema["components"]["schemas"]["NewWebhook"]["properties"]["url"] = {
        "type": "string", "enum": ["http://127.0.0.1:9/contract-hook"]}


@schemathesis.hook
def after_call(context, case, response):
    """An execution the run created (or a follow-up of one) is cancelled at
    once (claiming is paused, so it never starts): it is final, so its event
    stream replays and ends instead of waiting for work that will never run."""
    if case.operation.method.upper() != "POST" or case.operation.path not in (
            "/v1/executions", "/v1/executions/{id}/follow-ups"):
        return
    if response.status_code != 202:
        return
    execution = response.json()["id"]
    requests.post(
        f"{os.environ['AGENTD_CONTRACT_URL']}/v1/executions/{execution}/cancel",
        headers={"Authorization": f"Bearer {os.environ['AGENTD_CONTRACT_KEY']}"},
        timeout=10,
    ).raise_for_status()
