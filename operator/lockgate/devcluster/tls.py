"""A throwaway self-signed TLS certificate for 127.0.0.1: kubectl sends bearer tokens only over HTTPS."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import tempfile
from pathlib import Path
from typing import Any

import aiohttp.test_utils

from lockgate import webhookcert


@dataclasses.dataclass(frozen=True)
class Certificate:
    cert_pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context


def make_certificate(hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Certificate:
    """A self-signed certificate that is its own CA, valid for ``hosts`` for one year."""
    cert_pem, key_pem = webhookcert.self_signed(hosts, common_name="lockgate-dev", days=365)
    return Certificate(cert_pem=cert_pem, key_pem=key_pem)


def server_class(context: ssl.SSLContext) -> type[aiohttp.test_utils.RawTestServer]:
    """A kmock-compatible aiohttp test server class that serves HTTPS with ``context``."""

    class TLSServer(aiohttp.test_utils.RawTestServer):
        async def start_server(self, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> None:
            kwargs["ssl"] = context
            await super().start_server(loop=loop, **kwargs)

    return TLSServer
