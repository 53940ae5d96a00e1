"""While one of the operator's watches is down, its view may miss a change: a policy tightened, a namespace
labelled into a policy, an Approval withdrawn. The decision to deploy, and the image guard, read what they
need from the API instead, and hold or refuse, saying why, if they cannot.

Driven as a user would: the API refuses the operator's watch of one kind (RBAC lost for it, say), people
change things with kubectl, and the operator must act on the cluster as it is, not on its last view.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator

import pytest

from lockgate.devcluster import server, world
from lockgate.handlers import background, testing
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
STAGING_GATED = ["label", "namespace", "staging", "lockgate.dev/environment=production", "--overwrite"]
SET_IMAGE = ["set", "image", "deployment/web", "web=registry.example/web:9", "-n", "staging"]
RELABEL = ["label", "deployment", "web", "team=payments", "--overwrite"]


class Access:
    """The API's answers to the operator's requests for ``resource``: its watch (``watch``) and its fresh reads."""

    def __init__(self, resource: str) -> None:
        self.resource = resource
        self.watch = "served"  # "cut": every stream ends after 1.5 s; "refused": its lists and watches get 403
        self.fresh_reads = "served"
        self.refused = 0
        self.watched = 0  # watch requests served

    def __call__(self, record: server.RequestRecord) -> server.Fault | None:
        if record.user != world.OPERATOR_USERNAME or record.resource != self.resource:
            return None
        mode = self.fresh_reads if "(fresh " in record.user_agent else self.watch
        if mode == "cut" and record.verb == "watch":
            return server.Fault(drop_watch_after=1.5)
        if mode == "refused" and (record.verb in ("list", "watch") or "(fresh " in record.user_agent):
            self.refused += 1
            return server.Fault(code=403, reason="Forbidden", message=f"injected: {self.resource} is forbidden")
        self.watched += record.verb == "watch"
        return None


@contextlib.contextmanager
def watch_refused(resource: str, *, paused: bool = False) -> Iterator[tuple[testing.Stack, Access]]:
    """A running operator holding web-2 (AwaitingApproval; with ``paused``, approved by bob and carol and held
    for its paused Deployment), whose watch of ``resource`` has just been cut and is now refused."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH: these tests apply manifests with the real kubectl")
    access = Access(resource)
    with testing.stack(operator=False) as stack:
        stack.cluster.cluster.fault_hook = access
        stack.kubectl("apply", "-f", str(REPO / "examples" / "gatepolicy-production.yaml"))
        access.watch = "cut"
        stack.start_operator(settings=background.local_settings(break_glass_groups=["oncall-leads"]))
        stack.apply(manifests.promotion(), context="alice")
        stack.wait_phase("web-2", "AwaitingApproval")  # the operator holds the policy
        if paused:
            stack.kubectl("rollout", "pause", "deployment/web", "-n", "production", context="dan")  # break-glass
            approve(stack)
            stack.wait_for(lambda: "TargetPaused" in str(stack.get("promo", "web-2")["status"]), message="held")
        access.watch = "refused"
        stack.wait_for(lambda: access.refused >= 2, message=f"the {resource} watch refused")
        yield stack, access


def approve(stack: testing.Stack) -> None:
    stack.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    stack.apply(manifests.approval("web-2-carol", "web-2"), context="carol")


def no_deploy(stack: testing.Stack) -> None:
    assert stack.image() == "registry.example/web:1.0"
    assert not [r for r in stack.trail().records() if r.event in ("approved", "deploying")]


def test_a_policy_tightened_while_the_watch_is_down_still_applies() -> None:
    with watch_refused("gatepolicies") as (stack, access):
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
        policy = stack.get("gatepolicy", "production", namespace="")
        stack.wait_for(
            lambda: (
                stack.get("gatepolicy", "production", namespace="").get("status", {}).get("observedGeneration")
                == policy["metadata"]["generation"]
            ),
            timeout=30,
            message="the operator's view has the tightened policy",
        )
        assert access.watched >= 1
        assert "no-high-vulnerabilities" in str(stack.get("promo", "web-2")["status"])
        no_deploy(stack)


