"""Calling admission webhooks as the Kubernetes API server does: matching, AdmissionReview v1, results.

Follows ``k8s.io/apiserver/pkg/admission/plugin/webhook``: webhooks of the stored
Mutating/ValidatingWebhookConfigurations (sorted by configuration name) are matched by rules, scope,
namespaceSelector and objectSelector, called over HTTPS with the configuration's caBundle, and their
answers turned into the same patches, denials (``admission webhook "x" denied the request: ...``) and
failure-policy errors (``failed calling webhook "x": ...``) the real API server returns.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import json
import ssl
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import jsonpatch

from lockgate.devcluster import identity, schemas

ADMISSION_GROUP = "admissionregistration.k8s.io"
DEFAULT_TIMEOUT_SECONDS = 10
SUPPORTED_REVIEW_VERSIONS = ("v1", "v1beta1")

# Where a webhook's ``clientConfig.service`` is really served, for dev and tests:
# (namespace, name) -> base URL such as ``https://127.0.0.1:8443``; the TLS server name stays the service's
# DNS name (``<name>.<namespace>.svc``), exactly what the real API server verifies the certificate against.
SERVICE_URL_OVERRIDES: dict[tuple[str, str], str] = {}

# Or a callback (namespace, name, port) -> base URL, consulted after the overrides.
ServiceResolver = Callable[[str, str, int], str | None]
service_resolver: ServiceResolver | None = None


@dataclasses.dataclass
class AdmissionAttributes:
    """One request to admit, as the API server sees it after authentication and authorization."""

    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    group: str
    version: str
    resource: str
    subresource: str
    kind: str
    namespace: str
    name: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    user: identity.UserInfo
    dry_run: bool
    kind_group: str | None = None  # the object's kind when it is not the resource's (a Scale: autoscaling/v1)
    kind_version: str | None = None


@dataclasses.dataclass
class AdmissionResult:
    """Allowed (with the possibly patched object) or denied with the HTTP code, message and reason."""

    allowed: bool
    object: dict[str, Any] | None
    code: int = 200
    message: str = ""
    reason: str = ""
    warnings: list[str] = dataclasses.field(default_factory=list)

    def as_status(self) -> dict[str, Any]:
        """The ``Status`` body the API server answers a denied request with."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


class WebhookCallError(Exception):
    """A webhook could not be called or answered nonsense (Kubernetes' ``ErrCallingWebhook``)."""

    def __init__(self, webhook: str, reason: str) -> None:
        super().__init__(f'failed calling webhook "{webhook}": {reason}')
        self.webhook = webhook


# --- matching ---


def label_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """A metav1.LabelSelector (matchLabels and matchExpressions); a missing or empty selector matches all."""
    if not selector:
        return True
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key = expression.get("key", "")
        operator = expression.get("operator", "")
        values = expression.get("values") or []
        if operator == "In" and (key not in labels or labels[key] not in values):
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def _is_namespace(attrs: AdmissionAttributes) -> bool:
    return attrs.group == "" and attrs.resource == "namespaces"


def _request_namespace(attrs: AdmissionAttributes) -> str:
    """The API server sets the namespace of a request for a Namespace object to that namespace's name."""
    if _is_namespace(attrs) and not attrs.namespace:
        return attrs.name
    return attrs.namespace


def rule_matches(rule: dict[str, Any], attrs: AdmissionAttributes) -> bool:
    """One RuleWithOperations, as ``rules.Matcher``: scope, operations, groups, versions, resources."""
    scope = rule.get("scope") or "*"
    namespace = _request_namespace(attrs)
    if scope == "Cluster" and not (namespace == "" or _is_namespace(attrs)):
        return False
    if scope == "Namespaced" and (namespace == "" or _is_namespace(attrs)):
        return False
    operations = rule.get("operations") or []
    if "*" not in operations and attrs.operation not in operations:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.group not in groups:
        return False
    versions = rule.get("apiVersions") or []
    if "*" not in versions and attrs.version not in versions:
        return False
    for entry in rule.get("resources") or []:
        resource, _, subresource = str(entry).partition("/")
        if resource in ("*", attrs.resource) and subresource in ("*", attrs.subresource):
            return True
    return False


