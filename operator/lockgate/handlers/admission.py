"""Kopf admission handlers: stamp identities, validate GatePolicies, guard image changes.

Each handler translates the AdmissionReview into a call of ``lockgate.admission`` and turns
``Refused`` into a denial whose message names the rule and what to do. The image guard's reviews are
served by ``DirectReviews`` without Kopf's generic admission path (Kopf still declares the webhooks).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import pathlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import kopf

from lockgate import settings as lockgate_settings
from lockgate import webhookcert
from lockgate.admission import imageguard, stamping
from lockgate.api import gatepolicy
from lockgate.gates import policies
from lockgate.kube import client as kclient
from lockgate.kube import freshreads, objects
from lockgate.lifecycle import view as lifecycle_view
from lockgate.rollout import verification

logger = logging.getLogger("lockgate.admission")
GROUP = "lockgate.dev"
MANAGED_NAME = "lockgate.dev"
#: How long the image guard waits for the operator's view to load before refusing (webhooks time out at 10 s+).
PRIMED_WAIT_SECONDS = 5.0
#: How long the guard waits for GatePolicies and a Namespace read afresh (webhooks time out at 10 s+).
READ_TIMEOUT_SECONDS = 3.0
#: The webhooks that enforce the gate stay configured when the operator stops (Kopf removes the others
#: on exit): while no operator runs, stamping and the image guard fail closed instead of vanishing.
PERSISTENT = True


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def webhook_server(settings: lockgate_settings.OperatorSettings) -> kopf.WebhookServer:
    """TLS from ``webhook_cert_dir`` when set, otherwise a fresh self-signed certificate (development)."""
    if settings.webhook_cert_dir:
        directory = pathlib.Path(settings.webhook_cert_dir)
        cert, key = directory / "tls.crt", directory / "tls.key"
        ca = directory / "ca.crt"
        return kopf.WebhookServer(
            addr=settings.webhook_host,
            port=settings.webhook_port,
            host=settings.webhook_public_host,
            certfile=cert,
            pkeyfile=key,
            cafile=ca if ca.exists() else cert,
        )
    directory = pathlib.Path(tempfile.mkdtemp(prefix="lockgate-webhook-"))
    cert, key = webhookcert.write_self_signed(directory, [settings.webhook_public_host, "127.0.0.1", "localhost"])
    return kopf.WebhookServer(
        addr=settings.webhook_host,
        port=settings.webhook_port or None,
        host=settings.webhook_public_host,
        certfile=cert,
        pkeyfile=key,
        cafile=cert,
    )


def register(
    registry: kopf.OperatorRegistry,
    kopf_settings: kopf.OperatorSettings,
    settings: lockgate_settings.OperatorSettings,
    key: bytes,
    cluster: lifecycle_view.ClusterView,
    api: kclient.Client,
    on_break_glass: Any = None,
    on_approval_delete: Any = None,
    primed: asyncio.Event | None = None,
    fresh_reads: freshreads.FreshReads | None = None,
) -> DirectReviews | None:
    """Serve the webhooks and let Kopf manage their configurations (named ``lockgate.dev``); returns the
    webhook server (None: webhooks are off).

    ``primed`` is set once the view holds every GatePolicy and Namespace: until then the image guard
    cannot tell a gated namespace from another, so it waits for it (then refuses, 503). While the watch of
    either is not streaming, the guard asks ``fresh_reads`` whether a namespace is gated when its verdict depends
    on it (None: the view answers).
    """
    if settings.webhook_port < 0:
        return None
    server = DirectReviews(webhook_server(settings))
    kopf_settings.admission.server = server
    if settings.manage_webhooks:
        kopf_settings.admission.managed = MANAGED_NAME

    @kopf.on.mutate(
        GROUP,
        "promotions",
        operations=["CREATE", "UPDATE"],
        registry=registry,
        id="stamp-requester",
        persistent=PERSISTENT,
    )
    def stamp_requester(body: kopf.Body, userinfo: kopf.UserInfo, patch: kopf.Patch, **kwargs: Any) -> None:
        old = kwargs.get("old")
        try:
            user = stamping.User.from_userinfo(dict(userinfo))
            value = stamping.stamp_promotion(key, dict(body), dict(old) if old else None, user, _now())
        except stamping.Refused as exc:
            raise kopf.AdmissionError(str(exc), code=403) from None
        if value is not None:
            patch.setdefault("metadata", {}).setdefault("annotations", {})[stamping.REQUESTED_BY] = value
        problems = verification.spec_problems(
            dict(body.get("spec") or {}),
            str(body.get("metadata", {}).get("namespace") or ""),
            settings.verification_hosts,
            before=dict(old.get("spec") or {}) if old else None,
        )
        if problems:
            raise kopf.AdmissionError("Promotion is invalid: " + "; ".join(problems), code=422)

    @kopf.on.mutate(
        GROUP, "approvals", operations=["CREATE"], registry=registry, id="stamp-approver", persistent=PERSISTENT
    )
    async def stamp_approver(body: kopf.Body, userinfo: kopf.UserInfo, patch: kopf.Patch, **_: Any) -> None:
        meta = body.get("metadata", {})
        spec = dict(body.get("spec", {}))
        namespace = str(meta.get("namespace") or "")
        if stamping.malformed_approval(spec):
            return  # unstamped: the API server's schema answers with a 422 naming the field
        try:
            user = stamping.User.from_userinfo(dict(userinfo))
            if not spec.get("specHash"):  # bind to the spec as it is now
                target = cluster.promotions.get((namespace, str(spec.get("promotion"))))
                if target is None:
                    target = await api.get_or_none(objects.promotion_path(namespace, str(spec.get("promotion"))))
                spec["specHash"] = stamping.bind_spec_hash(namespace, spec, target)
            fields = stamping.stamp_approval(key, namespace, str(meta.get("name") or ""), spec, user, _now())
        except stamping.Refused as exc:
            raise kopf.AdmissionError(str(exc), code=403) from None
        patch.setdefault("spec", {}).update({**fields, "specHash": spec["specHash"]})

    @kopf.on.validate(
        GROUP,
        "approvals",
        operations=["DELETE"],
        registry=registry,
        id="approval-withdrawal",
        persistent=PERSISTENT,
        side_effects=True,  # writes the audit record (skipped on dry runs)
    )
    async def approval_withdrawal(userinfo: kopf.UserInfo, **kwargs: Any) -> None:
        """Deleting an Approval withdraws it: recorded with who withdrew it before the API server deletes it."""
        old = kwargs.get("old")
        if not old or kwargs.get("dryrun") or on_approval_delete is None:
            return
        try:
            await on_approval_delete(dict(old), stamping.User.from_userinfo(dict(userinfo)))
        except Exception as exc:  # fail closed: no unrecorded withdrawal
            raise kopf.AdmissionError(
                f"the withdrawal could not be recorded in the audit trail ({exc}); retry later", code=503
            ) from None

    @kopf.on.validate(
        GROUP, "approvals", operations=["UPDATE"], registry=registry, id="approval-immutable", persistent=PERSISTENT
    )
    def approval_immutable(**kwargs: Any) -> None:
        old, new = kwargs.get("old"), kwargs.get("new")
        if old and new and dict(old.get("spec", {})) != dict(new.get("spec", {})):
            raise kopf.AdmissionError("Approval spec is immutable; create a new Approval", code=422)

    @kopf.on.validate(GROUP, "gatepolicies", operations=["CREATE", "UPDATE"], registry=registry, id="policy-valid")
    def policy_valid(body: kopf.Body, old: Any = None, **_: Any) -> None:
        try:
            policy = gatepolicy.GatePolicy.from_k8s(dict(body))
        except ValueError as exc:
            raise kopf.AdmissionError(f"GatePolicy is malformed: {exc}", code=422) from None
        problems = policies.validate_policy(policy)
        if problems and old:  # an update: what the stored policy already had (its status lists it) does not block
            try:  # a label or an annotation; only what the update brings in is refused
                before = set(policies.validate_policy(gatepolicy.GatePolicy.from_k8s(dict(old))))
            except ValueError:
                before = set()
            problems = [p for p in problems if p not in before]
        if problems:
            raise kopf.AdmissionError("GatePolicy is invalid: " + "; ".join(problems), code=422)

    for guarded in imageguard.GUARDED:
        guard = _register_guard(registry, settings, cluster, api, guarded, on_break_glass, primed, fresh_reads)
        server.routes[guarded.webhook_id] = guard
    return server


#: Serves one webhook's AdmissionReview request and returns the review's ``response``.
DirectReview = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]


class DirectReviews:
    """A Kopf webhook server whose listed webhooks are answered without Kopf's generic admission path.

    Kopf still declares every webhook (its managed configuration, the handler ids in the paths) and
    serves the TLS endpoint; for the image guard, which every workload change in a guarded namespace
    and every rollout of the operator pass, the request goes straight to the guard: no diff of the
    two workload bodies, no patch object, no handler selection: the guard's cost per change falls from
    ~0.7 to ~0.3 ms (``bench/guard_overhead.py``). Uses Kopf's documented webhook-server protocol.
    """

    def __init__(self, server: Callable[[Any], AsyncIterator[Any]]) -> None:
        self.server = server
        self.routes: dict[str, DirectReview] = {}
        self.listening = asyncio.Event()  # set once the server listens (readiness waits for it)

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        async def serve(request: Any, *, webhook: str | None = None, **kwargs: Any) -> Any:
            direct = self.routes.get(webhook or "")
            if direct is None:
                return await fn(request, webhook=webhook, **kwargs)
            return {
                "apiVersion": request.get("apiVersion", "admission.k8s.io/v1"),
                "kind": request.get("kind", "AdmissionReview"),
                "response": {"uid": (request.get("request") or {}).get("uid", ""), **await direct(request)},
            }

        async for client_config in self.server(serve):
            self.listening.set()
            yield client_config


async def answer(review: Awaitable[None], warnings: list[str] | None = None) -> dict[str, Any]:
    """A review's ``allowed``, ``status`` and ``warnings`` as Kopf builds them from a handler's outcome."""
    try:
        await review
    except kopf.AdmissionError as exc:
        return {"allowed": False, "status": {"message": str(exc), "code": exc.code or 500}}
    except Exception as exc:  # as Kopf answers a failed handler: denied, with the error
        logger.exception("admission review failed")
        return {"allowed": False, "status": {"message": str(exc) or repr(exc), "code": 500}}
    return {"allowed": True, **({"warnings": list(warnings)} if warnings else {})}


async def _view_loaded(primed: asyncio.Event | None, *, fail_open: bool) -> bool:
    """Wait (up to ``PRIMED_WAIT_SECONDS``) until the view holds every GatePolicy and Namespace.

    Without it a gated namespace looks ungated: refuse (503), or, where the webhook fails open anyway,
    answer False (let through).
    """
    if primed is None or primed.is_set():
        return True
    try:
        await asyncio.wait_for(primed.wait(), PRIMED_WAIT_SECONDS)
    except TimeoutError:
        if fail_open:
            return False
        raise kopf.AdmissionError(
            "Lockgate is starting: its view of GatePolicies and Namespaces is still loading, so it cannot "
            "tell whether this namespace is gated yet; retry in a few seconds",
            code=503,
        ) from None
    return True


def _register_guard(
    registry: kopf.OperatorRegistry,
    settings: lockgate_settings.OperatorSettings,
    cluster: lifecycle_view.ClusterView,
    api: kclient.Client,
    guarded: imageguard.GuardedKind,
    on_break_glass: Any,
    primed: asyncio.Event | None = None,
    fresh_reads: freshreads.FreshReads | None = None,
) -> DirectReview:
    """Declare the guard of one kind to Kopf and return the same guard for ``DirectReviews``."""
    kind = guarded.kind
    # A new Deployment/StatefulSet/DaemonSet may be allowed (onboarding); a new Pod, ReplicaSet, Job,
    # CronJob or ReplicationController is how those kinds start an image: always judged.
    judge_new = settings.guard_new_workloads or kind not in imageguard.PROMOTABLE
    # A configuration Kopf manages has no namespace selector and no match conditions: failing closed on
    # Pods, ReplicaSets and Jobs would stop every controller in the cluster (and the operator's own Pod)
    # while the operator is down; nor may every Scale of a ReplicaSet or ReplicationController (scale-downs and
    # autoscalers everywhere) wait on it. The chart's configuration fails closed, skipping the controllers and
    # calling a Scale's guard only for a rise in gated namespaces.
    fails_open = settings.manage_webhooks and guarded.fails_open_when_operator_managed

    async def gated_afresh(ns: str, *, unreadable: bool | None) -> bool:
        """Whether a GatePolicy selects ``ns``, while the view's watch of them is not streaming: the view saying so
        is enough (a namespace ungated meanwhile is judged as gated, the safe side), else the API's answer; if
        that cannot be read, ``unreadable``, or (None) a refusal saying why (a guard that fails open: the view's)."""
        if cluster.gated(ns) or fresh_reads is None:
            return cluster.gated(ns)
        try:
            found, labels = await fresh_reads.policies(ns, cluster.policy_models, seconds=READ_TIMEOUT_SECONDS)
        except freshreads.Unreadable as exc:
            if unreadable is not None:
                return unreadable
            if fails_open:  # as the webhook would, were the operator down
                logger.warning("%s; namespace %s judged by the operator's last view", exc, ns)
                return False
            raise kopf.AdmissionError(
                f"Lockgate cannot tell whether namespace {ns} is gated: its view of GatePolicies and Namespaces is not "
                f"current (a watch is down or between two streams), and {exc}. Retry in a few seconds; if it goes on, "
                "the operator needs list and watch on gatepolicies.lockgate.dev and namespaces",
                code=503,
            ) from None
        return bool(policies.matching(found, labels))

    async def removal(
        user: stamping.User, ns: str, name: str, old: Mapping[str, Any], new: Mapping[str, Any] | None, gated: bool
    ) -> imageguard.Verdict | None:
        """A ReplicaSet leaving its Deployment: deleted (``new`` None), or relabelled out of its selector or
        re-owned; judged against the Deployment as the API has it now (None: nothing to judge)."""
        owner_name = imageguard.owning_deployment(old)
        before, after = old.get("metadata") or {}, (new or {}).get("metadata") or {}
        same = all(before.get(k) == after.get(k) for k in ("labels", "ownerReferences"))
        if owner_name is None or (new is not None and same) or not gated:
            return None  # judge_removal's NotGated, without reading the owner
        owner = await objects.get_workload(api, "Deployment", ns, owner_name)
        if new is not None and (owner is None or not imageguard.leaves_owner(owner, old, new)):
            return None
        return imageguard.judge_removal(
            namespace=ns,
            name=name,
            replica_set=old,
            owner=owner,
            user=user,
            namespace_gated=True,  # checked above
            break_glass_groups=settings.break_glass_groups,
            workload_controllers=settings.workload_controllers,
            detached=new is not None,
        )

    async def launching(ns: str, job: str, cronjob: str) -> dict[str, Any] | None:
        """The CronJob a new Job names as its controller, as the API has it (None: gone, or unreadable; the Job
        is then judged as a new one, refused with the usual message)."""
        try:
            return await objects.get_cronjob(api, ns, cronjob)
        except (kclient.ApiError, kclient.ApiUnavailable) as exc:
            logger.warning("CronJob %s/%s of new Job %s unreadable (%s): judged as a new Job", ns, cronjob, job, exc)
            return None

    async def change(
        user: stamping.User, ns: str, name: str, old: Mapping[str, Any], new: Mapping[str, Any], gated: bool
    ) -> imageguard.Verdict:
        """A create or an update: its images, replicas, pause and provenance."""
        ref = (new.get("metadata", {}).get("annotations") or {}).get(imageguard.ANNOTATION_PROMOTION, "")
        promo_ns, _, promo_name = ref.partition("/")
        mine = user.username == settings.identity and promo_ns == ns and bool(promo_name)
        mine = mine and kind in imageguard.PROMOTABLE  # the operator's rollout, its Promotion to check

        launched = imageguard.launching_cronjob(new) if kind == "Job" and not old and gated else None
        cronjob = await launching(ns, name, launched) if launched else None  # kubectl create job --from=cronjob

        def judge(promotion: Any) -> imageguard.Verdict:
            return imageguard.judge(
                kind=kind,
                namespace=ns,
                name=name,
                old=dict(old),
                new=dict(new),
                user=user,
                namespace_gated=gated,
                operator_identity=settings.identity,
                break_glass_groups=settings.break_glass_groups,
                promotion=promotion,
                workload_controllers=settings.workload_controllers,
                subresource=guarded.subresource,
                cronjob=cronjob,
                image_annotations=settings.image_annotations,
            )

        # The acting replica's own view has the status it just wrote; any other replica (or a stale
        # view) asks the API before refusing the operator's rollout.
        verdict = judge(cluster.promotions.get((promo_ns, promo_name)) if mine else None)
        if not verdict.allowed and mine:
            verdict = judge(await api.get_or_none(objects.promotion_path(promo_ns, promo_name)))
        return verdict

    async def guard(
        userinfo: Mapping[str, Any],
        namespace: str | None,
        name: str | None,
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
        dryrun: bool,
        warnings: list[str],
    ) -> None:
        if (not new and not guarded.deletes) or (guarded.deletes and not old) or (not old and not judge_new):
            return
        user = stamping.User.from_userinfo(dict(userinfo))
        if imageguard.made_by_controller(kind, user.username, settings.workload_controllers, guarded.subresource):
            return  # ``judge``'s WorkloadController, which needs no view
        if not await _view_loaded(primed, fail_open=fails_open):
            logger.warning("view not loaded: %s %s/%s let through (as Ignore)", kind, namespace, name)
            return
        judged = dict(new or old or {})  # what a break-glass record describes
        meta = judged.get("metadata") or {}
        ns = namespace or str(meta.get("namespace"))
        named = str(name or meta.get("name") or meta.get("generateName"))

        async def judged_as(gated: bool) -> imageguard.Verdict | None:
            if guarded.deletes:
                assert old is not None
                return await removal(user, ns, named, old, None, gated)
            assert new is not None
            verdict = await change(user, ns, named, old or {}, new, gated)  # old empty: new, every image new
            if verdict.allowed and kind == "ReplicaSet" and old and new:  # one record names all the request does
                verdict = imageguard.combined(verdict, await removal(user, ns, named, old, new, gated))
            return verdict

        async def verdict_now() -> imageguard.Verdict | None:
            if fresh_reads is None or cluster.policies_current():
                return await judged_as(cluster.gated(ns))
            # The view may miss a namespace gated meanwhile: judged as gated first (what that allows plainly, an
            # ungated namespace allows too), and whether it is gated read only if the verdict depends on it.
            try:
                verdict = await judged_as(True)
            except (kclient.ApiError, kclient.ApiUnavailable):  # a read only a gated namespace needs failed
                return await judged_as(await gated_afresh(ns, unreadable=None))
            if verdict is not None and not verdict.allowed and not await gated_afresh(ns, unreadable=None):
                return await judged_as(False)
            if verdict is not None and verdict.emergency and not await gated_afresh(ns, unreadable=True):
                return await judged_as(False)  # not gated after all: nothing to record
            return verdict

        verdict = await verdict_now()
        if verdict is None:
            return
        if not verdict.allowed:
            logger.warning("denied change of %s %s/%s by %s: %s", kind, ns, named, user.username, verdict.message)
            raise kopf.AdmissionError(verdict.message, code=403)
        if verdict.emergency and on_break_glass is not None and not dryrun:
            try:
                await on_break_glass(kind, judged, user, verdict)
            except Exception as exc:  # fail closed: no unrecorded break-glass change
                raise kopf.AdmissionError(
                    f"break-glass change refused: it could not be recorded in the audit trail ({exc}); retry later",
                    code=503,
                ) from None
        if verdict.emergency:  # kubectl shows it: the person sees the change is on the record as an emergency
            warnings.append(f"Lockgate: {verdict.message}" + (" (dry run: nothing recorded)" if dryrun else ""))

    @kopf.on.validate(
        guarded.group,
        "v1",
        guarded.plural,
        subresource=guarded.subresource,
        operations=guarded.operations,
        registry=registry,
        id=guarded.webhook_id,
        persistent=PERSISTENT,
        side_effects=True,  # a break-glass change writes an emergency record (skipped on dry runs)
        ignore_failures=fails_open,
    )
    async def declared(userinfo: kopf.UserInfo, namespace: str | None, name: str | None, **kwargs: Any) -> None:
        said = kwargs.get("warnings")
        warnings = said if isinstance(said, list) else []
        await guard(
            userinfo, namespace, name, kwargs.get("old"), kwargs.get("new"), bool(kwargs.get("dryrun")), warnings
        )

    async def direct(review: Mapping[str, Any]) -> dict[str, Any]:
        request = review.get("request") or {}
        resource = request.get("resource") or {}
        sent = (resource.get("group") or "", resource.get("resource"), request.get("subResource") or None)
        if sent != (guarded.group, guarded.plural, guarded.subresource):
            return {  # a configuration that sends another resource here: never judged as this kind
                "allowed": False,
                "status": {"code": 400, "message": f"webhook {guarded.webhook_id} does not judge {sent}"},
            }
        new, old = request.get("object"), request.get("oldObject")
        meta = (new or old or {}).get("metadata") or {}
        warnings: list[str] = []
        return await answer(
            guard(
                request.get("userInfo") or {},
                request.get("namespace") or meta.get("namespace"),
                request.get("name") or meta.get("name"),
                old,
                new,
                bool(request.get("dryRun")),
                warnings,
            ),
            warnings,
        )

    return direct
