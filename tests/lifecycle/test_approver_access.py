"""Cached approver answers: when a decision to deploy may trust one, and when RBAC changes forget them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, cast

from lockgate.devcluster import server, world
from lockgate.devcluster import testing as devtesting
from lockgate.kube import access, config, rbacwatch
from lockgate.kube import client as kclient


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


async def test_a_deploy_decision_asks_again_unless_every_rbac_kind_is_watched() -> None:
    checker, api = approvers()
    assert await checker.can_approve("bob", ["leads"], "production") == (True, "test")
    assert await checker.can_approve("bob", ["leads"], "production") == (True, "test")
    assert api.asked == ["bob"]  # cached
    await checker.can_approve("bob", ["leads"], "production", fresh=True)
    assert api.asked == ["bob", "bob"]  # no RBAC watch reported yet: a deploy decision asks again
    for kind in sorted(access.RBAC_KINDS - {"roles"}):
        checker.watch_opened(kind)
    await checker.can_approve("bob", ["leads"], "production")
    await checker.can_approve("bob", ["leads"], "production", fresh=True)
    assert api.asked == ["bob"] * 4  # three kinds watched: not yet trusted
    checker.watch_opened("roles")
    await checker.can_approve("bob", ["leads"], "production")
    await checker.can_approve("bob", ["leads"], "production", fresh=True)
    assert api.asked == ["bob"] * 5  # every kind watched: the cached answer decides
    checker.watch_lost("rolebindings")
    await checker.can_approve("bob", ["leads"], "production")
    await checker.can_approve("bob", ["leads"], "production", fresh=True)
    assert api.asked == ["bob"] * 7  # a lost watch forgets, and deploy decisions ask again


async def test_an_rbac_change_forgets_every_cached_answer() -> None:
    checker, api = approvers()
    for kind in access.RBAC_KINDS:
        checker.watch_opened(kind)
    assert await checker.can_approve("bob", [], "production", fresh=True) == (True, "test")
    api.allowed["bob"] = False  # the binding that let bob approve is deleted ...
    checker.rbac_changed("clusterrolebindings")  # ... and its watch event arrives
    assert await checker.can_approve("bob", [], "production", fresh=True) == (False, "test")
    assert api.asked == ["bob", "bob"]


async def test_an_answer_overtaken_by_an_rbac_change_is_asked_again() -> None:
    checker, api = approvers()
    for kind in access.RBAC_KINDS:
        checker.watch_opened(kind)
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


async def wait_until(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


class RecordingAccess(access.ApproverAccess):
    """Remembers which RBAC kinds were reported changed."""

    changes: list[str]

    def rbac_changed(self, kind: str) -> None:
        self.changes.append(kind)
        super().rbac_changed(kind)


async def test_the_rbac_watch_opens_forgets_on_changes_and_reports_a_refused_watch() -> None:
    with devtesting.running() as cluster:
        creds = config.load(cluster.kubeconfig, world.OPERATOR_CONTEXT)
        async with kclient.Client(creds) as api:
            checker = RecordingAccess(api, ttl=60)
            checker.changes = []
            looks: list[int] = []
            states: list[tuple[str, bool]] = []
            watch = rbacwatch.RbacWatch(
                api,
                checker,
                lambda: looks.append(1),
                server_seconds=3,
                state=lambda plural: lambda up: states.append((plural, up)),
            )
            task = asyncio.create_task(watch.run())
            try:
                await wait_until(lambda: checker.watching_rbac)
                assert len(looks) >= 4  # a look after each kind's stream opened (changes may have been missed)
                assert sorted(set(states)) == [(kind, True) for kind in sorted(access.RBAC_KINDS)]  # lockgate_watch_up
                await checker.can_approve("bob", [], "production", fresh=True)
                # Between two streams (each ends after server_seconds) changes may go unseen: not watched, the
                # answers forgotten; watched again once the next stream proves healthy.
                generation = checker._generation
                await wait_until(lambda: not checker.watching_rbac)
                assert checker._generation > generation and not checker._cache
                await wait_until(lambda: checker.watching_rbac)

                checker.changes.clear()
                role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "rules": []}
                role["metadata"] = {"name": "new-role", "namespace": "production"}
                async with kclient.Client(config.load(cluster.kubeconfig, "admin")) as admin:
                    await admin.create(kclient.resource_path(rbacwatch.GROUP, "v1", "roles", "production"), role)
                await wait_until(lambda: "roles" in checker.changes)  # the answers are forgotten
                assert set(checker.changes) == {"roles"}

                def refuse(record: server.RequestRecord) -> server.Fault | None:
                    refused = record.resource == "rolebindings" and record.user == world.OPERATOR_USERNAME
                    return server.Fault(code=403, reason="Forbidden", message="no") if refused else None

                cluster.cluster.fault_hook = refuse
                await wait_until(lambda: ("rolebindings", False) in states, within=10)  # the next stream is refused
                assert not checker.watching_rbac
                cluster.cluster.fault_hook = None
                await wait_until(lambda: checker.watching_rbac, within=15)  # and it comes back
            finally:
                cluster.cluster.fault_hook = None
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def test_what_arrives_before_a_kind_is_open_is_one_look_and_a_quiet_renewal_is_none() -> None:
    """A listing of many RBAC objects must not overtake every answer asked meanwhile ("RBAC kept changing"), and
    a stream renewed with nothing new (every few minutes) must not re-judge every waiting Promotion."""
    checker = RecordingAccess(cast(Any, None), ttl=60)
    checker.changes = []
    looks: list[int] = []
    watch = rbacwatch.RbacWatch(cast(Any, None), checker, lambda: looks.append(1))
    roles = next(i for i in watch.informers if i.kind == "roles")
    binding = {"metadata": {"name": "b", "namespace": "production", "resourceVersion": "1"}}
    generation = checker.generation
    for _ in range(1000):  # a listing, before the stream opened
        roles.on_event("ADDED", binding)
    assert checker.generation == generation and checker.changes == [] and looks == []
    roles.on_current(True)
    assert looks == [1] and checker.generation == generation + 1  # opened: forgotten once, judged again once
    roles.on_event("MODIFIED", binding)  # a change on the open stream
    assert checker.changes == ["roles"] and looks == [1, 1]
    roles.on_current(False)
    roles.on_current(True)  # renewed, nothing new: forgotten (cheap), nobody re-judged
    assert looks == [1, 1]
    roles.on_current(False)
    roles.on_event("DELETED", binding)  # the resumed stream's backlog
    roles.on_current(True)
    assert looks == [1, 1, 1]
