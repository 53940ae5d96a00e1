"""Two replicas: only the Lease holder acts; when it dies the other takes over where it stopped."""

from __future__ import annotations

from lockgate import settings as lockgate_settings
from lockgate.devcluster import server
from lockgate.devcluster import world as dev_world
from lockgate.handlers import background, testing
from tests.conftest import REPO
from tests.lifecycle import manifests

WEB_2 = f"registry.example/web:2.0@{manifests.DIGEST}"


def replica_settings(name: str) -> lockgate_settings.OperatorSettings:
    return background.local_settings(standalone=False, lease_seconds=2, pod_name=name)


def lease_holder(stack: testing.Stack) -> str:
    lease = stack.get("lease", "lockgate-leader", namespace="lockgate-system")
    return str(lease["spec"]["holderIdentity"])


def test_the_standby_takes_over_and_finishes_the_promotion() -> None:
    with testing.stack(operator=False) as stack:
        stack.kubectl("apply", "-f", str(REPO / "examples" / "gatepolicy-production.yaml"))
        first = background.OperatorThread(
            kubeconfig=stack.cluster.kubeconfig, settings=replica_settings("replica-a"), audit_trail=stack.trail()
        ).start()
        stack.wait_for(lambda: lease_holder(stack).startswith("replica-a"), message="replica-a leads")
        second = background.OperatorThread(
            kubeconfig=stack.cluster.kubeconfig, settings=replica_settings("replica-b"), audit_trail=stack.trail()
        ).start()
        try:
            stack.apply(manifests.promotion(), context="alice")
            stack.wait_phase("web-2", "AwaitingApproval")
            # replica-a is cut off from the API (it can neither renew its lease nor write), then dies
            stack.cluster.cluster.fault_hook = lambda r: (
                server.Fault(code=503, reason="ServiceUnavailable") if "replica/replica-a" in r.user_agent else None
            )
            stack.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
            stack.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
            stack.wait_phase("web-2", "Succeeded", timeout=30)
            first.kill()
            assert lease_holder(stack).startswith("replica-b")
            assert stack.image() == WEB_2
            writers = {
                r.user
                for r in stack.cluster.cluster.requests
                if r.method == "PATCH" and r.resource == "deployments" and r.code == 200
            }
            assert writers == {dev_world.OPERATOR_USERNAME}
        finally:
            second.stop()
            first.stop()


def test_only_the_lease_holder_writes_status() -> None:
    with testing.stack(operator=False) as stack:
        stack.kubectl("apply", "-f", str(REPO / "examples" / "gatepolicy-production.yaml"))
        replicas = [
            background.OperatorThread(
                kubeconfig=stack.cluster.kubeconfig, settings=replica_settings(f"r{i}"), audit_trail=stack.trail()
            ).start()
            for i in range(2)
        ]
        try:
            stack.apply(manifests.promotion(), context="alice")
            stack.wait_phase("web-2", "AwaitingApproval")
            holder = lease_holder(stack)
            agents = {
                r.user_agent
                for r in stack.cluster.cluster.requests
                if r.subresource == "status" and r.resource == "promotions" and r.method == "PATCH"
            }
            replica = holder.split("_")[0]
            assert agents and all(f"replica/{replica} " in agent for agent in agents), agents
        finally:
            for replica in replicas:
                replica.stop()
