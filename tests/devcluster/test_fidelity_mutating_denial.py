"""A mutating admission webhook that refuses a request denies it, as the API server does (not only validating)."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from lockgate.devcluster import runner, testing, tls

CMS = "/api/v1/namespaces/staging/configmaps"


class _Hook(http.server.BaseHTTPRequestHandler):
    reviews: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).reviews.append(review)
        request = review["request"]
        response: dict[str, Any] = {"uid": request["uid"], "allowed": False}
        response["status"] = {"code": 403, "reason": "Forbidden", "message": "no configmaps named forbidden-*"}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def hook() -> Iterator[tuple[str, str]]:
    """An HTTPS AdmissionReview endpoint on 127.0.0.1 that always refuses; yields (url, caBundle)."""
    certificate = tls.make_certificate()
    context = certificate.server_context()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    _Hook.reviews = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/mutate", base64.b64encode(certificate.cert_pem).decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def configure(cluster: runner.RunningCluster, url: str, ca_bundle: str) -> None:
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "refuse"},
        "webhooks": [
            {
                "name": "refuse.lockgate.dev",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "timeoutSeconds": 5,
                "failurePolicy": "Fail",
                "clientConfig": {"url": url, "caBundle": ca_bundle},
                "objectSelector": {"matchLabels": {"refuse": "yes"}},
                "rules": [
                    {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}
                ],
            }
        ],
    }
    path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
    status, body = testing.api(cluster, "POST", path, config)
    assert status == 201, body


def configmap(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def test_mutating_webhook_denial_is_returned_and_nothing_is_stored(
    devcluster: runner.RunningCluster, hook: tuple[str, str]
) -> None:
    configure(devcluster, *hook)
    status, body = testing.api(devcluster, "POST", CMS, configmap("forbidden-1", refuse="yes"))
    assert status == 403, body
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'admission webhook "refuse.lockgate.dev" denied the request: no configmaps named forbidden-*'
    )
    assert testing.api(devcluster, "GET", CMS + "/forbidden-1")[0] == 404
    assert [r["request"]["userInfo"]["username"] for r in _Hook.reviews] == ["admin"]

    status, _ = testing.api(devcluster, "POST", CMS, configmap("fine"))  # objectSelector does not match
    assert status == 201
    assert len(_Hook.reviews) == 1


@pytest.mark.kubectl
@pytest.mark.usefixtures("kubectl_available")
def test_kubectl_shows_the_mutating_webhook_denial(devcluster: runner.RunningCluster, hook: tuple[str, str]) -> None:
    configure(devcluster, *hook)
    manifest = json.dumps(configmap("forbidden-2", refuse="yes"))
    result = testing.kubectl(devcluster, "create", "-n", "staging", "-f", "-", input=manifest)
    assert result.returncode == 1
    assert (
        'Error from server (Forbidden): error when creating "STDIN": admission webhook "refuse.lockgate.dev" '
        "denied the request: no configmaps named forbidden-*"
    ) in result.stderr
