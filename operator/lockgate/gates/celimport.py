"""Import the CEL binding without its command-line tool (import ``cel`` from here, not directly).

The ``common-expression-language`` package's ``cel/__init__.py`` imports its interactive CLI
(``cel.cli``: typer, rich, prompt_toolkit, pygments) before the Rust extension: about 12 MB of the
operator's memory for a REPL it never runs. When the CLI is not loaded yet, this module puts an empty
placeholder under ``cel.cli`` for the duration of the import, so the package's ``from . import cli``
finds it, then removes the placeholder: a later ``import cel.cli`` loads the real CLI as usual.
"""

from __future__ import annotations

import sys
import types

if "cel" in sys.modules:
    import cel
else:
    _placeholder = types.ModuleType("cel.cli", "placeholder: Lockgate does not load CEL's CLI")
    sys.modules["cel.cli"] = _placeholder
    try:
        import cel
    finally:
        del sys.modules["cel.cli"]
    if getattr(cel, "cli", None) is _placeholder:
        del cel.cli

__all__ = ["cel"]
