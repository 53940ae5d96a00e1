"""Admission webhooks are called as the API server calls them, over real HTTPS, and their answers honoured."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import ipaddress
import json
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lockgate.devcluster import admission, identity

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
ALICE = identity.UserInfo("alice", ("engineers", "system:authenticated"), uid="u-1", extra={"scopes": ("a",)})


def make_cert(directory: Path, *, names: list[str]) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lockgate-test-webhook")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    alt_names += [x509.DNSName(name) for name in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path, base64.b64encode(cert_pem).decode()


class WebhookServer:
    """An HTTPS AdmissionReview endpoint on 127.0.0.1; each path answers with its own handler."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, Any], str]] = []
        self.peers: list[Any] = []  # the client address of each call: one per TCP connection
        self.url = ""
        self.ca_bundle = ""
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.requests.append((request.path, review, request.query_string))
        self.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        response = await self.handlers[request.path](review["request"])
        response["uid"] = review["request"]["uid"]
        return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[WebhookServer]:
    hooks = WebhookServer()
    cert, key, hooks.ca_bundle = make_cert(tmp_path, names=["hooks.lockgate.svc"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_post("/{tail:.*}", hooks.handle)
    runner = hooks.runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hooks.url = f"https://127.0.0.1:{port}"
    try:
        yield hooks
    finally:
        admission.SERVICE_URL_OVERRIDES.clear()
        await admission.close_clients()  # as the API server does when it stops
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook(name: str, url: str, ca_bundle: str, **extra: Any) -> dict[str, Any]:
    hook: dict[str, Any] = {
        "name": name,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "timeoutSeconds": 5,
        "clientConfig": {"url": url, "caBundle": ca_bundle},
        "rules": [
            {
                "operations": ["CREATE", "UPDATE"],
                "apiGroups": ["apps"],
                "apiVersions": ["v1"],
                "resources": ["deployments"],
            }
        ],
    }
    hook.update(extra)
    return hook


def config(kind: str, name: str, *hooks: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": list(hooks),
    }


def deployment_attrs(
    labels: dict[str, str] | None = None, namespace: str = "production", operation: str = "CREATE"
) -> admission.AdmissionAttributes:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": labels or {}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "img:1"}]}}},
    }
    return admission.AdmissionAttributes(
        operation=operation,
        group="apps",
        version="v1",
        resource="deployments",
        subresource="",
        kind="Deployment",
        namespace=namespace,
        name="web",
        object=obj,
        old_object=None,
        user=ALICE,
        dry_run=False,
    )


PRODUCTION = {
    "kind": "Namespace",
    "metadata": {"name": "production", "labels": {"lockgate.dev/environment": "production"}},
}
STAGING = {"kind": "Namespace", "metadata": {"name": "staging", "labels": {}}}


async def allow(request: dict[str, Any]) -> dict[str, Any]:
    return {"allowed": True}


async def test_mutating_webhook_patch_is_applied_and_request_is_a_real_admission_review(
    server: WebhookServer,
) -> None:
    async def add_label(request: dict[str, Any]) -> dict[str, Any]:
        patch = [{"op": "add", "path": "/metadata/labels/stamped-by", "value": request["userInfo"]["username"]}]
        return {
            "allowed": True,
            "patchType": "JSONPatch",
            "warnings": ["stamped"],
            "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
        }

    server.handlers["/mutate"] = add_label
    configs = [
        config(
            "MutatingWebhookConfiguration",
            "stamp",
            webhook("stamp.lockgate.dev", server.url + "/mutate", server.ca_bundle),
        )
    ]
    result = await admission.mutate(configs, deployment_attrs(), PRODUCTION)
    assert result.allowed and result.warnings == ["stamped"]
    assert result.object is not None and result.object["metadata"]["labels"] == {"stamped-by": "alice"}
    path, review, query = server.requests[0]
    assert (path, query) == ("/mutate", "timeout=5s")
    assert review["apiVersion"] == "admission.k8s.io/v1" and review["kind"] == "AdmissionReview"
    request = review["request"]
    assert request["kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert request["resource"] == {"group": "apps", "version": "v1", "resource": "deployments"}
    assert request["requestKind"] == request["kind"] and request["requestResource"] == request["resource"]
    assert (request["operation"], request["namespace"], request["name"]) == ("CREATE", "production", "web")
    assert request["userInfo"] == {
        "username": "alice",
        "uid": "u-1",
        "groups": ["engineers", "system:authenticated"],
        "extra": {"scopes": ["a"]},
    }
    assert request["object"]["metadata"]["name"] == "web" and request["oldObject"] is None
    assert request["dryRun"] is False and request["options"]["kind"] == "CreateOptions"


async def test_validating_denial_uses_kubernetes_message_and_code(server: WebhookServer) -> None:
    async def deny(request: dict[str, Any]) -> dict[str, Any]:
        return {"allowed": False, "status": {"code": 403, "reason": "Forbidden", "message": "needs approval"}}

    async def deny_quietly(request: dict[str, Any]) -> dict[str, Any]:
        return {"allowed": False}

    server.handlers.update({"/deny": deny, "/quiet": deny_quietly, "/ok": allow})
    configs = [
        config(
            "ValidatingWebhookConfiguration",
            "b-gate",
            webhook("gate.lockgate.dev", server.url + "/deny", server.ca_bundle),
        ),
        config(
            "ValidatingWebhookConfiguration",
            "a-fine",
            webhook("fine.lockgate.dev", server.url + "/ok", server.ca_bundle),
        ),
    ]
    result = await admission.validate(configs, deployment_attrs(), PRODUCTION)
    assert not result.allowed
    assert (result.code, result.reason) == (403, "Forbidden")
    assert result.message == 'admission webhook "gate.lockgate.dev" denied the request: needs approval'
    assert sorted(path for path, _, _ in server.requests) == ["/deny", "/ok"]

    quiet = [
        config(
            "ValidatingWebhookConfiguration",
            "q",
            webhook("quiet.lockgate.dev", server.url + "/quiet", server.ca_bundle),
        )
    ]
    result = await admission.validate(quiet, deployment_attrs(), PRODUCTION)
    assert (result.allowed, result.code) == (False, 400)
    assert result.message == 'admission webhook "quiet.lockgate.dev" denied the request without explanation'


async def test_unreachable_webhook_fails_closed_or_is_ignored_by_failure_policy(
    server: WebhookServer,
) -> None:
    url = f"https://127.0.0.1:{closed_port()}/validate"
    failing = [
        config(
            "ValidatingWebhookConfiguration",
            "down",
            webhook("down.lockgate.dev", url, server.ca_bundle, failurePolicy="Fail"),
        )
    ]
    result = await admission.validate(failing, deployment_attrs(), PRODUCTION)
    assert (result.allowed, result.code, result.reason) == (False, 500, "InternalError")
    prefix = 'Internal error occurred: failed calling webhook "down.lockgate.dev": failed to call webhook:'
    prefix += " Post"
    assert result.message.startswith(f'{prefix} "{url}?timeout=5s": ')

    ignored = [
        config(
            "ValidatingWebhookConfiguration",
            "down",
            webhook("down.lockgate.dev", url, server.ca_bundle, failurePolicy="Ignore"),
        )
    ]
    assert (await admission.validate(ignored, deployment_attrs(), PRODUCTION)).allowed
    mutating = [
        config(
            "MutatingWebhookConfiguration",
            "down",
            webhook("down.lockgate.dev", url, server.ca_bundle, failurePolicy="Ignore"),
        )
    ]
    assert (await admission.mutate(mutating, deployment_attrs(), PRODUCTION)).allowed


async def test_untrusted_certificate_is_a_call_failure(server: WebhookServer, tmp_path: Path) -> None:
    server.handlers["/ok"] = allow
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _, _, other_ca = make_cert(other_dir, names=["elsewhere"])
    configs = [config("ValidatingWebhookConfiguration", "x", webhook("x.lockgate.dev", server.url + "/ok", other_ca))]
    result = await admission.validate(configs, deployment_attrs(), PRODUCTION)
    assert (result.allowed, result.code) == (False, 500)
    assert "certificate" in result.message.lower()
    assert server.requests == []


async def test_service_reference_resolves_through_overrides_and_verifies_service_name(
    server: WebhookServer,
) -> None:
    server.handlers["/validate"] = allow
    admission.SERVICE_URL_OVERRIDES[("lockgate", "hooks")] = server.url
    hook = webhook("svc.lockgate.dev", "", server.ca_bundle)
    hook["clientConfig"] = {
        "service": {"namespace": "lockgate", "name": "hooks", "path": "/validate", "port": 443},
        "caBundle": server.ca_bundle,
    }
    result = await admission.validate(
        [config("ValidatingWebhookConfiguration", "svc", hook)], deployment_attrs(), PRODUCTION
    )
    assert result.allowed
    assert [path for path, _, _ in server.requests] == ["/validate"]
    hook["clientConfig"]["service"]["name"] = "unknown"
    admission.SERVICE_URL_OVERRIDES[("lockgate", "unknown")] = server.url  # cert is not for unknown.lockgate.svc
    result = await admission.validate(
        [config("ValidatingWebhookConfiguration", "svc", hook)], deployment_attrs(), PRODUCTION
    )
    assert not result.allowed and result.code == 500


async def test_namespace_and_object_selectors_choose_which_requests_are_sent(server: WebhookServer) -> None:
    async def deny(request: dict[str, Any]) -> dict[str, Any]:
        return {"allowed": False, "status": {"message": "gated"}}

    server.handlers["/deny"] = deny
    hook = webhook(
        "gate.lockgate.dev",
        server.url + "/deny",
        server.ca_bundle,
        namespaceSelector={"matchLabels": {"lockgate.dev/environment": "production"}},
        objectSelector={"matchExpressions": [{"key": "lockgate.dev/exempt", "operator": "DoesNotExist"}]},
    )
    configs = [config("ValidatingWebhookConfiguration", "gate", hook)]
    assert not (await admission.validate(configs, deployment_attrs(), PRODUCTION)).allowed
    assert (await admission.validate(configs, deployment_attrs(namespace="staging"), STAGING)).allowed
    exempt = deployment_attrs(labels={"lockgate.dev/exempt": "yes"})
    assert (await admission.validate(configs, exempt, PRODUCTION)).allowed
    assert len(server.requests) == 1


async def test_match_conditions_skip_the_call_and_an_error_fails_by_failure_policy(server: WebhookServer) -> None:
    """As ``matchConditions`` (Kubernetes >= 1.28): CEL over request, object and oldObject."""

    async def deny(request: dict[str, Any]) -> dict[str, Any]:
        return {"allowed": False, "status": {"message": "gated"}}

    server.handlers["/deny"] = deny
    conditions = [
        {"name": "not-bob", "expression": "request.userInfo.username != 'bob'"},
        {"name": "has-containers", "expression": "size(object.spec.template.spec.containers) > 0"},
    ]
    hook = webhook("gate.lockgate.dev", server.url + "/deny", server.ca_bundle, matchConditions=conditions)
    configs = [config("ValidatingWebhookConfiguration", "gate", hook)]
    assert not (await admission.validate(configs, deployment_attrs(), PRODUCTION)).allowed  # alice: called
    bob = dataclasses.replace(deployment_attrs(), user=identity.UserInfo("bob", ("system:authenticated",)))
    assert (await admission.validate(configs, bob, PRODUCTION)).allowed  # skipped, not called
    assert len(server.requests) == 1

    broken = [{"name": "typo", "expression": "request.userInfo.nosuch == 'x'"}]
    for policy, allowed in (("Fail", False), ("Ignore", True)):
        hook = webhook(
            "gate.lockgate.dev", server.url + "/deny", server.ca_bundle, matchConditions=broken, failurePolicy=policy
        )
        result = await admission.validate([config("ValidatingWebhookConfiguration", "gate", hook)], bob, PRODUCTION)
        assert result.allowed is allowed
        if not allowed:
            assert "matchConditions could not be evaluated" in result.message
    assert len(server.requests) == 1


def test_rule_matching_follows_kubernetes() -> None:
    attrs = deployment_attrs()
    status = deployment_attrs()
    status.subresource = "status"
    base = {"operations": ["*"], "apiGroups": ["apps"], "apiVersions": ["*"]}
    assert admission.rule_matches({**base, "resources": ["deployments"]}, attrs)
    assert not admission.rule_matches({**base, "resources": ["deployments"]}, status)
    assert admission.rule_matches({**base, "resources": ["deployments/status"]}, status)
    assert admission.rule_matches({**base, "resources": ["*/*"]}, status)
    assert not admission.rule_matches({**base, "resources": ["*"]}, status)
    assert not admission.rule_matches({**base, "resources": ["*"], "scope": "Cluster"}, attrs)
    assert not admission.rule_matches({**base, "resources": ["*"], "operations": ["DELETE"]}, attrs)
    namespace = admission.AdmissionAttributes(
        operation="CREATE",
        group="",
        version="v1",
        resource="namespaces",
        subresource="",
        kind="Namespace",
        namespace="",
        name="production",
        object=PRODUCTION,
        old_object=None,
        user=ALICE,
        dry_run=False,
    )
    ns_rule = {
        "operations": ["CREATE"],
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["namespaces"],
    }
    assert admission.rule_matches({**ns_rule, "scope": "Cluster"}, namespace)
    assert not admission.rule_matches({**ns_rule, "scope": "Namespaced"}, namespace)
    # A Namespace is matched against its own labels.
    hook = {
        "rules": [ns_rule],
        "namespaceSelector": {"matchLabels": {"lockgate.dev/environment": "production"}},
    }
    assert admission.webhook_matches(hook, namespace, None)
    namespace.object = STAGING
    assert not admission.webhook_matches(hook, namespace, None)


async def test_dry_run_requires_side_effect_free_webhooks(server: WebhookServer) -> None:
    server.handlers["/ok"] = allow
    attrs = deployment_attrs()
    attrs.dry_run = True
    risky = [
        config(
            "ValidatingWebhookConfiguration",
            "r",
            webhook("risky.lockgate.dev", server.url + "/ok", server.ca_bundle, sideEffects="Some"),
        )
    ]
    result = await admission.validate(risky, attrs, PRODUCTION)
    assert (result.allowed, result.code) == (False, 400)
    assert result.message == 'admission webhook "risky.lockgate.dev" does not support dry run'
    safe = [
        config(
            "ValidatingWebhookConfiguration",
            "s",
            webhook("safe.lockgate.dev", server.url + "/ok", server.ca_bundle),
        )
    ]
    assert (await admission.validate(safe, attrs, PRODUCTION)).allowed
    assert server.requests[0][1]["request"]["dryRun"] is True


async def kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """The real kubectl, run without blocking the loop that serves the webhooks."""
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        "--context",
        "admin",
        "--request-timeout=20s",
        *args,
        env={**os.environ, "KUBECONFIG": kubeconfig},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), timeout=60)
    return int(process.returncode or 0), out.decode(), err.decode()


