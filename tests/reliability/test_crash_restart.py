"""Crash and restart: the operator dies at random points of the lifecycle, a new one takes over.

Each trial requests a change (a quarter of the images fail their rollout), then in random order
approves, rejects, changes the spec or waits, while the operator is killed either after a random
delay or exactly while one of its own API requests is in flight (held by the API, then served or
lost with the dead client). A fresh operator starts; the trial approves the final spec if nobody
decided it, waits for the cycle to end, and checks the invariants over everything so far.
30 trials in CI, 200 with ``--long``; replay with ``LOCKGATE_RELIABILITY_SEED``.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator

import pytest

from lockgate.devcluster import server, world
from lockgate.lifecycle import statuses
from tests.reliability import conftest, diagnostics, harness

CI_TRIALS, LONG_TRIALS = 30, int(os.environ.get("LOCKGATE_RELIABILITY_TRIALS") or 200)

# A killed loop can leave a coroutine of Kopf's that was created but never started; collecting it
# warns. That is the simulated crash itself (a real one leaves nothing to collect), not a defect.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <coroutine object worker:pytest.PytestUnraisableExceptionWarning"
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "trial" in metafunc.fixturenames:
        count = LONG_TRIALS if metafunc.config.getoption("--long") else CI_TRIALS
        metafunc.parametrize("trial", range(count))


@pytest.fixture(scope="module")
def log_tail() -> Iterator[diagnostics.LogTail]:
    tail = diagnostics.LogTail().install()
    try:
        with diagnostics.tracing_the_view():
            yield tail
    finally:
        tail.remove()


@pytest.fixture(scope="module")
def gate(log_tail: diagnostics.LogTail) -> Iterator[harness.Lockgate]:
    with harness.lockgate(workload_delay=0.1) as running:
        yield running


class Killer:
    """Kills the operator once — after a delay, or while its ``k``-th API request is held — and restarts it."""

    def __init__(self, gate: harness.Lockgate, rng: random.Random) -> None:
        self.gate = gate
        self.mode = rng.choice(["delay", "request"])
        self.delay = rng.uniform(0.0, 1.2)
        self.k = rng.randint(1, 16)
        self.hold = rng.uniform(0.05, 0.3)
        self.down_for = rng.uniform(0.0, 0.3)
        self.seen = 0
        self.hit = threading.Event()
        self.done = threading.Event()
        self.where = ""
        self.t0 = time.time()
        self.killed_at = self.restarted_at = 0.0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="crash-killer", daemon=True)

    def describe(self) -> str:
        when = f"{self.delay:.2f}s in" if self.mode == "delay" else f"request #{self.k} held {self.hold:.2f}s"
        times = f"killed at +{self.killed_at - self.t0:.3f}s, restarted at +{self.restarted_at - self.t0:.3f}s"
        return f"kill at {when} ({self.where or 'not reached'}; {times})"

    def hook(self, record: server.RequestRecord) -> server.Fault | None:
        if record.user != world.OPERATOR_USERNAME or record.verb == "watch" or self.hit.is_set():
            return None
        self.seen += 1
        if self.seen < self.k:
            return None
        self.where = f"{record.method} {record.resource}/{record.subresource or ''}{record.name}"
        self.hit.set()
        return server.Fault(delay=self.hold)

    def arm(self) -> None:
        if self.mode == "request":
            self.gate.cluster.fault_hook = self.hook
        self._thread.start()

    def _run(self) -> None:
        try:
            if self.mode == "delay":
                time.sleep(self.delay)
                self.where = "timer"
            elif not self.hit.wait(3.0):
                self.where = "fallback timer (the request count was not reached)"
            self.gate.cluster.fault_hook = None
            self.gate.kill_operator()
            self.killed_at = time.time()
            time.sleep(self.down_for)
            self.gate.start_operator()
            self.restarted_at = time.time()
        except BaseException as exc:  # reported to the trial
            self.error = exc
        finally:
            self.done.set()

    def finish(self) -> None:
        assert self.done.wait(15), "the operator was not restarted within 15s"
        if self.error is not None:
            raise AssertionError("restarting the operator failed") from self.error


def test_crash_and_restart_keep_the_invariants(
    gate: harness.Lockgate, log_tail: diagnostics.LogTail, trial: int
) -> None:
    t0 = time.time()
    seed = conftest.BASE_SEED + trial
    rng = random.Random(seed)
    name = f"crash-{seed}"
    images = [f"registry.example/web:{seed}.{i}{'-broken' if rng.random() < 0.25 else ''}" for i in range(3)]
    story: list[str] = [f"create {images[0]}"]
    gate.create_promotion(name, images[0])
    killer = Killer(gate, rng)
    killer.t0 = t0
    killer.arm()
    for index in range(rng.randint(1, 4)):
        action = rng.choice(["approve", "approve", "reject", "change", "wait"])
        story.append(action)
        started = time.time() - t0
        if action == "wait":
            time.sleep(rng.uniform(0.0, 0.4))
        elif action == "change":
            story[-1] = f"change to {images[1 + index % 2]}"
            gate.change_image(name, images[1 + index % 2])  # as admin, as a GitOps tool would
        else:
            user = rng.choice(["bob", "carol"])
            story[-1] = f"{action} by {user}"
            code, body = gate.decide(name, user, "Approve" if action == "approve" else "Reject")
            assert code < 400, f"seed {seed}: {story[-1]} was refused: {code} {body}"
        story[-1] += f" @+{started:.3f}s..+{time.time() - t0:.3f}s"
    killer.finish()
    context = (
        f"seed {seed} (LOCKGATE_RELIABILITY_SEED={conftest.BASE_SEED}, trial {trial}): {story}, {killer.describe()}"
    )

    try:
        promo = gate.wait_current_cycle(name)
    except AssertionError as exc:
        raise AssertionError(f"{context}: {exc}\n{diagnostics.explain(gate, name, t0, log_tail)}") from None
    if promo["status"]["phase"] not in harness.TERMINAL:
        story.append("approve the final spec by bob")
        code, body = gate.decide(name, "bob", spec_hash=statuses.spec_hash(promo))
        assert code < 400, f"{context}: the final approval was refused: {code} {body}"
    try:
        promo = gate.wait_terminal(name, timeout=20)
    except AssertionError as exc:
        raise AssertionError(f"{context}: {exc}\n{diagnostics.explain(gate, name, t0, log_tail)}") from None
    status = promo["status"]
    phase, image = status["phase"], promo["spec"]["image"]
    running = gate.image()
    if phase == "Succeeded":
        assert running == image, f"{context}: Succeeded but the workload runs {running}"
    elif phase == "RolledBack":
        assert "broken" in image, f"{context}: a healthy image was rolled back: {status}"
        assert running == status["previousImage"], f"{context}: rolled back but the workload runs {running}"
    elif phase == "Rejected":
        rejections = [
            a
            for a in gate.approvals()
            if a["spec"]["promotion"] == name
            and a["spec"]["decision"] == "Reject"
            and a["spec"].get("specHash") == status["specHash"]
        ]
        assert rejections, f"{context}: Rejected without a rejection of this spec"
    else:
        raise AssertionError(f"{context}: ended {phase}: {status.get('message')}")
    problems = harness.violations(gate)
    assert not problems, f"{context}: invariants violated:\n" + "\n".join(problems)


def test_a_stopped_operator_leaves_the_gate_closed(gate: harness.Lockgate) -> None:
    """A graceful stop (an upgrade, a drained node) must not take the admission guard down with it."""
    before = gate.image()
    gate.stop_operator()
    try:
        code, body = gate.api(
            "PATCH",
            f"{harness.DEPLOYMENTS}/web",
            {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "registry.example/evil:1"}]}}}},
            content_type="application/strategic-merge-patch+json",
        )
        assert code >= 400, f"a direct image change was admitted while the operator was stopped: {code}"
        assert gate.image() == before
        code, body = gate.api("POST", harness.PROMOTIONS, harness.promotion_body("unstamped", "registry.example/web:9"))
        assert code >= 400, f"a Promotion was admitted unstamped while the operator was stopped: {code} {body}"
    finally:
        gate.start_operator()
    name = gate.unique("after-stop")
    gate.create_promotion(name, "registry.example/web:after-stop")
    assert gate.wait_current_cycle(name)["status"]["phase"] == "AwaitingApproval"
