"""The HMAC key that signs identity stamps: kept in a Secret only the operator reads; made once."""

from __future__ import annotations

import base64
import secrets

from lockgate.kube import client as kclient
from lockgate.kube import objects

KEY_FIELD = "hmac-key"


async def ensure(api: kclient.Client, namespace: str, name: str) -> bytes:
    """Read the key, creating the Secret with 32 random bytes when it does not exist yet."""
    secret = await objects.get_secret(api, namespace, name)
    if secret is None:
        fresh = base64.b64encode(secrets.token_bytes(32)).decode()
        try:
            secret = await objects.create_secret(api, namespace, name, {KEY_FIELD: fresh})
        except kclient.ApiError as exc:
            if exc.status != 409:  # another replica made it first: read theirs
                raise
            secret = await objects.get_secret(api, namespace, name)
    assert secret is not None
    data = (secret.get("data") or {}).get(KEY_FIELD)
    if not data:
        raise RuntimeError(f"Secret {namespace}/{name} has no {KEY_FIELD!r} field; delete it to regenerate")
    return base64.b64decode(data)
