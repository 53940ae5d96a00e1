"""The DevCluster: the HTTP pipeline of the embedded Kubernetes API server.

Every request goes: parse -> authenticate -> impersonate -> fault hook -> authorize -> dispatch. Writes go:
decode/patch -> defaults -> prune -> mutating admission -> validation -> validating admission -> store
(metadata, resourceVersion, watch event) -> notify the workload controller -> respond.
Built on kmock's ``KubernetesEmulator``: its object array mirrors every stored object for assertions, and
unknown non-API paths fall back to kmock's own DSL reactions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import dataclasses
import datetime
import inspect
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp.web
import kmock
import yaml

from lockgate.devcluster import (
    admission,
    defaults,
    discovery,
    errors,
    identity,
    patching,
    protobuf,
    rbac,
    resources,
    schemas,
    selectors,
    store,
    tables,
    workloads,
)

logger = logging.getLogger(__name__)

WORKLOAD_RESOURCES = ("deployments", "statefulsets", "daemonsets")
_REVIEWS = ("subjectaccessreviews", "selfsubjectaccessreviews", "localsubjectaccessreviews")
_RBAC_PLURALS = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
_DEFAULT_WATCH_TIMEOUT = 1800.0


@dataclasses.dataclass
class RequestRecord:
    """One API request as the request log keeps it (for counting API calls per user)."""

    time: float
    method: str
    path: str
    verb: str
    user: str = ""
    groups: tuple[str, ...] = ()
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    user_agent: str = ""
    code: int = 0


@dataclasses.dataclass(frozen=True)
class Fault:
    """What the fault hook injects: a delay, and/or an error answered instead of serving the request.

    ``headers`` go with the error (e.g. ``Retry-After`` on a 429); ``drop_watch_after`` cuts a watch
    stream that many seconds after it starts, without a clean end (as a dropped connection would).
    """

    delay: float = 0.0
    code: int | None = None
    reason: str = "InternalError"
    message: str = "injected fault"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    drop_watch_after: float | None = None


FaultHook = Callable[[RequestRecord], "Awaitable[Fault | None] | Fault | None"]


def _encode_continue(resource_version: int, after: tuple[str, str]) -> str:
    raw = json.dumps({"rv": resource_version, "after": list(after)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["after"][0]), str(data["after"][1]))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise errors.bad_request(f"invalid continue token: {token!r}") from exc


@dataclasses.dataclass
class ParsedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    group: str | None = None  # None: a non-resource request
    version: str = ""
    plural: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    verb: str = ""
    drop_watch_after: float | None = None  # set by an injected fault
    warnings: list[str] = dataclasses.field(default_factory=list)  # admission webhooks' warnings, for the client

    @property
    def is_resource(self) -> bool:
        return self.group is not None and bool(self.plural)

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"

    def header(self, name: str) -> str:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return ""


def parse_request(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
) -> ParsedRequest:
    """Split an API path into group/version/namespace/plural/name/subresource and derive the verb."""
    req = ParsedRequest(method=method.upper(), path=path, query=query, headers=headers, body=body)
    parts = [part for part in path.strip("/").split("/") if part]
    rest: list[str]
    if len(parts) >= 2 and parts[0] == "api":
        req.group, req.version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        req.group, req.version, rest = parts[1], parts[2], parts[3:]
    else:
        req.verb = method.lower()
        return req
    if (
        rest
        and rest[0] == "namespaces"
        and len(rest) >= 3
        and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
    ):
        req.namespace, rest = rest[1], rest[2:]
    if rest:
        req.plural = rest[0]
        req.name = rest[1] if len(rest) > 1 else ""
        req.subresource = "/".join(rest[2:])
    watch = query.get("watch") in ("true", "1")
    if not req.plural:
        req.verb = method.lower()
    elif req.method == "GET":
        req.verb = "watch" if watch else ("get" if req.name else "list")
    elif req.method == "POST":
        req.verb = "create"
    elif req.method == "PUT":
        req.verb = "update"
    elif req.method == "PATCH":
        req.verb = "patch"
    elif req.method == "DELETE":
        req.verb = "delete" if req.name else "deletecollection"
    else:
        req.verb = method.lower()
    return req


def now_timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> aiohttp.web.Response:
    return aiohttp.web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json", headers=headers
    )


def _warned(response: aiohttp.web.Response, warnings: list[str]) -> aiohttp.web.Response:
    """The admission webhooks' warnings as the API server sends them: ``Warning: 299 - "text"`` headers, each
    text once; one with a control character is dropped, as the API server drops it."""
    for text in dict.fromkeys(warnings):
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            continue
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{quoted}"')
    return response


def _decode(body: bytes, content_type: str) -> Any:
    if not body:
        return None
    if content_type.startswith(protobuf.MEDIA_TYPE):
        return protobuf.decode_object(body)
    try:
        if "yaml" in content_type:
            return yaml.safe_load(body)
        return json.loads(body)
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from exc


def _spec_part(obj: dict[str, Any], rtype: resources.ResourceType) -> Any:
    """What bumps ``generation`` when it changes: spec, or for CRDs with /status, all but metadata/status."""
    if rtype.builtin or not rtype.has_status:
        if rtype.builtin:
            return obj.get("spec")
        return {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class DevCluster(kmock.KubernetesEmulator):
    """An embedded Kubernetes API server faithful where kubectl, Kopf and the kubernetes client look."""

    def __init__(
        self,
        *,
        authenticator: identity.Authenticator | None = None,
        workload_delay: float = 0.3,
        bookmark_interval: float = 5.0,
    ) -> None:
        super().__init__()
        self.registry = resources.Registry(resources.builtin_types())
        self.store = store.Store(on_event=self._mirror)
        self.authenticator = authenticator or identity.Authenticator()
        self.requests: list[RequestRecord] = []
        self.fault_hook: FaultHook | None = None
        self.debug = False
        self.bookmark_interval = bookmark_interval
        self.workload_delay = workload_delay
        self._workloads: workloads.WorkloadController | None = None
        self._rbac_cache: rbac.RbacObjects | None = None
        self._watch_tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------------------------------------------
    # Setup helpers (sync: for seeding before serving)

    def add_user(self, token: str, username: str, groups: Iterable[str]) -> None:
        self.authenticator.add_token(token, username, list(groups))

    def load_crd(self, crd: dict[str, Any]) -> None:
        """Store a CRD object (as if created through the API) and serve its resources."""
        self.seed(crd)

    def seed(
        self, obj: dict[str, Any], *, status: dict[str, Any] | None = None, observe: bool = True
    ) -> dict[str, Any]:
        """Store an object directly, defaulted but without authentication or admission.

        ``status`` is stored as given (e.g. an already completed rollout); ``observe=False`` keeps the
        workload controller from starting a rollout for it.
        """
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        rtype = self.registry.by_kind(api_version, kind)
        if rtype is None:
            raise ValueError(f"unknown kind {api_version}/{kind}")
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if rtype.namespaced else ""
        self._prepare_new(rtype, obj, namespace)
        if status is not None:
            obj["status"] = status
        stored = self.store.create((rtype.group, rtype.plural), namespace, meta["name"], obj)
        self._after_write(rtype, None, stored, status_only=not observe)
        return stored

    @property
    def workloads(self) -> workloads.WorkloadController:
        if self._workloads is None:
            self._workloads = workloads.WorkloadController(
                self._write_workload_status, delay=self.workload_delay
            )
        return self._workloads

    async def close(self) -> None:
        for task in list(self._watch_tasks):
            task.cancel()
        if self._workloads is not None:
            await self._workloads.close()
        await admission.close_clients()

    def _mirror(self, event: store.Event) -> None:
        """Keep kmock's object array in step with the store, for kmock-style assertions."""
        obj = event.object
        meta = obj.get("metadata", {})
        group, plural = event.group_resource
        version = obj.get("apiVersion", "v1").split("/")[-1]
        key = (kmock.resource(group, version, plural), meta.get("namespace") or None, meta.get("name", ""))
        if event.type == "DELETED":
            if key in self.objects:
                self.objects[key].delete()
        elif key in self.objects:
            self.objects[key].create(obj)
        else:
            self.objects[key] = obj

    # ------------------------------------------------------------------------------------------------------
    # HTTP entry

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        path = raw_request.path
        if not (
            path.startswith(("/api", "/openapi", "/version", "/healthz", "/livez", "/readyz")) or path == "/"
        ):
            return await super().__call__(raw_request)  # kmock's own DSL reactions and fallbacks
        body = await raw_request.read()
        req = parse_request(
            raw_request.method, path, dict(raw_request.query), dict(raw_request.headers), body
        )
        record = RequestRecord(
            time=time.time(),
            method=req.method,
            path=path,
            verb=req.verb,
            api_group=req.group or "",
            resource=req.plural,
            subresource=req.subresource,
            namespace=req.namespace,
            name=req.name,
            user_agent=req.header("User-Agent"),
        )
        self.requests.append(record)
        if self.debug:
            logger.warning(
                "devcluster: %s %s %s %r", req.method, path, req.header("Content-Type"), body[:200]
            )
        try:
            response = await self._serve(req, record, raw_request)
        except errors.ApiError as exc:
            response = _json_response(exc.body(), exc.code, exc.headers)
        except Exception as exc:  # a bug here must still look like an apiserver failure to clients
            logger.exception("devcluster: internal error serving %s %s", req.method, path)
            err = errors.internal(repr(exc))
            response = _json_response(err.body(), err.code)
        record.code = response.status
        return response

    async def _serve(
        self, req: ParsedRequest, record: RequestRecord, raw_request: aiohttp.web.BaseRequest
    ) -> aiohttp.web.StreamResponse:
        user = self.authenticator.authenticate(req.headers)
        if user is None:
            raise errors.unauthorized()
        try:
            # the raw multidict: Impersonate-Group may repeat (kubectl --as-group a --as-group b)
            user = identity.impersonate(user, raw_request.headers, self._authorize)
        except identity.ImpersonationForbidden as exc:
            raise errors.ApiError(exc.code, exc.reason, exc.message, {}) from exc
        record.user, record.groups = user.username, user.groups

        if self.fault_hook is not None:
            fault = self.fault_hook(record)
            if inspect.isawaitable(fault):
                fault = await fault
            if isinstance(fault, Fault):
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.code is not None:
                    raise errors.ApiError(fault.code, fault.reason, fault.message, {}, headers=fault.headers)
                req.drop_watch_after = fault.drop_watch_after

        if req.is_resource:
            attrs = rbac.Attributes(
                user=user,
                verb=req.verb,
                api_group=req.group or "",
                resource=req.plural,
                subresource=req.subresource,
                namespace=req.namespace,
                name=req.name,
            )
        else:
            attrs = rbac.Attributes(user=user, verb=req.verb, path=req.path)
        verdict = self._authorize(attrs)
        if not verdict.allowed:
            raise errors.forbidden(rbac.forbidden_message(attrs), req.plural, req.group or "", req.name)

        if not req.is_resource:
            return self._serve_non_resource(req)
        return await self._serve_resource(req, user, raw_request)

    def _authorize(self, attrs: rbac.Attributes) -> rbac.Verdict:
        return rbac.authorize(attrs, self._rbac_objects())

    def _rbac_objects(self) -> rbac.RbacObjects:
        if self._rbac_cache is None:
            group = "rbac.authorization.k8s.io"
            self._rbac_cache = rbac.RbacObjects(
                roles=self.store.list((group, "roles"))[0],
                cluster_roles=self.store.list((group, "clusterroles"))[0],
                role_bindings=self.store.list((group, "rolebindings"))[0],
                cluster_role_bindings=self.store.list((group, "clusterrolebindings"))[0],
            )
        return self._rbac_cache

    # ------------------------------------------------------------------------------------------------------
    # Non-resource endpoints

    def _serve_non_resource(self, req: ParsedRequest) -> aiohttp.web.StreamResponse:
        if req.method != "GET":
            raise errors.method_not_allowed()
        path = req.path.rstrip("/") or "/"
        body: Any = None
        if path == "/":
            paths = {"/api", "/api/v1", "/apis", "/version", "/openapi/v3", "/healthz", "/livez", "/readyz"}
            for group, versions in self.registry.groups().items():
                if group:
                    paths |= {f"/apis/{group}"} | {f"/apis/{group}/{version}" for version in versions}
            body = {"paths": sorted(paths)}
        elif path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok")
        elif path == "/version":
            body = discovery.VERSION_INFO
        elif path == "/api":
            body = discovery.api_versions()
        elif path == "/api/v1":
            body = discovery.api_resource_list(self.registry, "", "v1")
        elif path == "/apis":
            body = discovery.api_group_list(self.registry)
        elif path == "/openapi/v3":
            body = discovery.openapi_v3_root(self.registry)
        elif path.startswith("/openapi/v3/"):
            parts = path[len("/openapi/v3/") :].split("/")
            if parts[0] == "api" and len(parts) == 2:
                body = discovery.openapi_v3_group_version(self.registry, "", parts[1])
            elif parts[0] == "apis" and len(parts) == 3:
                body = discovery.openapi_v3_group_version(self.registry, parts[1], parts[2])
        elif path.startswith("/apis/"):
            parts = path.split("/")[2:]
            if len(parts) == 1:
                body = discovery.api_group(self.registry, parts[0])
            elif len(parts) == 2:
                body = discovery.api_resource_list(self.registry, parts[0], parts[1])
        if body is None:
            raise errors.endpoint_not_found()
        return _json_response(body)

    # ------------------------------------------------------------------------------------------------------
    # Resource endpoints

    def _rtype(self, req: ParsedRequest) -> resources.ResourceType:
        rtype = self.registry.get(req.group or "", req.version, req.plural)
        if rtype is None:
            raise errors.endpoint_not_found()
        if rtype.namespaced is False and req.namespace:
            raise errors.endpoint_not_found()
        return rtype

    async def _serve_resource(
        self, req: ParsedRequest, user: identity.UserInfo, raw_request: aiohttp.web.BaseRequest
    ) -> aiohttp.web.StreamResponse:
        rtype = self._rtype(req)
        if req.subresource and req.subresource not in rtype.subresources:
            raise errors.endpoint_not_found()
        if rtype.create_only:
            if req.verb != "create":
                raise errors.method_not_allowed()
            return _json_response(self._review(rtype, req, user), 201)
        if req.verb not in rtype.verbs and req.verb not in ("get", "list", "watch"):
            raise errors.method_not_allowed()
        if req.verb == "get":
            obj = self._get(rtype, req.namespace, req.name)
            if req.subresource == "scale":
                return _json_response(self._scale(rtype, obj))
            return self._respond_objects(rtype, req, [obj], single=True)
        if req.verb == "list":
            return self._list(rtype, req)
        if req.verb == "watch":
            return await self._watch(rtype, req, raw_request)
        if req.verb == "create":
            obj = await self._create(rtype, req, user)
            return _warned(_json_response(obj, 201), req.warnings)
        if req.verb in ("update", "patch"):
            obj, created = await self._update(rtype, req, user)
            return _warned(_json_response(obj, 201 if created else 200), req.warnings)
        if req.verb == "delete":
            obj = await self._delete(rtype, req, user, req.name)
            return _warned(_json_response(obj), req.warnings)
        if req.verb == "deletecollection":
            return await self._delete_collection(rtype, req, user)
        raise errors.method_not_allowed()

    def _gr(self, rtype: resources.ResourceType) -> store.GroupResource:
        return (rtype.group, rtype.plural)

    def _get(self, rtype: resources.ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(self._gr(rtype), namespace, name)
        if obj is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        return self._as_version(rtype, obj)

    def _as_version(self, rtype: resources.ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        obj["apiVersion"] = rtype.api_version
        obj["kind"] = rtype.kind
        return obj

    def _respond_objects(
        self,
        rtype: resources.ResourceType,
        req: ParsedRequest,
        objs: list[dict[str, Any]],
        *,
        single: bool,
        resource_version: str = "",
        continue_token: str = "",
    ) -> aiohttp.web.Response:
        if tables.wants_table(req.header("Accept")):
            return _json_response(
                tables.render(
                    rtype,
                    objs,
                    include_object=req.query.get("includeObject", "Metadata"),
                    resource_version=resource_version,
                    continue_token=continue_token,
                )
            )
        if single:
            return _json_response(objs[0])
        metadata = {"resourceVersion": resource_version} | ({"continue": continue_token} if continue_token else {})
        return _json_response(
            {"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": metadata, "items": objs}
        )

    def _predicate(self, req: ParsedRequest) -> selectors.Predicate:
        labels = selectors.label_selector(req.query.get("labelSelector"))
        fields = selectors.field_selector(req.query.get("fieldSelector"))
        return lambda obj: labels(obj) and fields(obj)

    def _list(self, rtype: resources.ResourceType, req: ParsedRequest) -> aiohttp.web.Response:
        """A list, or one page of it (``limit`` and ``continue``, as client-go's pager and kubectl ask).

        Pages are in key order and every page carries the first page's resourceVersion, so a watch from
        it replays whatever changed meanwhile (kube-apiserver serves later pages from that snapshot;
        here they show the current objects: a change may appear in a page and again as an event).
        """
        raw_limit, token = req.query.get("limit", ""), req.query.get("continue", "")
        if raw_limit and not raw_limit.isdigit():
            raise errors.bad_request(f"invalid limit: {raw_limit!r}")
        limit = int(raw_limit) if raw_limit and int(raw_limit) > 0 else None
        since, after = _decode_continue(token) if token else (None, None)
        items, rv = self.store.list(
            self._gr(rtype),
            req.namespace if rtype.namespaced and req.namespace else None,
            predicate=self._predicate(req),
            after=after,
            limit=limit + 1 if limit else None,
        )
        list_rv = since or rv
        follow = ""
        if limit is not None and len(items) > limit:
            items = items[:limit]
            last = items[-1].get("metadata", {})
            follow = _encode_continue(list_rv, (str(last.get("namespace") or ""), str(last.get("name"))))
        objs = [self._as_version(rtype, obj) for obj in items]
        return self._respond_objects(
            rtype, req, objs, single=False, resource_version=str(list_rv), continue_token=follow
        )

    async def _watch(
        self, rtype: resources.ResourceType, req: ParsedRequest, raw_request: aiohttp.web.BaseRequest
    ) -> aiohttp.web.StreamResponse:
        predicate = self._predicate(req)
        namespace = req.namespace if rtype.namespaced else ""
        if req.name:
            name = req.name
            base = predicate
            predicate = lambda obj: base(obj) and obj.get("metadata", {}).get("name") == name  # noqa: E731

        def scoped(obj: dict[str, Any]) -> bool:
            return (not namespace or obj.get("metadata", {}).get("namespace") == namespace) and predicate(obj)

        raw_rv = req.query.get("resourceVersion", "")
        try:
            since = int(raw_rv) if raw_rv not in ("", "0") else None
        except ValueError as exc:
            raise errors.bad_request(f"invalid resource version: {raw_rv!r}") from exc
        timeout = (
            float(req.query["timeoutSeconds"]) if req.query.get("timeoutSeconds") else _DEFAULT_WATCH_TIMEOUT
        )
        table = tables.wants_table(req.header("Accept"))
        bookmarks = req.query.get("allowWatchBookmarks") in ("true", "1") and not table
        if since is not None and since < self.store.oldest_resource_version():
            raise errors.gone(
                f"too old resource version: {since} ({self.store.oldest_resource_version() + 1})"
            )

        def bookmark(rv: int) -> dict[str, Any]:
            return {
                "kind": rtype.kind,
                "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": str(rv)},
            }

        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(raw_request)
        include = req.query.get("includeObject", "Metadata")
        first = True
        try:
            async with asyncio.timeout(req.drop_watch_after):  # None: no injected drop
                async for event in self.store.watch(
                    self._gr(rtype),
                    since=since,
                    predicate=scoped,
                    timeout=timeout,
                    bookmark_every=self.bookmark_interval if bookmarks else None,
                    bookmark=bookmark,
                ):
                    obj = event["object"]
                    if event["type"] != "BOOKMARK":
                        obj = self._as_version(rtype, obj)
                        if table:
                            obj = tables.render(
                                rtype,
                                [obj],
                                include_object=include,
                                resource_version=obj["metadata"].get("resourceVersion", ""),
                                with_definitions=first,
                            )
                            first = False
                    line = json.dumps({"type": event["type"], "object": obj}) + "\n"
                    await response.write(line.encode())
        except TimeoutError:  # an injected fault: the connection just drops, without a clean end
            if raw_request.transport is not None:
                raw_request.transport.abort()
            return response
        except errors.ApiError as exc:
            await response.write((json.dumps({"type": "ERROR", "object": exc.body()}) + "\n").encode())
        except ConnectionError:  # the client went away: the watch simply ends, as on a real server
            return response
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await response.write_eof()
            raise
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    # ------------------------------------------------------------------------------------------------------
    # Writes

    def _body_object(self, rtype: resources.ResourceType, req: ParsedRequest) -> dict[str, Any]:
        data = _decode(req.body, req.header("Content-Type"))
        if not isinstance(data, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        return data

    def _check_identity(self, rtype: resources.ResourceType, obj: dict[str, Any], req: ParsedRequest) -> None:
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if req.subresource == "scale":
            return
        if kind is not None and kind != rtype.kind:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rtype.api_version})"
                if api_version != rtype.api_version
                else f"kind {kind!r} does not match the resource kind {rtype.kind!r}"
            )
        if (
            api_version is not None
            and api_version != rtype.api_version
            and self.registry.get(rtype.group, api_version.split("/")[-1], rtype.plural) is None
        ):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the "
                f"expected API version ({rtype.api_version})"
            )
        meta = obj.setdefault("metadata", {})
        if rtype.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and req.namespace and body_ns != req.namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )

    def _prepare_new(self, rtype: resources.ResourceType, obj: dict[str, Any], namespace: str) -> None:
        obj["apiVersion"] = rtype.api_version
        obj["kind"] = rtype.kind
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise errors.invalid(
                rtype.kind,
                rtype.group,
                "",
                [
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value: name or generateName is required",
                        "field": "metadata.name",
                    }
                ],
            )
        if rtype.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_timestamp()
        meta["generation"] = 1
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(key, None)
        if rtype.has_status and rtype.plural != "namespaces":
            obj.pop("status", None)
        self._default(rtype, obj)

    def _default(self, rtype: resources.ResourceType, obj: dict[str, Any]) -> None:
        if rtype.builtin:
            defaults.apply(rtype.plural, rtype.group, obj)
        elif rtype.schema is not None:
            pruned = schemas.prune(obj, rtype.schema, root=True)
            obj.clear()
            obj.update(pruned)
            schemas.apply_defaults(obj, rtype.schema)

    def _validate(
        self, rtype: resources.ResourceType, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        name = obj.get("metadata", {}).get("name", "")
        if rtype.skip_validation:
            return
        if rtype.builtin:
            causes = schemas.validate_builtin(obj)
        elif rtype.schema is not None:
            causes = schemas.validate_structural(obj, old, rtype.schema, root=True)
        else:
            causes = []
        if causes:
            raise errors.invalid(rtype.kind, rtype.group, name, causes)

    def _strict_fields(self, rtype: resources.ResourceType, req: ParsedRequest, obj: dict[str, Any]) -> None:
        """``fieldValidation=Strict``: unknown fields of a CRD are a 400, as the apiserver answers."""
        if req.query.get("fieldValidation") != "Strict" or rtype.builtin or rtype.schema is None:
            return
        pruned = schemas.prune(obj, rtype.schema, root=True)
        unknown = _unknown_fields(obj, pruned)
        if unknown:
            raise errors.bad_request(
                "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in unknown)
            )

    def _namespace_obj(self, namespace: str) -> dict[str, Any] | None:
        return self.store.get(("", "namespaces"), "", namespace) if namespace else None

    def _require_namespace(self, rtype: resources.ResourceType, namespace: str) -> None:
        if rtype.namespaced:
            if not namespace:
                raise errors.endpoint_not_found()
            ns = self._namespace_obj(namespace)
            if ns is None:
                raise errors.not_found("namespaces", "", namespace)

    def _admission_attrs(
        self,
        rtype: resources.ResourceType,
        req: ParsedRequest,
        operation: str,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
        user: identity.UserInfo,
        name: str,
    ) -> admission.AdmissionAttributes:
        scale = req.subresource == "scale"  # as the API server does: the webhook sees the Scale, not the object
        if scale:
            obj = self._scale(rtype, obj) if obj is not None else None
            old = self._scale(rtype, old) if old is not None else None
        return admission.AdmissionAttributes(
            operation=operation,
            group=rtype.group,
            version=rtype.version,
            kind_group="autoscaling" if scale else None,
            kind_version="v1" if scale else None,
            resource=rtype.plural,
            subresource=req.subresource,
            kind="Scale" if scale else rtype.kind,
            namespace=req.namespace if rtype.namespaced else "",
            name=name,
            object=obj,
            old_object=old,
            user=user,
            dry_run=req.dry_run,
        )

    def _admissible(self, rtype: resources.ResourceType) -> bool:
        return rtype.group not in ("admissionregistration.k8s.io",)

    async def _admit(
        self,
        rtype: resources.ResourceType,
        req: ParsedRequest,
        operation: str,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
        user: identity.UserInfo,
        name: str,
    ) -> dict[str, Any] | None:
        """Mutating then (after validation by the caller) validating admission; returns the mutated object."""
        if not self._admissible(rtype):
            return obj
        configs = self.store.list(("admissionregistration.k8s.io", "mutatingwebhookconfigurations"))[0]
        if not configs:
            return obj
        ns = self._namespace_obj(req.namespace) if rtype.namespaced else None
        attrs = self._admission_attrs(rtype, req, operation, obj, old, user, name)
        result = await admission.mutate(configs, attrs, ns)
        req.warnings.extend(result.warnings)
        if not result.allowed:
            raise _admission_error(result)
        if result.object is not None and req.subresource == "scale" and obj is not None:  # a mutated Scale
            folded = copy.deepcopy(obj)
            folded.setdefault("spec", {})["replicas"] = (result.object.get("spec") or {}).get("replicas", 0)
            return folded
        return result.object if result.object is not None else obj

    async def _validate_admission(
        self,
        rtype: resources.ResourceType,
        req: ParsedRequest,
        operation: str,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
        user: identity.UserInfo,
        name: str,
    ) -> None:
        if not self._admissible(rtype):
            return
        configs = self.store.list(("admissionregistration.k8s.io", "validatingwebhookconfigurations"))[0]
        if not configs:
            return
        ns = self._namespace_obj(req.namespace) if rtype.namespaced else None
        attrs = self._admission_attrs(rtype, req, operation, obj, old, user, name)
        result = await admission.validate(configs, attrs, ns)
        req.warnings.extend(result.warnings)
        if not result.allowed:
            raise _admission_error(result)

    async def _create(
        self,
        rtype: resources.ResourceType,
        req: ParsedRequest,
        user: identity.UserInfo,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        obj = body if body is not None else self._body_object(rtype, req)
        self._check_identity(rtype, obj, req)
        namespace = req.namespace if rtype.namespaced else ""
        self._require_namespace(rtype, namespace)
        self._strict_fields(rtype, req, obj)
        self._prepare_new(rtype, obj, namespace)
        name = obj["metadata"]["name"]
        if self.store.get(self._gr(rtype), namespace, name) is not None:
            raise errors.already_exists(rtype.plural, rtype.group, name)
        mutated = await self._admit(rtype, req, "CREATE", obj, None, user, name)
        obj = mutated if mutated is not None else obj
        self._validate(rtype, obj, None)
        await self._validate_admission(rtype, req, "CREATE", obj, None, user, name)
        if req.dry_run:
            return obj
        stored = self.store.create(self._gr(rtype), namespace, name, obj)
        self._after_write(rtype, None, stored)
        return self._as_version(rtype, stored)

    async def _update(
        self, rtype: resources.ResourceType, req: ParsedRequest, user: identity.UserInfo
    ) -> tuple[dict[str, Any], bool]:
        namespace = req.namespace if rtype.namespaced else ""
        current = self.store.get(self._gr(rtype), namespace, req.name)
        content_type = req.header("Content-Type").split(";")[0].strip()
        if current is None:
            if req.verb == "patch" and content_type == patching.APPLY:
                data = _decode(req.body, content_type)
                if not isinstance(data, dict):
                    raise errors.bad_request("the body of the request must be an object")
                data.setdefault("metadata", {})["name"] = req.name
                return await self._create(rtype, req, user, data), True
            raise errors.not_found(rtype.plural, rtype.group, req.name)
        old = self._as_version(rtype, current)

        # What the client sends, in terms of the whole object (or the Scale for /scale).
        base: dict[str, Any] = self._scale(rtype, old) if req.subresource == "scale" else old
        if req.verb == "update":
            new = self._body_object(rtype, req)
            self._check_identity(rtype, new, req)
            body_name = new.get("metadata", {}).get("name")
            if body_name and body_name != req.name:
                raise errors.bad_request(
                    f"the name of the object ({body_name}) does not match the name on the URL ({req.name})"
                )
            rv = new.get("metadata", {}).get("resourceVersion")
        else:
            patch = _decode(req.body, content_type)
            if content_type == patching.MERGE:
                new = patching.merge_patch(base, patch)
            elif content_type == patching.JSON:
                new = patching.json_patch(base, patch)
            elif content_type == patching.STRATEGIC:
                if not rtype.builtin:
                    raise errors.unsupported_media_type(content_type)
                new = patching.strategic_merge_patch(base, patch)
            elif content_type == patching.APPLY:
                if not isinstance(patch, dict):
                    raise errors.bad_request("the body of the request must be an object")
                apply_patch = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
                new = (
                    patching.strategic_merge_patch(base, apply_patch)
                    if rtype.builtin
                    else patching.merge_patch(base, apply_patch)
                )
            else:
                raise errors.unsupported_media_type(content_type)
            if not isinstance(new, dict):
                raise errors.bad_request("the patch must result in an object")
            rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
            if content_type == patching.JSON:
                rv = new.get("metadata", {}).get("resourceVersion")
                if rv == old["metadata"].get("resourceVersion"):
                    rv = None
        if rv and rv != old["metadata"].get("resourceVersion"):
            raise errors.conflict(rtype.plural, rtype.group, req.name)
        self._strict_fields(rtype, req, new)

        # Fold the subresource back into the object.
        if req.subresource == "scale":
            replicas = (new.get("spec") or {}).get("replicas", 0)  # a Scale omits a count of zero
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["replicas"] = replicas
        elif req.subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif req.subresource == "ephemeralcontainers":  # kubectl debug: only the Pod's debug containers change
            debug = (new.get("spec") or {}).get("ephemeralContainers")
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["ephemeralContainers"] = debug
        elif rtype.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)

        # Immutable and server-owned metadata.
        new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
        meta = new.setdefault("metadata", {})
        old_meta = old["metadata"]
        for key in (
            "uid",
            "creationTimestamp",
            "name",
            "namespace",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        meta["generation"] = old_meta.get("generation", 1)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise errors.invalid(
                    rtype.kind,
                    rtype.group,
                    req.name,
                    [
                        {
                            "reason": "FieldValueForbidden",
                            "message": "Forbidden: no new finalizers can be added if the object is being "
                            "deleted",
                            "field": "metadata.finalizers",
                        }
                    ],
                )
        self._default(rtype, new)
        mutated = await self._admit(rtype, req, "UPDATE", new, old, user, req.name)
        new = mutated if mutated is not None else new
        if _spec_part(new, rtype) != _spec_part(old, rtype):
            meta = new["metadata"]
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        self._validate(rtype, new, old)
        await self._validate_admission(rtype, req, "UPDATE", new, old, user, req.name)
        if req.dry_run:
            return new, False
        if new == old:
            return old, False  # a no-op write keeps the resourceVersion and emits no event, as in Kubernetes
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            stored = self.store.delete(self._gr(rtype), namespace, req.name, final=new)
            self._after_delete(rtype, stored)
            return self._as_version(rtype, stored), False
        stored = self.store.update(self._gr(rtype), namespace, req.name, new)
        self._after_write(rtype, old, stored, status_only=req.subresource == "status")
        result = self._as_version(rtype, stored)
        if req.subresource == "scale":
            return self._scale(rtype, result), False
        return result, False

    async def _delete(
        self, rtype: resources.ResourceType, req: ParsedRequest, user: identity.UserInfo, name: str
    ) -> dict[str, Any]:
        namespace = req.namespace if rtype.namespaced else ""
        current = self.store.get(self._gr(rtype), namespace, name)
        if current is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        old = self._as_version(rtype, current)
        options = _decode(req.body, "application/json") if req.body else None
        preconditions = (options or {}).get("preconditions") or {} if isinstance(options, dict) else {}
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != old["metadata"].get(
            "resourceVersion"
        ):
            raise errors.conflict(rtype.plural, rtype.group, name)
        if preconditions.get("uid") and preconditions["uid"] != old["metadata"].get("uid"):
            raise errors.conflict(rtype.plural, rtype.group, name)
        dry_run = req.dry_run or (isinstance(options, dict) and "All" in (options.get("dryRun") or []))
        if self._admissible(rtype):
            await self._validate_admission(rtype, req, "DELETE", None, old, user, name)
        if dry_run:
            return old
        if old["metadata"].get("finalizers"):
            if old["metadata"].get("deletionTimestamp"):
                return old
            marked = copy.deepcopy(old)
            marked["metadata"]["deletionTimestamp"] = now_timestamp()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            stored = self.store.update(self._gr(rtype), namespace, name, marked)
            return self._as_version(rtype, stored)
        stored = self.store.delete(self._gr(rtype), namespace, name)
        self._after_delete(rtype, stored)
        return self._as_version(rtype, stored)

    async def _delete_collection(
        self, rtype: resources.ResourceType, req: ParsedRequest, user: identity.UserInfo
    ) -> aiohttp.web.Response:
        predicate = self._predicate(req)
        items, _ = self.store.list(
            self._gr(rtype), req.namespace if rtype.namespaced and req.namespace else None
        )
        deleted = []
        for obj in items:
            if predicate(obj):
                sub = dataclasses.replace(req, namespace=obj["metadata"].get("namespace", ""), body=b"")
                deleted.append(await self._delete(rtype, sub, user, obj["metadata"]["name"]))
        return _json_response(
            {
                "kind": rtype.list_kind,
                "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": deleted,
            }
        )

    def _after_write(
        self,
        rtype: resources.ResourceType,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        *,
        status_only: bool = False,
    ) -> None:
        if rtype.group == "rbac.authorization.k8s.io":
            self._rbac_cache = None
        if rtype.plural == "customresourcedefinitions" and rtype.group == "apiextensions.k8s.io":
            self.registry.add_crd(new)
            if old is None:
                self._mark_crd_established(new)
        if rtype.group == "apps" and rtype.plural in WORKLOAD_RESOURCES and not status_only:
            # No running loop (seeding before serving): nothing to schedule.
            with contextlib.suppress(RuntimeError):
                self.workloads.observe(rtype.plural, old, new)

    def _mark_crd_established(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        names = crd.get("spec", {}).get("names", {})
        now = now_timestamp()
        crd = copy.deepcopy(crd)
        crd["status"] = {
            "acceptedNames": names,
            "storedVersions": [
                v["name"] for v in crd.get("spec", {}).get("versions", []) if v.get("storage")
            ],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": now,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": now,
                },
            ],
        }
        self.store.update(("apiextensions.k8s.io", "customresourcedefinitions"), "", name, crd)

    def _after_delete(self, rtype: resources.ResourceType, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata", {})
        if rtype.group == "rbac.authorization.k8s.io":
            self._rbac_cache = None
        if rtype.plural == "customresourcedefinitions" and rtype.group == "apiextensions.k8s.io":
            spec = obj.get("spec", {})
            self.registry.remove_crd(meta.get("name", ""))
            gr = (spec.get("group", ""), spec.get("names", {}).get("plural", ""))
            for item in self.store.list(gr)[0]:
                self.store.delete(gr, item["metadata"].get("namespace", ""), item["metadata"]["name"])
        if rtype.group == "" and rtype.plural == "namespaces":
            self._purge_namespace(meta.get("name", ""))
        if rtype.group == "apps" and rtype.plural in WORKLOAD_RESOURCES and self._workloads is not None:
            self._workloads.forget(rtype.plural, meta.get("namespace", ""), meta.get("name", ""))

    def _purge_namespace(self, namespace: str) -> None:
        seen: set[store.GroupResource] = set()
        for rtype in self.registry:
            gr = self._gr(rtype)
            if not rtype.namespaced or gr in seen:
                continue
            seen.add(gr)
            for item in self.store.list(gr, namespace)[0]:
                stored = self.store.delete(gr, namespace, item["metadata"]["name"])
                self._after_delete(rtype, stored)

    async def _write_workload_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        """The workload controller's status writes: a status update with a new resourceVersion and event."""
        gr = ("apps", plural)
        current = self.store.get(gr, namespace, name)
        if current is None:
            return
        if current.get("status") == status:
            return
        current["status"] = status
        self.store.update(gr, namespace, name, current)

    def _scale(self, rtype: resources.ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata", {})
        selector = (obj.get("spec") or {}).get("selector") or {}
        if rtype.kind != "ReplicationController":  # whose selector is the labels themselves
            selector = selector.get("matchLabels") or {}
        replicas = (obj.get("spec") or {}).get("replicas", 0)
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: meta[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if key in meta
            },
            "spec": {"replicas": replicas} if replicas else {},  # omitted when zero, as the API server does
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            },
        }

    def _review(
        self, rtype: resources.ResourceType, req: ParsedRequest, user: identity.UserInfo
    ) -> dict[str, Any]:
        body = self._body_object(rtype, req)
        body.setdefault("apiVersion", rtype.api_version)
        body.setdefault("kind", rtype.kind)
        if rtype.plural == "localsubjectaccessreviews":
            attrs = body.setdefault("spec", {}).setdefault("resourceAttributes", {})
            if attrs.get("namespace") and attrs["namespace"] != req.namespace:
                raise errors.bad_request("spec.resourceAttributes.namespace must match namespace")
            attrs["namespace"] = req.namespace
        try:
            if rtype.plural == "selfsubjectrulesreviews":
                return rbac.rules_review(body, user, self._rbac_objects())
            return rbac.review(body, user, self._rbac_objects())
        except rbac.ReviewInvalid as exc:
            if exc.code == 422:
                raise errors.ApiError(
                    422,
                    "Invalid",
                    f'{rtype.kind}.{rtype.group} "" is invalid: {exc.message}',
                    {"group": rtype.group, "kind": rtype.kind},
                ) from exc
            raise errors.bad_request(exc.message) from exc


def _admission_error(result: admission.AdmissionResult) -> errors.ApiError:
    # As kube-apiserver's ToStatusErr: the webhook's own code (at least 400) and reason, none invented.
    code = result.code if result.code and result.code >= 400 else 400
    return errors.ApiError(code, result.reason, result.message, {})


def _unknown_fields(original: Any, pruned: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(original, dict) and isinstance(pruned, dict):
        for key, value in original.items():
            sub = f"{path}.{key}" if path else key
            if key not in pruned:
                found.append(sub)
            else:
                found += _unknown_fields(value, pruned[key], sub)
    elif isinstance(original, list) and isinstance(pruned, list):
        for index, (a, b) in enumerate(zip(original, pruned, strict=False)):
            found += _unknown_fields(a, b, f"{path}[{index}]")
    return found