def configmap(namespace: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": {"a": "b"},
            "metadata": {"name": "settings", "namespace": namespace},
        }
    )


@pytest.mark.kubectl
async def test_kubectl_sees_a_mutating_and_a_denying_webhook(server: WebhookServer) -> None:
    async def stamp(request: dict[str, Any]) -> dict[str, Any]:
        patch = [
            {
                "op": "add",
                "path": "/metadata/labels",
                "value": {"stamped-by": request["userInfo"]["username"]},
            }
        ]
        return {
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
        }

    async def deny(request: dict[str, Any]) -> dict[str, Any]:
        return {
            "allowed": False,
            "status": {
                "code": 403,
                "reason": "Forbidden",
                "message": "configmaps in production need a Promotion",
            },
        }

    runner = pytest.importorskip("lockgate.devcluster.runner")
    server.handlers.update({"/mutate": stamp, "/deny": deny})
    rule = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}
    webhooks = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            config(
                "MutatingWebhookConfiguration",
                "stamp",
                webhook("stamp.lockgate.dev", server.url + "/mutate", server.ca_bundle, rules=[rule]),
            ),
            config(
                "ValidatingWebhookConfiguration",
                "gate",
                webhook(
                    "gate.lockgate.dev",
                    server.url + "/deny",
                    server.ca_bundle,
                    rules=[rule],
                    namespaceSelector={"matchLabels": {"lockgate.dev/environment": "production"}},
                ),
            ),
        ],
    }
    with runner.start_in_thread(crd_dir=runner.default_crd_dir()) as cluster:
        kubeconfig = str(cluster.kubeconfig)
        for item in webhooks["items"]:
            # kubectl apply validates client-side against OpenAPI; --raw posts the object as is.
            plural = item["kind"].lower() + "s"
            path = f"/apis/admissionregistration.k8s.io/v1/{plural}"
            code, _, err = await kubectl(kubeconfig, "create", "--raw", path, "-f", "-", stdin=json.dumps(item))
            assert code == 0, err
        code, _, err = await kubectl(
            kubeconfig,
            "create",
            "-f",
            "-",
            "--as",
            "alice",
            "--as-group",
            "system:masters",
            stdin=configmap("staging"),
        )
        assert code == 0, err
        code, out, err = await kubectl(
            kubeconfig,
            "get",
            "configmap",
            "settings",
            "-n",
            "staging",
            "-o",
            "jsonpath={.metadata.labels.stamped-by}",
        )
        assert (code, out) == (0, "alice"), err
        code, out, err = await kubectl(kubeconfig, "create", "-f", "-", stdin=configmap("production"))
        assert code == 1
        assert (
            'admission webhook "gate.lockgate.dev" denied the request: configmaps in production need a Promotion'
        ) in err
        code, _, err = await kubectl(kubeconfig, "get", "configmap", "settings", "-n", "production")
        assert code == 1 and "NotFound" in err