def _labels(obj: dict[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def webhook_matches(webhook: dict[str, Any], attrs: AdmissionAttributes, namespace: dict[str, Any] | None) -> bool:
    """Whether the API server would call this webhook for the request."""
    if attrs.group == ADMISSION_GROUP:
        return False  # webhook configurations themselves are exempt, so a bad webhook cannot lock itself in
    if not any(rule_matches(rule, attrs) for rule in webhook.get("rules") or []):
        return False
    ns_selector = webhook.get("namespaceSelector")
    if _is_namespace(attrs):
        own = attrs.old_object if attrs.operation == "DELETE" else attrs.object
        if not label_selector_matches(ns_selector, _labels(own or attrs.old_object)):
            return False
    elif attrs.namespace and not label_selector_matches(ns_selector, _labels(namespace)):
        return False
    obj_selector = webhook.get("objectSelector")
    if obj_selector:
        new_match = attrs.object is not None and label_selector_matches(obj_selector, _labels(attrs.object))
        old_match = attrs.old_object is not None and label_selector_matches(obj_selector, _labels(attrs.old_object))
        if not new_match and not old_match:
            return False
    return True


def _config_name(config: dict[str, Any]) -> str:
    return str((config.get("metadata") or {}).get("name", ""))


def matching_webhooks(
    configs: Sequence[dict[str, Any]], attrs: AdmissionAttributes, namespace: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The webhooks to call, in the API server's order: configurations by name, then as listed."""
    hooks: list[dict[str, Any]] = []
    for config in sorted(configs, key=_config_name):
        for webhook in config.get("webhooks") or []:
            if webhook_matches(webhook, attrs, namespace):
                hooks.append(webhook)
    return hooks


# --- calling ---


def _operation_options(attrs: AdmissionAttributes) -> dict[str, Any] | None:
    kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}.get(attrs.operation)
    if kind is None:
        return None
    options: dict[str, Any] = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    if attrs.dry_run:
        options["dryRun"] = ["All"]
    return options


def build_review(attrs: AdmissionAttributes, *, version: str = "v1", uid: str | None = None) -> dict[str, Any]:
    """The AdmissionReview request body the API server POSTs to a webhook."""
    kind = {
        "group": attrs.group if attrs.kind_group is None else attrs.kind_group,
        "version": attrs.kind_version or attrs.version,
        "kind": attrs.kind,
    }
    resource = {"group": attrs.group, "version": attrs.version, "resource": attrs.resource}
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": kind,
        "resource": resource,
        "requestKind": dict(kind),
        "requestResource": dict(resource),
        "name": attrs.name,
        "namespace": _request_namespace(attrs),
        "operation": attrs.operation,
        "userInfo": attrs.user.as_user_info(),
        "object": copy.deepcopy(attrs.object),
        "oldObject": copy.deepcopy(attrs.old_object),
        "dryRun": attrs.dry_run,
        "options": _operation_options(attrs),
    }
    if attrs.subresource:
        request["subResource"] = attrs.subresource
        request["requestSubResource"] = attrs.subresource
    if not request["name"]:
        del request["name"]
    if not request["namespace"]:
        del request["namespace"]
    return {"apiVersion": f"admission.k8s.io/{version}", "kind": "AdmissionReview", "request": request}


def webhook_url(webhook: dict[str, Any]) -> tuple[str, str | None]:
    """The URL to POST to, and the TLS server name to verify when it differs from the URL's host."""
    client_config = webhook.get("clientConfig") or {}
    if client_config.get("url"):
        return str(client_config["url"]), None
    service = client_config.get("service") or {}
    namespace = str(service.get("namespace", ""))
    name = str(service.get("name", ""))
    port = int(service.get("port") or 443)
    path = str(service.get("path") or "")
    server_name = f"{name}.{namespace}.svc"
    base = SERVICE_URL_OVERRIDES.get((namespace, name))
    if base is None and service_resolver is not None:
        base = service_resolver(namespace, name, port)
    if base is None:
        base = f"https://{server_name}:{port}"
    return base.rstrip("/") + path, server_name


def _ssl_context(webhook: dict[str, Any]) -> ssl.SSLContext:
    ca_bundle = (webhook.get("clientConfig") or {}).get("caBundle")
    if not ca_bundle:
        return ssl.create_default_context()
    try:
        pem = base64.b64decode(ca_bundle).decode()
        return ssl.create_default_context(cadata=pem)
    except (ValueError, ssl.SSLError) as exc:
        raise WebhookCallError(str(webhook.get("name", "")), f"invalid caBundle: {exc}") from exc


class WebhookClients:
    """Kept-alive clients to webhooks, one per caBundle, as the API server caches its webhook clients.

    A new TLS connection per call (what this module did before) costs milliseconds per admitted
    write that a real cluster does not pay.
    """

    KEPT = 16  # clients for this many caBundles (each operator restart in tests brings a new one)

    def __init__(self) -> None:
        self._clients: dict[str, tuple[aiohttp.ClientSession, ssl.SSLContext]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def client(self, webhook: dict[str, Any]) -> tuple[aiohttp.ClientSession, ssl.SSLContext]:
        ca_bundle = str((webhook.get("clientConfig") or {}).get("caBundle") or "")
        if ca_bundle not in self._clients:
            context = _ssl_context(webhook)
            if len(self._clients) >= self.KEPT:  # the least recently created goes
                oldest, _ = self._clients.pop(next(iter(self._clients)))
                task = asyncio.ensure_future(oldest.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            self._clients[ca_bundle] = (aiohttp.ClientSession(), context)
        return self._clients[ca_bundle]

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for session, _ in clients.values():
            await session.close()
        if self._closing:
            await asyncio.wait(self._closing)


_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WebhookClients] = weakref.WeakKeyDictionary()


def _clients() -> WebhookClients:
    """The webhook clients of the running event loop (the API server's)."""
    return _CLIENTS.setdefault(asyncio.get_running_loop(), WebhookClients())


async def close_clients() -> None:
    """Close the running loop's webhook clients (the API server stops)."""
    clients = _CLIENTS.pop(asyncio.get_running_loop(), None)
    if clients is not None:
        await clients.close()


async def _post(
    webhook: dict[str, Any], url: str, server_name: str | None, review: dict[str, Any], within: int
) -> tuple[int, str]:
    """POST the review over a kept-alive connection (one the webhook server closed is not reused)."""
    kwargs: dict[str, Any] = {
        "json": review,
        "headers": {"Accept": "application/json"},
        "timeout": aiohttp.ClientTimeout(total=within),
    }
    if url.startswith("https://"):
        session, context = _clients().client(webhook)
        kwargs["ssl"] = context
        if server_name is not None:
            kwargs["server_hostname"] = server_name
    else:
        session = _clients().client({})[0]
    async with session.post(url, **kwargs) as response:
        return response.status, await response.text()


def _timeout(webhook: dict[str, Any]) -> int:
    value = webhook.get("timeoutSeconds")
    return DEFAULT_TIMEOUT_SECONDS if value is None else int(value)


def _review_version(webhook: dict[str, Any]) -> str:
    for version in webhook.get("admissionReviewVersions") or ["v1"]:
        if version in SUPPORTED_REVIEW_VERSIONS:
            return str(version)
    name = webhook.get("name", "")
    raise WebhookCallError(
        str(name), f"webhook does not accept known AdmissionReview versions {list(SUPPORTED_REVIEW_VERSIONS)}"
    )


def conditions_met(webhook: dict[str, Any], review: dict[str, Any]) -> bool:
    """The webhook's ``matchConditions`` (CEL over ``object``, ``oldObject``, ``request``): the webhook is
    called only if all are true; one false skips it; an evaluation error (and none false) is a failure
    to call, under the webhook's ``failurePolicy``. ``authorizer`` is not offered."""
    conditions = webhook.get("matchConditions") or []
    if not conditions:
        return True
    request = {k: v for k, v in review["request"].items() if k not in ("object", "oldObject")}
    context = {"object": review["request"].get("object"), "oldObject": review["request"].get("oldObject")}
    errors: list[str] = []
    for condition in conditions:
        try:
            met = schemas.compile_cel(str(condition.get("expression", ""))).execute({**context, "request": request})
        except Exception as exc:
            errors.append(f"{condition.get('name')}: {exc}")
            continue
        if met is not True:
            return False
    if errors:
        raise WebhookCallError(str(webhook.get("name", "")), f"matchConditions could not be evaluated: {errors}")
    return True


async def call_webhook(webhook: dict[str, Any], attrs: AdmissionAttributes) -> dict[str, Any]:
    """POST one AdmissionReview and return its validated ``response``; raises ``WebhookCallError``.

    A webhook whose ``matchConditions`` skip the request is not called: it allows, with no patch.
    """
    name = str(webhook.get("name", ""))
    version = _review_version(webhook)
    review = build_review(attrs, version=version)
    if not conditions_met(webhook, review):
        return {"uid": review["request"]["uid"], "allowed": True}
    url, server_name = webhook_url(webhook)
    timeout = _timeout(webhook)
    separator = "&" if "?" in url else "?"
    full_url = f"{url}{separator}timeout={timeout}s"
    try:
        code, text = await _post(webhook, full_url, server_name, review, timeout)
        if code != 200:
            raise WebhookCallError(
                name,
                f"failed to call webhook: an error on the server ({text.strip()!r}) "
                f"has prevented the request from succeeding "
                f"(HTTP {code})",
            )
    except WebhookCallError:
        raise
    except TimeoutError as exc:
        raise WebhookCallError(name, f'failed to call webhook: Post "{full_url}": context deadline exceeded') from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise WebhookCallError(name, f'failed to call webhook: Post "{full_url}": {exc}') from exc
    try:
        answer = json.loads(text)
    except ValueError as exc:
        raise WebhookCallError(name, f"received invalid webhook response: {exc}") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("response"), dict):
        raise WebhookCallError(name, "received invalid webhook response: webhook response was absent")
    if answer.get("apiVersion") != review["apiVersion"] or answer.get("kind") != "AdmissionReview":
        raise WebhookCallError(
            name,
            f"received invalid webhook response: expected webhook response of "
            f"{review['apiVersion']}, Kind=AdmissionReview, got "
            f"{answer.get('apiVersion')}, Kind={answer.get('kind')}",
        )
    result: dict[str, Any] = answer["response"]
    if result.get("uid") != review["request"]["uid"]:
        raise WebhookCallError(
            name,
            f"received invalid webhook response: expected response.uid="
            f'"{review["request"]["uid"]}", got "{result.get("uid", "")}"',
        )
    return result


def denial(
    webhook_name: str, response: dict[str, Any], obj: dict[str, Any] | None, warnings: list[str]
) -> AdmissionResult:
    """A webhook's refusal as the client sees it (Kubernetes' ``webhookerrors.ToStatusErr``)."""
    status = response.get("status") or {}
    code = int(status.get("code") or 0)
    if code < 400:
        code = 400
    denied_by = f'admission webhook "{webhook_name}" denied the request'
    if status.get("message"):
        message = f"{denied_by}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied_by}: {status['reason']}"
    else:
        message = f"{denied_by} without explanation"
    return AdmissionResult(
        allowed=False,
        object=obj,
        code=code,
        message=message,
        reason=str(status.get("reason") or ""),
        warnings=warnings,
    )


def _internal_error(message: str, obj: dict[str, Any] | None, warnings: list[str]) -> AdmissionResult:
    return AdmissionResult(
        allowed=False,
        object=obj,
        code=500,
        message=f"Internal error occurred: {message}",
        reason="InternalError",
        warnings=warnings,
    )


def _dry_run_unsupported(webhook: dict[str, Any], attrs: AdmissionAttributes) -> bool:
    return attrs.dry_run and webhook.get("sideEffects") not in ("None", "NoneOnDryRun")


def _dry_run_error(webhook: dict[str, Any], obj: dict[str, Any] | None, warnings: list[str]) -> AdmissionResult:
    return AdmissionResult(
        allowed=False,
        object=obj,
        code=400,
        reason="BadRequest",
        warnings=warnings,
        message=f'admission webhook "{webhook.get("name", "")}" does not support dry run',
    )


def _fails_open(webhook: dict[str, Any]) -> bool:
    return webhook.get("failurePolicy") == "Ignore"


async def mutate(
    configs: list[dict[str, Any]], attrs: AdmissionAttributes, namespace: dict[str, Any] | None
) -> AdmissionResult:
    """Call matching mutating webhooks one after another, applying each JSONPatch to the object."""
    obj = copy.deepcopy(attrs.object)
    warnings: list[str] = []
    for webhook in matching_webhooks(configs, attrs, namespace):
        name = str(webhook.get("name", ""))
        if _dry_run_unsupported(webhook, attrs):
            return _dry_run_error(webhook, obj, warnings)
        current = dataclasses.replace(attrs, object=obj)
        try:
            response = await call_webhook(webhook, current)
            warnings.extend(str(w) for w in response.get("warnings") or [])
            if not response.get("allowed"):
                return denial(name, response, obj, warnings)
            patch = response.get("patch")
            if patch:
                patch_type = response.get("patchType")
                if patch_type != "JSONPatch":
                    raise WebhookCallError(
                        name,
                        f'received invalid webhook response: unsupported patch type "{patch_type or ""}"',
                    )
                operations = json.loads(base64.b64decode(patch))
                try:
                    obj = jsonpatch.apply_patch(obj, operations)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                    return _internal_error(f"JSON Patch: {exc}", attrs.object, warnings)
        except WebhookCallError as exc:
            if _fails_open(webhook):
                continue
            return _internal_error(str(exc), obj, warnings)
        except ValueError as exc:  # undecodable patch
            if _fails_open(webhook):
                continue
            return _internal_error(
                str(WebhookCallError(name, f"received invalid webhook response: {exc}")), obj, warnings
            )
    return AdmissionResult(allowed=True, object=obj, warnings=warnings)


async def validate(
    configs: list[dict[str, Any]], attrs: AdmissionAttributes, namespace: dict[str, Any] | None
) -> AdmissionResult:
    """Call every matching validating webhook concurrently; the first refusal (in webhook order) wins."""
    hooks = matching_webhooks(configs, attrs, namespace)
    warnings: list[str] = []
    for webhook in hooks:
        if _dry_run_unsupported(webhook, attrs):
            return _dry_run_error(webhook, attrs.object, warnings)
    outcomes = await asyncio.gather(*(call_webhook(webhook, attrs) for webhook in hooks), return_exceptions=True)
    failure: AdmissionResult | None = None
    for webhook, outcome in zip(hooks, outcomes, strict=True):
        name = str(webhook.get("name", ""))
        if isinstance(outcome, WebhookCallError):
            if not _fails_open(webhook) and failure is None:
                failure = _internal_error(str(outcome), attrs.object, warnings)
            continue
        if isinstance(outcome, BaseException):
            raise outcome
        warnings.extend(str(w) for w in outcome.get("warnings") or [])
        if outcome.get("patch") or outcome.get("patchType"):
            if not _fails_open(webhook) and failure is None:
                failure = _internal_error(
                    str(
                        WebhookCallError(
                            name,
                            "received invalid webhook response: validating webhooks may not return patches",
                        )
                    ),
                    attrs.object,
                    warnings,
                )
            continue
        if not outcome.get("allowed") and failure is None:
            failure = denial(name, outcome, attrs.object, warnings)
    if failure is not None:
        failure.warnings = warnings
        return failure
    return AdmissionResult(allowed=True, object=attrs.object, warnings=warnings)
