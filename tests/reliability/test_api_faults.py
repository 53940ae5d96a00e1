"""API faults: the embedded API answers 10 % of the operator's requests with a fault, and nothing goes wrong.

Faults (seeded, only for the operator's identity): 500/503, 409 Conflict, 429 with Retry-After,
slow answers, and watch streams that drop mid-stream. Promotions for four workloads run at once;
each must end as its story says (deployed, rolled back, or rejected), the operator keeps running,
and the invariants hold. 2 rounds in CI, 10 with ``--long``.
"""

from __future__ import annotations

import collections
import random
import threading
from collections.abc import Iterator

import pytest

from lockgate.devcluster import server, world
from tests.reliability import conftest, harness

WORKLOADS = ("web", "svc-a", "svc-b", "svc-c")
EVERY = 10  # one request in ten: 10 %


class Faults:
    """The fault hook: every tenth operator request (watches counted apart) gets the next kind of fault.

    Kinds are those an API server really answers: 409 only to writes (Kopf treats an unexpected 4xx
    on a list as fatal and the operator exits, to be restarted by its Deployment), and not to Kopf's
    merge patch of the webhook configurations (no resourceVersion: an API server does not answer it
    with a conflict; Kopf's configuration manager would stop on one, leaving the configuration
    pointing at the previous operator's port — a path only ``lockgate dev`` and
    ``webhook.operatorManaged`` take, the chart renders the configurations).
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.kinds = ["500", "503", "409", "429", "slow"]
        self.rng.shuffle(self.kinds)
        # Which request of each ten is faulted; the operator opens only 7 watches at start, so the
        # dropped one is among those (a drop makes it open another: it is dropped again later).
        self.phase = {"request": self.rng.randrange(EVERY), "watch": self.rng.randrange(7)}
        self.injected: collections.Counter[str] = collections.Counter()
        self.seen: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, record: server.RequestRecord) -> server.Fault | None:
        if record.user != world.OPERATOR_USERNAME:
            return None
        category = "watch" if record.verb == "watch" else "request"
        with self._lock:
            self.seen[category] += 1
            if (self.seen[category] - 1) % EVERY != self.phase[category]:
                return None
            faulted = sum(self.injected.values())
            kind = "drop" if category == "watch" else self.kinds[faulted % len(self.kinds)]
            if kind == "409" and (record.verb in ("get", "list") or record.api_group == "admissionregistration.k8s.io"):
                kind = "503"  # a conflict answers conditional writes only (see above)
            self.injected[kind] += 1
            delay = self.rng.uniform(0.2, 0.8)
        if kind == "drop":
            return server.Fault(drop_watch_after=delay * 2)
        if kind == "slow":
            return server.Fault(delay=delay)
        if kind == "409":
            return server.Fault(code=409, reason="Conflict", message="injected: the object has been modified")
        if kind == "429":
            return server.Fault(
                code=429, reason="TooManyRequests", message="injected: slow down", headers={"Retry-After": "1"}
            )
        return server.Fault(code=int(kind), reason="InternalError", message="injected: server error")


@pytest.fixture(scope="module")
def gate() -> Iterator[harness.Lockgate]:
    with harness.lockgate(workload_delay=0.1) as running:
        for name in WORKLOADS[1:]:
            running.add_workload(name)
        yield running


def test_promotions_end_correctly_under_api_faults(gate: harness.Lockgate, long: bool) -> None:
    seed = conftest.BASE_SEED
    rng = random.Random(seed)
    faults = Faults(seed)
    gate.stop_operator()  # start under faults, so that its watches (few, long-lived) are faulted too
    gate.cluster.fault_hook = faults
    gate.start_operator()
    context = f"LOCKGATE_RELIABILITY_SEED={seed}"
    outcomes: dict[str, str] = {}
    try:
        for round_ in range(10 if long else 2):
            names = []
            for workload in WORKLOADS:
                name = f"faults-{seed}-{round_}-{workload}"
                broken = rng.random() < 0.25
                image = f"registry.example/{workload}:{round_}{'-broken' if broken else ''}"
                gate.create_promotion(name, image, target=workload)
                names.append(name)
                outcomes[name] = "RolledBack" if broken else "Succeeded"
            for name in names:
                promo = gate.wait_current_cycle(name)
                assert promo["status"]["phase"] == "AwaitingApproval", f"{context}: {promo['status']}"
                reject = rng.random() < 0.2
                code, body = gate.decide(name, rng.choice(["bob", "carol"]), "Reject" if reject else "Approve")
                assert code < 400, f"{context}: the decision on {name} was refused: {code} {body}"
                if reject:
                    outcomes[name] = "Rejected"
            for name in names:
                promo = gate.wait_terminal(name, timeout=60)
                status = promo["status"]
                assert status["phase"] == outcomes[name], f"{context}: {name} ended {status}"
                workload = promo["spec"]["target"]["name"]
                if status["phase"] == "Succeeded":
                    assert gate.image(workload) == promo["spec"]["image"], context
                elif status["phase"] == "RolledBack":
                    assert gate.image(workload) == status["previousImage"], context
            assert gate.operator is not None and harness.alive(gate.operator), f"{context}: the operator died"
    finally:
        gate.cluster.fault_hook = None
    kinds = {"500", "503", "409", "429", "slow", "drop"}
    assert set(faults.injected) == kinds, f"{context}: not every kind of fault was injected: {faults.injected}"
    problems = harness.violations(gate)
    assert not problems, f"{context}: invariants violated:\n" + "\n".join(problems)
