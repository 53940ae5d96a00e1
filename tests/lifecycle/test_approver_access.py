"""Cached approver answers: when a decision to deploy may trust one, and when RBAC changes forget them."""

from __future__ import annotations

from typing import Any

from lockgate.kube import access


class CountingApi:
    """Answers SubjectAccessReviews from a table and counts them (the API's side of ``ApproverAccess``)."""

    def __init__(self) -> None:
        self.allowed: dict[str, bool] = {"bob": True}
        self.asked: list[str] = []

    async def create(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        user = body["spec"]["user"]
        self.asked.append(user)
        return {"status": {"allowed": self.allowed.get(user, False), "reason": "test"}}


def approvers() -> tuple[access.ApproverAccess, CountingApi]:
    api = CountingApi()
    return access.ApproverAccess(api, ttl=60), api  # type: ignore[arg-type]


async def test_a_deploy_decision_asks_again_until_every_rbac_kind_is_known_to_be_watched() -> None:
    checker, api = approvers()
    assert await checker.can_approve("bob", ["leads"], "production") == (True, "test")
    assert await checker.can_approve("bob", ["leads"], "production") == (True, "test")
    assert api.asked == ["bob"]  # cached
    await checker.can_approve("bob", ["leads"], "production", fresh=True)
    assert api.asked == ["bob", "bob"]  # no RBAC watch reported yet: a deploy decision asks again
    for kind in sorted(access.RBAC_KINDS - {"roles"}):
        checker.rbac_changed(kind)
    await checker.can_approve("bob", ["leads"], "production")
    await checker.can_approve("bob", ["leads"], "production", fresh=True)
    assert api.asked == ["bob"] * 4  # three kinds seen: not yet trusted
    checker.rbac_changed("roles")
    await checker.can_approve("bob", ["leads"], "production")
    await checker.can_approve("bob", ["leads"], "production", fresh=True)
    assert api.asked == ["bob"] * 5  # every kind watched: the cached answer decides


async def test_an_rbac_change_forgets_every_cached_answer() -> None:
    checker, api = approvers()
    for kind in access.RBAC_KINDS:
        checker.rbac_changed(kind)
    assert await checker.can_approve("bob", [], "production", fresh=True) == (True, "test")
    api.allowed["bob"] = False  # the binding that let bob approve is deleted ...
    checker.rbac_changed("clusterrolebindings")  # ... and its watch event arrives
    assert await checker.can_approve("bob", [], "production", fresh=True) == (False, "test")
    assert api.asked == ["bob", "bob"]


async def test_an_answer_overtaken_by_an_rbac_change_is_asked_again() -> None:
    checker, api = approvers()
    for kind in access.RBAC_KINDS:
        checker.rbac_changed(kind)
    answer_given = api.create

    async def racing(path: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        answer = await answer_given(path, body, **kw)  # the authorizer answers with the old RBAC ...
        if len(api.asked) == 1:
            api.allowed["bob"] = False  # ... bob's binding is deleted, and its event arrives first
            checker.rbac_changed("rolebindings")
        return answer

    api.create = racing  # type: ignore[method-assign]
    assert await checker.can_approve("bob", [], "production", fresh=True) == (False, "test")
    assert api.asked == ["bob", "bob"]


async def test_while_rbac_keeps_changing_an_approver_does_not_count_yet() -> None:
    checker, api = approvers()
    answer_given = api.create

    async def churning(path: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        answer = await answer_given(path, body, **kw)
        checker.rbac_changed("roles")
        return answer

    api.create = churning  # type: ignore[method-assign]
    allowed, reason = await checker.can_approve("bob", [], "production", fresh=True)
    assert not allowed and "RBAC kept changing" in reason
    assert len(api.asked) == access.ASKS_WHILE_RBAC_CHANGES