async def test_webhook_calls_keep_their_connection_and_survive_a_webhook_server_restart(
    server: WebhookServer, tmp_path: Path
) -> None:
    async def allow(_: dict[str, Any]) -> dict[str, Any]:
        return {"allowed": True}

    server.handlers["/validate"] = allow
    configs = [
        config(
            "ValidatingWebhookConfiguration",
            "guard",
            webhook("guard.lockgate.dev", server.url + "/validate", server.ca_bundle),
        )
    ]
    for _ in range(3):
        assert (await admission.validate(configs, deployment_attrs(), PRODUCTION)).allowed
    assert len(server.peers) == 3 and len(set(server.peers)) == 1  # one kept-alive connection, as kube-apiserver

    # The webhook server restarts on the same address and certificate: the kept connection is dead.
    port = int(server.url.rsplit(":", 1)[1])
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    restarted = WebhookServer()
    restarted.handlers["/validate"] = allow
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_post("/{tail:.*}", restarted.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    assert server.runner is not None
    await server.runner.cleanup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=context)
    await site.start()
    try:
        assert (await admission.validate(configs, deployment_attrs(), PRODUCTION)).allowed
        assert len(restarted.requests) == 1
    finally:
        await runner.cleanup()


@pytest.mark.kubectl
async def test_a_scale_webhook_sees_the_scale_and_kubectl_prints_the_webhooks_warnings(server: WebhookServer) -> None:
    """As the API server: a webhook on ``deployments/scale`` is sent the autoscaling/v1 Scale (``spec.replicas``
    omitted at zero) for the apps/v1 resource, and its warnings reach kubectl as ``Warning:`` lines, each once,
    a line with a control character dropped."""

    async def warn(request: dict[str, Any]) -> dict[str, Any]:
        said = ['scaled "web" \\ by hand', "Lockgate: recorded for the café on-call", "twice", "twice", "bad\nline"]
        return {"allowed": True, "warnings": said}

    runner = pytest.importorskip("lockgate.devcluster.runner")
    server.handlers["/scale"] = warn
    rule = {"operations": ["UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments/scale"]}
    hooks = config(
        "ValidatingWebhookConfiguration",
        "scale",
        webhook("scale.lockgate.dev", server.url + "/scale", server.ca_bundle, rules=[rule]),
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "scaled", "namespace": "staging"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "w:1"}]},
            },
        },
    }
    with runner.start_in_thread(crd_dir=runner.default_crd_dir()) as cluster:
        kubeconfig = str(cluster.kubeconfig)
        path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
        code, _, err = await kubectl(kubeconfig, "create", "--raw", path, "-f", "-", stdin=json.dumps(hooks))
        assert code == 0, err
        code, _, err = await kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps(deployment))
        assert code == 0, err
        code, _, err = await kubectl(kubeconfig, "scale", "deployment/scaled", "--replicas=3", "-n", "staging")
        assert code == 0, err
    ((_, review, _),) = server.requests
    request = review["request"]
    assert request["kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert request["resource"] == {"group": "apps", "version": "v1", "resource": "deployments"}
    assert request["subResource"] == "scale"
    assert (request["oldObject"]["kind"], request["oldObject"]["spec"]) == ("Scale", {})  # zero: omitted
    assert request["object"]["spec"] == {"replicas": 3}
    warned = [line for line in err.splitlines() if line.startswith("Warning:")]
    assert warned == [
        'Warning: scaled "web" \\ by hand',
        "Warning: Lockgate: recorded for the café on-call",
        "Warning: twice",
    ]
