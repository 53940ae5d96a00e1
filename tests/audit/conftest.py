"""Audit test fixtures: sample Promotions, built records, and a moto server for AWS sinks."""

from __future__ import annotations

import datetime
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import werkzeug.serving
from moto import server as moto_server
from moto.moto_server import werkzeug_app

from lockgate.audit import record

T0 = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)
IMAGE = "registry.example/web@sha256:" + "ab" * 32


def promotion_object(
    name: str = "web-2026-03",
    namespace: str = "production",
    uid: str | None = None,
    spec_hash: str = "sha256:c1",
) -> dict[str, Any]:
    """A Promotion as the Kubernetes API returns it (plain dict)."""
    return {
        "apiVersion": "lockgate.dev/v1alpha1",
        "kind": "Promotion",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4())},
        "spec": {
            "target": {"kind": "Deployment", "name": "web", "container": "web"},
            "image": IMAGE,
            "change": {
                "description": "Fix the login timeout",
                "ticket": "CHG-1234",
                "url": "https://tickets.example/CHG-1234",
                "author": "dave",
            },
            "evidence": {
                "securityScan": {"status": "passed", "critical": 0, "high": 1, "reportUrl": "https://scan/1"},
                "integrationTests": {"status": "passed", "url": "https://ci/run/77"},
            },
        },
        "status": {
            "specHash": spec_hash,
            "requestedBy": {"username": "carol", "groups": ["developers"]},
            "previousImage": "registry.example/web@sha256:" + "00" * 32,
        },
    }


APPROVERS = [
    {
        "username": "alice",
        "groups": ["engineering-leads"],
        "at": "2026-03-02T08:50:00Z",
        "approval": "web-2026-03-alice",
        "rule": "technical",
        "rbac": "approve promotions.lockgate.dev: allowed",
    },
    {
        "approver": "sam",
        "groups": ["security-leads"],
        "at": "2026-03-02T08:55:00Z",
        "approval": "web-2026-03-sam",
        "rule": "security",
    },
]
POLICIES = [{"name": "production", "passed": True, "verdicts": [{"rule": "scan-clean", "passed": True}]}]


def make(event: str, promo: dict[str, Any], minutes: int = 0, **kwargs: Any) -> record.AuditRecord:
    """Build an unchained record of ``event`` for ``promo`` at T0 + minutes."""
    kwargs.setdefault("approvers", APPROVERS)
    kwargs.setdefault("policies", POLICIES)
    return record.build(
        event,
        promo,
        at=T0 + datetime.timedelta(minutes=minutes),
        operator="system:serviceaccount:lockgate:operator",
        **kwargs,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _AtomicMotoServer(moto_server.ThreadedMotoServer):
    """moto in server mode, one request at a time.

    moto's DynamoDB checks a transaction's conditions and then writes without a lock, so two
    concurrent TransactWriteItems can both pass; real DynamoDB serialises them. Serialising the
    requests gives the tests the semantics of the real service (conditions atomic per request).
    """

    def _server_entry(self) -> None:
        app = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
        lock = threading.Lock()

        def atomic(environ: Any, start_response: Any) -> Any:
            with lock:
                return list(app(environ, start_response))

        self._server = werkzeug.serving.make_server(
            self._ip_address, self._port, atomic, True, request_handler=werkzeug_app.MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """A real HTTP endpoint (moto in server mode) and dummy credentials for boto3."""
    saved = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    port = _free_port()
    server = _AtomicMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def unique() -> str:
    """A name unique to this test (moto's state is shared by the session)."""
    return "lockgate-" + uuid.uuid4().hex[:10]


class Samples:
    """Sample data and builders, handed to tests as the ``samples`` fixture."""

    T0 = T0
    IMAGE = IMAGE
    APPROVERS = APPROVERS
    POLICIES = POLICIES
    promotion = staticmethod(promotion_object)
    make = staticmethod(make)

    @staticmethod
    def lifecycle(**kwargs: Any) -> list[record.AuditRecord]:
        """The records (approved, deploying, deployed, verified) of a fresh Promotion."""
        promo = promotion_object(**kwargs)
        return [
            make(event, promo, i) for i, event in enumerate(("approved", "deploying", "deployed", "verified"))
        ]


@pytest.fixture
def samples() -> type[Samples]:
    """Sample Promotions and record builders."""
    return Samples
