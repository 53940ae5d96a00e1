"""An operator that starts on an empty audit trail while Promotions say their decisions were recorded
(the volume was not mounted, the file was deleted, the wrong table) records nothing and deploys
nothing until the trail is back: it never starts a new chain that silently lacks the old records."""

from __future__ import annotations

import pathlib
import shutil

from lockgate.handlers import testing
from tests.lifecycle import manifests


def approve(stack: testing.Stack, promotion: str) -> None:
    stack.apply(manifests.approval(f"{promotion}-bob", promotion), context="bob")
    stack.apply(manifests.approval(f"{promotion}-carol", promotion), context="carol")


def move_trail(source: pathlib.Path, target: pathlib.Path) -> None:
    """The sqlite file with its WAL and shared-memory files, as a lost or restored volume moves them."""
    for suffix in ("", "-wal", "-shm"):
        if (source.parent / (source.name + suffix)).exists():
            shutil.move(source.parent / (source.name + suffix), target.parent / (target.name + suffix))


def test_a_lost_trail_stops_every_decision_until_it_is_restored(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    approve(lockgate, "web-2")
    lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    lockgate.stop_operator()
    kept = lockgate.workdir / "kept" / "audit.sqlite3"
    kept.parent.mkdir()
    move_trail(lockgate.audit_path, kept)  # the volume is not there when the operator starts again

    lockgate.start_operator()
    lockgate.apply(manifests.promotion("web-3", f"registry.example/web:3.0@{manifests.DIGEST}"), context="alice")
    lockgate.wait_phase("web-3", "AwaitingApproval")
    approve(lockgate, "web-3")

    def audit_stopped() -> dict[str, str] | None:
        conditions = lockgate.get("promo", "web-3").get("status", {}).get("conditions") or []
        found = [c for c in conditions if c["type"] == "AuditRecorded" and c["status"] == "False"]
        return found[0] if found else None

    stopped = lockgate.wait_for(audit_stopped, message="web-3 to wait for the lost audit trail")
    assert "holds no record" in stopped["message"] and "production/web-2" in stopped["message"], stopped
    assert "LOCKGATE_AUDIT_NEW_TRAIL" in stopped["message"], stopped
    assert lockgate.image() == f"registry.example/web:2.0@{manifests.DIGEST}"
    assert not [r for r in lockgate.trail().records() if r.promotion.name == "web-3"]

    lockgate.stop_operator()
    for suffix in ("", "-wal", "-shm"):
        (lockgate.audit_path.parent / (lockgate.audit_path.name + suffix)).unlink(missing_ok=True)
    move_trail(kept, lockgate.audit_path)  # the volume is back
    lockgate.start_operator()
    lockgate.wait_phase("web-3", "Succeeded", timeout=30)
    events = [(r.promotion.name, r.event) for r in lockgate.trail().records()]
    assert events[:4] == [("web-2", e) for e in ("approved", "deploying", "deployed", "verified")]
    assert ("web-3", "deploying") in events
