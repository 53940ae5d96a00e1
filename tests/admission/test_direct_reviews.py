"""The image guard's reviews skip Kopf's generic admission path; every other webhook still goes through Kopf."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import kopf

from lockgate.handlers import admission

REVIEW = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "operation": "UPDATE"},
}


class OneRequestServer:
    """A webhook server that sends one review to each webhook id it is given and keeps the answers."""

    def __init__(self, *webhooks: str) -> None:
        self.webhooks = webhooks
        self.answers: dict[str, Any] = {}

    async def __call__(self, fn: Any) -> AsyncIterator[dict[str, Any]]:
        for webhook in self.webhooks:
            self.answers[webhook] = await fn(REVIEW, webhook=webhook, headers={}, sslpeer={})
        yield {"url": "https://127.0.0.1/"}


async def serve(server: OneRequestServer, routes: Mapping[str, Any]) -> dict[str, Any]:
    kopf_reviewed: list[str | None] = []

    async def through_kopf(request: Any, *, webhook: str | None = None, **_: Any) -> dict[str, Any]:
        kopf_reviewed.append(webhook)
        return {"response": {"uid": request["request"]["uid"], "allowed": True}, "kopf": True}

    direct = admission.DirectReviews(server)
    direct.routes.update(routes)
    configs = [config async for config in direct(through_kopf)]
    assert configs == [{"url": "https://127.0.0.1/"}]  # Kopf still gets the server's client config
    return {"answers": server.answers, "kopf": kopf_reviewed}


async def test_a_routed_webhook_is_answered_directly_and_the_others_by_kopf() -> None:
    async def refuse(review: Mapping[str, Any]) -> dict[str, Any]:
        async def denied() -> None:
            raise kopf.AdmissionError("namespace production is gated by Lockgate", code=403)

        return await admission.answer(denied())

    served = await serve(OneRequestServer("guard-deployments", "stamp-approver"), {"guard-deployments": refuse})
    assert served["kopf"] == ["stamp-approver"]
    assert served["answers"]["guard-deployments"] == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "allowed": False,
            "status": {"message": "namespace production is gated by Lockgate", "code": 403},
        },
    }
    assert served["answers"]["stamp-approver"]["kopf"] is True


async def test_an_allowed_review_and_a_failing_guard_answer_as_kopf_would() -> None:
    async def fine() -> None:
        return None

    async def broken() -> None:
        raise RuntimeError("view not primed")

    assert await admission.answer(fine()) == {"allowed": True}
    assert await admission.answer(broken()) == {
        "allowed": False,
        "status": {"message": "view not primed", "code": 500},
    }
