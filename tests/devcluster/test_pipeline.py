"""The request pipeline: 401 without a token, 403 from RBAC, the request log, the fault-injection hook."""

from __future__ import annotations

from lockgate.devcluster import runner, server, testing


def test_unauthenticated_is_401(devcluster: runner.RunningCluster) -> None:
    status, body = testing.api(devcluster, "GET", "/api/v1/namespaces", user=None)
    assert (status, body["reason"]) == (401, "Unauthorized")


def test_forbidden_is_403_with_the_kubernetes_message(devcluster: runner.RunningCluster) -> None:
    status, body = testing.api(
        devcluster, "GET", "/apis/apps/v1/namespaces/production/deployments", user="mallory"
    )
    assert status == 403
    assert body["message"] == (
        'deployments.apps is forbidden: User "mallory" cannot list resource "deployments" '
        'in API group "apps" in the namespace "production"'
    )


def test_request_log_counts_calls_per_user(devcluster: runner.RunningCluster) -> None:
    testing.api(devcluster, "GET", "/apis/apps/v1/namespaces/staging/deployments/web", user="alice")
    record = devcluster.cluster.requests[-1]
    assert (
        record.user,
        record.verb,
        record.api_group,
        record.resource,
        record.namespace,
        record.name,
        record.code,
    ) == ("alice", "get", "apps", "deployments", "staging", "web", 200)


def test_fault_hook_injects_errors(devcluster: runner.RunningCluster) -> None:
    def hook(record: server.RequestRecord) -> server.Fault | None:
        if record.user == "alice" and record.resource == "deployments":
            return server.Fault(code=503, reason="ServiceUnavailable", message="injected")
        return None

    devcluster.cluster.fault_hook = hook
    status, body = testing.api(
        devcluster, "GET", "/apis/apps/v1/namespaces/staging/deployments", user="alice"
    )
    assert (status, body["message"]) == (503, "injected")
    assert testing.api(devcluster, "GET", "/apis/apps/v1/namespaces/staging/deployments")[0] == 200
