"""Who is asking: bearer-token authentication and impersonation headers, as the Kubernetes API server does.

``Authenticator`` maps static bearer tokens to users (like kube-apiserver's ``--token-auth-file``).
``impersonate`` applies ``Impersonate-*`` headers after checking the ``impersonate`` verb through an
authorizer callback, following ``k8s.io/apiserver/pkg/endpoints/filters/impersonation.go``.
"""

from __future__ import annotations

import dataclasses
import hmac
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lockgate.devcluster import rbac

ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"

IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"
IMPERSONATE_UID = "Impersonate-Uid"
IMPERSONATE_EXTRA_PREFIX = "Impersonate-Extra-"


@dataclasses.dataclass(frozen=True)
class UserInfo:
    """An authenticated identity, the shape of Kubernetes' ``user.Info``."""

    username: str
    groups: tuple[str, ...]
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def as_user_info(self) -> dict[str, Any]:
        """The ``userInfo`` JSON shape used by AdmissionReview and access reviews."""
        info: dict[str, Any] = {"username": self.username, "groups": list(self.groups)}
        if self.uid:
            info["uid"] = self.uid
        if self.extra:
            info["extra"] = {key: list(values) for key, values in self.extra.items()}
        return info


class ImpersonationForbidden(Exception):
    """The requester may not impersonate what the headers ask for.

    ``code`` is 403 for an authorization refusal, 400 for a malformed request (as Kubernetes answers).
    ``reason`` is the Kubernetes status reason (``Forbidden`` or ``BadRequest``).
    """

    def __init__(self, message: str, *, code: int = 403, reason: str = "Forbidden") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason


def service_account_username(namespace: str, name: str) -> str:
    """``system:serviceaccount:<namespace>:<name>``."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def service_account_groups(namespace: str) -> tuple[str, ...]:
    """The groups Kubernetes gives every service account of a namespace."""
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")


def _with_authenticated(groups: Sequence[str]) -> tuple[str, ...]:
    result = tuple(dict.fromkeys(groups))
    if ALL_AUTHENTICATED not in result:
        result += (ALL_AUTHENTICATED,)
    return result


class Authenticator:
    """Static bearer tokens mapped to users and groups."""

    def __init__(self, *, allow_anonymous: bool = False) -> None:
        self._tokens: dict[str, UserInfo] = {}
        self.allow_anonymous = allow_anonymous

    def add_token(self, token: str, username: str, groups: Sequence[str], uid: str = "") -> None:
        if not token:
            raise ValueError("a bearer token must not be empty")
        self._tokens[token] = UserInfo(username=username, groups=tuple(groups), uid=uid)

    def authenticate(self, headers: Mapping[str, str]) -> UserInfo | None:
        """The user of a request's ``Authorization: Bearer <token>``; ``None`` means 401 Unauthorized.

        Without any Authorization header the request is anonymous when ``allow_anonymous`` is set.
        """
        header = _get_header(headers, "Authorization")
        if header is None:
            if self.allow_anonymous:
                return UserInfo(username=ANONYMOUS, groups=(ALL_UNAUTHENTICATED,))
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        for known, user in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return dataclasses.replace(user, groups=_with_authenticated(user.groups))
        return None


def _get_header(headers: Mapping[str, str], name: str) -> str | None:
    """One header, case-insensitively (aiohttp's CIMultiDict is already case-insensitive)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def _get_all(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of a (possibly repeated) header; accepts plain mappings and multidicts with ``getall``."""
    getall = getattr(headers, "getall", None)
    if callable(getall):
        values: list[str] = list(getall(name, []))
        return values
    lowered = name.lower()
    return [val for key, val in headers.items() if key.lower() == lowered]


def _extra_headers(headers: Mapping[str, str]) -> dict[str, list[str]]:
    extra: dict[str, list[str]] = {}
    prefix = IMPERSONATE_EXTRA_PREFIX.lower()
    seen: set[str] = set()
    for key in headers:
        if key.lower().startswith(prefix) and key.lower() not in seen:
            seen.add(key.lower())
            extra_key = urllib.parse.unquote(key[len(prefix) :]).lower()
            extra.setdefault(extra_key, []).extend(_get_all(headers, key))
    return extra


def impersonate(
    user: UserInfo,
    headers: Mapping[str, str],
    authorize: Callable[[rbac.Attributes], rbac.Verdict],
) -> UserInfo:
    """The identity a request acts as after its ``Impersonate-*`` headers (``user`` itself when none).

    Every impersonated part is authorized as the verb ``impersonate`` for ``user``: ``users`` (or
    ``serviceaccounts`` in their namespace), ``groups``, ``uids`` and ``userextras/<key>``.
    Raises ``ImpersonationForbidden`` with the Kubernetes message when any check fails.
    """
    username = _get_header(headers, IMPERSONATE_USER)
    groups_requested = [group for group in _get_all(headers, IMPERSONATE_GROUP)]
    uid_requested = _get_header(headers, IMPERSONATE_UID)
    extra_requested = _extra_headers(headers)

    if not username and not groups_requested and uid_requested is None and not extra_requested:
        return user
    if not username:
        parts = []
        if groups_requested:
            parts.append(IMPERSONATE_GROUP)
        if extra_requested:
            parts.append(IMPERSONATE_EXTRA_PREFIX + "*")
        if uid_requested is not None:
            parts.append(IMPERSONATE_UID)
        raise ImpersonationForbidden(
            f"requested [{' '.join(parts)}] without impersonating a user", code=400, reason="BadRequest"
        )

    checks: list[rbac.Attributes] = []
    groups: list[str] = []
    extra: dict[str, tuple[str, ...]] = {}
    uid = ""
    if username.startswith(SERVICE_ACCOUNT_PREFIX):
        sa_namespace, _, sa_name = username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
        if not sa_namespace or not sa_name:
            raise ImpersonationForbidden(
                f"invalid service account username {username!r}", code=400, reason="BadRequest"
            )
        checks.append(
            rbac.Attributes(
                user=user,
                verb="impersonate",
                resource="serviceaccounts",
                namespace=sa_namespace,
                name=sa_name,
            )
        )
        if not groups_requested:
            groups.extend(service_account_groups(sa_namespace))
    else:
        checks.append(rbac.Attributes(user=user, verb="impersonate", resource="users", name=username))
    for group in groups_requested:
        checks.append(rbac.Attributes(user=user, verb="impersonate", resource="groups", name=group))
        groups.append(group)
    for key, values in extra_requested.items():
        for value in values:
            checks.append(
                rbac.Attributes(
                    user=user,
                    verb="impersonate",
                    api_group="authentication.k8s.io",
                    resource="userextras",
                    subresource=key,
                    name=value,
                )
            )
        extra[key] = tuple(values)
    if uid_requested is not None:
        checks.append(
            rbac.Attributes(
                user=user,
                verb="impersonate",
                api_group="authentication.k8s.io",
                resource="uids",
                name=uid_requested,
            )
        )
        uid = uid_requested

    for attrs in checks:
        verdict = authorize(attrs)
        if not verdict.allowed:
            message = rbac.forbidden_message(attrs)
            if verdict.reason:
                message = f"{message}: {verdict.reason}"
            raise ImpersonationForbidden(message)

    if username != ANONYMOUS:
        if not any(group in (ALL_AUTHENTICATED, ALL_UNAUTHENTICATED) for group in groups):
            groups.append(ALL_AUTHENTICATED)
    elif ALL_UNAUTHENTICATED not in groups:
        groups.append(ALL_UNAUTHENTICATED)
    return UserInfo(username=username, groups=tuple(dict.fromkeys(groups)), uid=uid, extra=extra)