def test_policies_that_cannot_be_read_hold_the_deploy_until_they_can() -> None:
    with watch_refused("gatepolicies") as (stack, access):
        access.fresh_reads = "refused"
        approve(stack)
        held = stack.wait_for(
            lambda: "PoliciesUnverified" in str((p := stack.get("promo", "web-2"))["status"]) and p,
            message="web-2 held: its policies cannot be read",
        )
        message = held["status"]["message"]
        assert "not deployed" in message and "reading GatePolicies failed" in message
        assert "list gatepolicies, namespaces and approvals" in message
        no_deploy(stack)
        # The guard reads them only when its verdict depends on it: a change that any namespace allows passes,
        # and an image change in a namespace the view says is gated is refused as ever.
        stack.kubectl(*RELABEL, "-n", "production", context="alice")
        refused = stack.kubectl(
            "set", "image", "deployment/web", "web=x:1", "-n", "production", context="alice", check=False
        )
        assert refused.returncode != 0 and "namespace production is gated by Lockgate" in refused.stderr

        access.fresh_reads = "served"  # readable again (the watch still down): it deploys on the policy read
        stack.wait_phase("web-2", "Succeeded", timeout=40)
        assert stack.image().startswith("registry.example/web:2.0")


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
        assert "reading Namespace staging failed" in refused.stderr and "list and watch" in refused.stderr
        stack.kubectl(*RELABEL, "-n", "staging", context="alice")  # allowed gated or not: nothing to read
        access.fresh_reads = "served"  # staging is not gated: the change goes through once it can tell
        stack.kubectl(*SET_IMAGE, context="alice")
        assert stack.image(namespace="staging") == "registry.example/web:9"


def test_an_approval_withdrawn_while_the_approval_watch_is_down_no_longer_counts() -> None:
    """web-2 is approved but held (its Deployment is paused); carol withdraws her approval while the operator
    cannot see it. When the Deployment is resumed, the decision to deploy reads the Approvals as they are."""
    with watch_refused("approvals", paused=True) as (stack, _):
        stack.kubectl("delete", "approval", "web-2-carol", "-n", "production", context="carol")
        stack.kubectl("rollout", "resume", "deployment/web", "-n", "production")
        waiting = stack.wait_for(
            lambda: "security" in str((p := stack.get("promo", "web-2"))["status"].get("message")) and p,
            message="web-2 waiting for a security approval again",
        )
        assert waiting["status"]["phase"] == "AwaitingApproval"
        no_deploy(stack)


def test_a_promotion_deleted_while_the_promotion_watch_is_down_is_not_deployed() -> None:
    """web-2 is approved but held (its Deployment is paused); its author deletes it while the operator cannot see
    that. When the Deployment is resumed, the decision to deploy reads the Promotion and finds it gone."""
    with watch_refused("promotions", paused=True) as (stack, _):
        stack.kubectl("delete", "promotion", "web-2", "-n", "production", "--wait=false")
        stack.kubectl("rollout", "resume", "deployment/web", "-n", "production")
        stack.wait_for(
            lambda: [r for r in list(stack.cluster.cluster.requests) if "(fresh promotions)" in r.user_agent],
            message="the operator reading web-2 afresh at its decisive moment",
        )
        stack.wait_for(lambda: stack.get("deployment", "web")["status"].get("updatedReplicas"), message="resumed")
        no_deploy(stack)


def test_a_promotion_changed_while_the_promotion_watch_is_down_is_judged_as_it_is_now() -> None:
    """web-2's spec changes (a new approval cycle: bob's and carol's approvals were for the old spec) while the
    operator cannot see it; at the decisive moment it reads the Promotion, and does not deploy the old spec."""
    with watch_refused("promotions", paused=True) as (stack, _):
        changed = manifests.promotion().replace(
            'description: "Release web-2"', 'description: "Release web-2, reworded"'
        )
        assert changed != manifests.promotion()
        stack.apply(changed)  # the release manager edits it
        stack.kubectl("rollout", "resume", "deployment/web", "-n", "production")
        stack.wait_phase("web-2", "AwaitingApproval")  # a new cycle: earlier approvals no longer count
        no_deploy(stack)
