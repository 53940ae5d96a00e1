"""Import Kopf without the ``kubernetes`` client (import this module before ``kopf``).

Kopf accepts the official client's model objects when that client is installed, and imports it at
import time only to recognise them: with ``kubernetes_validate`` and ``jsonschema`` that is ~12 MB
of the operator's memory. The operator hands Kopf plain dicts and logs in with its own credentials
(``runtime.run_operator``'s ``on.login``), so the first import of Kopf does not see the client.
Importing ``kubernetes`` later (the CLI's kubeconfig helpers) works as usual; when it was imported
before Kopf, nothing changes.
"""

from __future__ import annotations

import sys

if "kopf" not in sys.modules and "kubernetes" not in sys.modules:
    sys.modules["kubernetes"] = None  # type: ignore[assignment]  # makes ``import kubernetes`` fail
    try:
        import kopf  # noqa: F401
    finally:
        del sys.modules["kubernetes"]
