"""While the operator's watch of GatePolicies is down, its view may miss a policy tightened meanwhile: the
decision to deploy reads the policies from the API instead, and holds, saying why, if it cannot.

Driven as a user would: the API refuses the operator's GatePolicy watch (RBAC lost for it, say), an admin
tightens the policy with kubectl, and two approvers approve a Promotion the old policy would have let go.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator

import pytest

from lockgate.devcluster import server, world
from lockgate.handlers import testing
from tests.lifecycle import manifests
from tests.metrics.test_scrape import REPO

ADD_NO_HIGH = {  # web-2's scan has one high vulnerability
    "op": "add",
    "path": "/spec/rules/-",
    "value": {
        "name": "no-high-vulnerabilities",
        "expression": "promotion.spec.evidence.securityScan.high == 0",
        "message": "during the audit, images with high vulnerabilities may not ship",
    },
}


class PolicyAccess:
    """The API's answers to the operator's requests for ``resource``: its watch (``watch``) and its fresh reads."""

    def __init__(self, resource: str) -> None:
        self.resource = resource
        self.watch = "served"  # "cut": every stream ends after 1.5 s; "refused": 403
        self.fresh_reads = "served"
        self.refused = 0

    def __call__(self, record: server.RequestRecord) -> server.Fault | None:
        if record.user != world.OPERATOR_USERNAME or record.resource != self.resource:
            return None
        fresh = "(fresh gatepolicies)" in record.user_agent or "(fresh namespace)" in record.user_agent
        mode = self.fresh_reads if fresh else self.watch
        if mode == "cut" and record.verb == "watch":
            return server.Fault(drop_watch_after=1.5)
        if mode == "refused":
            self.refused += 1
            return server.Fault(code=403, reason="Forbidden", message=f"injected: {self.resource} is forbidden")
        return None


@contextlib.contextmanager
def watch_refused(resource: str) -> Iterator[tuple[testing.Stack, PolicyAccess]]:
    """A running operator whose watch of ``resource`` has just been cut and is now refused."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH: these tests apply manifests with the real kubectl")
    access = PolicyAccess(resource)
    with testing.stack(operator=False) as stack:
        stack.cluster.cluster.fault_hook = access
        stack.kubectl("apply", "-f", str(REPO / "examples" / "gatepolicy-production.yaml"))
        access.watch = "cut"
        stack.start_operator()
        stack.apply(manifests.promotion(), context="alice")
        stack.wait_phase("web-2", "AwaitingApproval")  # the operator holds the policy
        access.watch = "refused"
        stack.wait_for(lambda: access.refused >= 2, message=f"the {resource} watch refused")
        yield stack, access


@pytest.fixture
def outage() -> Iterator[tuple[testing.Stack, PolicyAccess]]:
    with watch_refused("gatepolicies") as running:
        yield running


def approve(stack: testing.Stack) -> None:
    stack.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    stack.apply(manifests.approval("web-2-carol", "web-2"), context="carol")


def no_deploy(stack: testing.Stack) -> None:
    assert stack.image() == "registry.example/web:1.0"
    assert not [r for r in stack.trail().records() if r.event in ("approved", "deploying")]


def test_a_policy_tightened_while_the_watch_is_down_still_applies(outage: tuple[testing.Stack, PolicyAccess]) -> None:
    stack, access = outage
    stack.kubectl("patch", "gatepolicy", "production", "--type=json", "-p", json.dumps([ADD_NO_HIGH]))
    approve(stack)  # enough for the policy the operator's view still holds
    held = stack.wait_for(
        lambda: "no-high-vulnerabilities" in str((p := stack.get("promo", "web-2"))["status"]) and p,
        message="web-2 judged by the policy as it is now",
    )
    assert held["status"]["phase"] not in ("Approved", "Deploying", "Verifying", "Succeeded")
    assert "high vulnerabilities" in held["status"]["message"]
    no_deploy(stack)

    access.watch = "served"  # the watch comes back with the tightened policy: still held
    stack.wait_for(lambda: "no-high-vulnerabilities" in str(stack.get("promo", "web-2")["status"]), timeout=30)
    no_deploy(stack)


def test_policies_that_cannot_be_read_hold_the_deploy_until_they_can(
    outage: tuple[testing.Stack, PolicyAccess],
) -> None:
    stack, access = outage
    access.fresh_reads = "refused"
    approve(stack)
    held = stack.wait_for(
        lambda: "PoliciesUnverified" in str((p := stack.get("promo", "web-2"))["status"]) and p,
        message="web-2 held: its policies cannot be read",
    )
    message = held["status"]["message"]
    assert "approved, but not deployed" in message and "listing GatePolicies failed" in message
    assert "lockgate_watch_up" in message
    no_deploy(stack)

    access.fresh_reads = "served"  # readable again (the watch still down): it deploys on the policy read
    stack.wait_phase("web-2", "Succeeded", timeout=40)
    assert stack.image().startswith("registry.example/web:2.0")


STAGING_GATED = ["label", "namespace", "staging", "lockgate.dev/environment=production", "--overwrite"]
SET_IMAGE = ["set", "image", "deployment/web", "web=registry.example/web:9", "-n", "staging"]


def test_a_namespace_gated_while_the_namespace_watch_is_down_is_guarded() -> None:
    """The image guard judges a namespace by its labels as the API has them, not by the operator's last view."""
    with watch_refused("namespaces") as (stack, _):
        stack.kubectl(*STAGING_GATED)  # staging now falls under the production GatePolicy
        refused = stack.kubectl(*SET_IMAGE, context="alice", check=False)
        assert refused.returncode != 0
        assert "namespace staging is gated by Lockgate" in refused.stderr
        assert stack.image(namespace="staging") == "registry.example/web:1.0"


def test_a_guard_that_cannot_read_the_namespace_refuses_and_says_why() -> None:
    with watch_refused("namespaces") as (stack, access):
        access.fresh_reads = "refused"
        refused = stack.kubectl(*SET_IMAGE, context="alice", check=False)
        assert refused.returncode != 0
        assert "Lockgate cannot tell whether namespace staging is gated" in refused.stderr
        assert "reading Namespace staging failed" in refused.stderr
        access.fresh_reads = "served"  # staging is not gated: the change goes through once it can tell
        stack.kubectl(*SET_IMAGE, context="alice")
        assert stack.image(namespace="staging") == "registry.example/web:9"
