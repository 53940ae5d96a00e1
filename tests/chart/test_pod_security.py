"""The operator's Pod: restricted Pod Security, two replicas with leader election, probes, resources,
a PodDisruptionBudget and a NetworkPolicy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart import rendering

VARIANTS = [{}, rendering.EVERYTHING]


def _pod(values: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = rendering.one(rendering.render(values), "Deployment")["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("values", VARIANTS, ids=["default", "everything"])
def test_the_pod_meets_the_restricted_pod_security_standard(values: dict[str, Any]) -> None:
    pod = _pod(values)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for volume in pod["volumes"]:
        assert "hostPath" not in volume
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["runAsNonRoot"] is True
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert not sc.get("privileged")


@pytest.mark.parametrize("values", VARIANTS, ids=["default", "everything"])
def test_probes_and_resources(values: dict[str, Any]) -> None:
    container = _pod(values)["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}  # the view is loaded
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"webhooks": 9443, "metrics": 9090, "health": 8081}


def test_two_replicas_elect_a_leader_and_a_pdb_keeps_one() -> None:
    objects = rendering.render()
    deployment = rendering.one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    env = rendering.env(deployment)
    assert env["LOCKGATE_STANDALONE"] == "false" and env["LOCKGATE_LEASE_NAME"] == "lockgate-leader"
    assert env["LOCKGATE_IDENTITY"] == rendering.IDENTITY
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == rendering.RELEASE
    assert rendering.one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    single = rendering.render({"replicaCount": 1, "leaderElection": {"enabled": False}})
    assert not rendering.of_kind(single, "PodDisruptionBudget")
    assert rendering.env(rendering.one(single, "Deployment"))["LOCKGATE_STANDALONE"] == "true"
    role = rendering.one(single, "Role")
    assert all("leases" not in r["resources"] for r in role["rules"])


def test_the_network_policy_admits_the_webhooks_and_limits_egress() -> None:
    policy = rendering.one(rendering.render(), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    ingress_ports = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert ingress_ports == {"webhooks", "metrics", "health"}
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule.get("ports") or []}
    assert egress_ports == {53, 443, 6443}
    # Any port only to the pods of gated namespaces, for HTTP checks (the hosts are limited by the operator).
    (any_port,) = [rule for rule in policy["egress"] if not rule.get("ports")]
    gated = {"matchExpressions": [{"key": "lockgate.dev/environment", "operator": "Exists"}]}
    assert any_port == {"to": [{"namespaceSelector": gated}]}
    env = rendering.env(rendering.one(rendering.render(), "Deployment"))
    assert env["LOCKGATE_VERIFICATION_HOSTS"] == '["*.{namespace}.svc","*.{namespace}.svc.cluster.local"]'
    scoped = rendering.one(rendering.render(rendering.EVERYTHING), "NetworkPolicy")["spec"]
    assert {"ipBlock": {"cidr": "10.0.0.1/32"}} in scoped["egress"][1]["to"]
    # The checks' ports can be limited too (a check's URL names the Service's port; this is the pod's).
    ports = rendering.one(rendering.render({"networkPolicy": {"verificationPorts": [8080, 8443]}}), "NetworkPolicy")
    (checks,) = [rule for rule in ports["spec"]["egress"] if rule.get("to") == [{"namespaceSelector": gated}]]
    assert checks["ports"] == [{"port": 8080, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}]


def test_audit_sinks_become_settings_and_aws_sinks_use_irsa() -> None:
    objects = rendering.render(rendering.EVERYTHING)
    env = rendering.env(rendering.one(objects, "Deployment"))
    assert env["LOCKGATE_AUDIT_SINKS"] == "dynamodb,s3"
    assert env["LOCKGATE_AUDIT_DYNAMODB_TABLE"] == "lockgate-audit"
    assert env["LOCKGATE_AUDIT_DYNAMODB_REGION"] == "us-gov-west-1"
    assert env["LOCKGATE_AUDIT_S3_BUCKET"] == "lockgate-audit"
    assert "eks.amazonaws.com/role-arn" in rendering.one(objects, "ServiceAccount")["metadata"]["annotations"]
    assert not rendering.of_kind(objects, "PersistentVolumeClaim")
    default = rendering.render()
    assert rendering.env(rendering.one(default, "Deployment"))["LOCKGATE_AUDIT_SQLITE_PATH"].startswith("/var/lib/")
    claim = rendering.one(default, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_rbac_scoped_to_namespaces_binds_workload_changes_only_there() -> None:
    objects = rendering.render(rendering.EVERYTHING)
    bindings = [b for b in rendering.of_kind(objects, "RoleBinding") if b["roleRef"]["name"].endswith("workloads")]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["production", "staging"]
    cluster_bindings = {b["metadata"]["name"] for b in rendering.of_kind(objects, "ClusterRoleBinding")}
    assert "lockgate-operator-workloads" not in cluster_bindings
    assert {"lockgate-requesters", "lockgate-approvers", "lockgate-viewers"} <= cluster_bindings
    approver = rendering.one(objects, "ClusterRole", "lockgate-approver")
    assert "approve" in approver["rules"][0]["verbs"]
