"""The operator process loads neither CEL's interactive CLI nor the official Kubernetes client.

Both are import-time side effects of libraries (``cel``'s package imports its REPL; Kopf imports the
client to recognise its models) that cost the operator about 24 MB and that it never uses.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_operator_runtime_loads_no_cli_of_cel_and_no_kubernetes_client() -> None:
    out = run_python(
        """
        import sys
        import lockgate.handlers.runtime
        from lockgate.gates import celrules
        unwanted = ("prompt_toolkit", "typer", "pygments", "kubernetes", "cel.cli")
        print(sorted(m for m in unwanted if m in sys.modules))
        print(celrules.compile_expression("1 + 2 == 3").program.execute())
        """
    )
    assert out.splitlines() == ["[]", "True"]


def test_the_cel_cli_still_loads_when_asked_for_after_the_operator() -> None:
    out = run_python(
        """
        from lockgate.gates.celimport import cel
        import cel.cli
        print(hasattr(cel.cli, "app"), cel.compile("'a' + 'b'").execute())
        """
    )
    assert out == "True ab"
