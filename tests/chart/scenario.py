"""The lifecycle scenario the chart's permissions are judged by (issue 4's acceptance, condensed).

Every wait also fails at once when the API has refused the operator anything: a refused call is a
broken lifecycle even where the operator carries on (events are best-effort, leadership retries).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from lockgate.handlers import testing
from tests import healthendpoint
from tests.chart import rendering
from tests.lifecycle import manifests

WEB_2 = f"registry.example/web:2.0@{manifests.DIGEST}"


class OperatorRefused(RuntimeError):
    """The API answered one of the operator's requests with 403."""


def refused(s: testing.Stack) -> list[str]:
    """The operator's requests the API refused (403), as ``verb group/resource[/sub] namespace``."""
    return sorted(
        {
            f"{r.verb} {r.api_group or 'core'}/{r.resource}{'/' + r.subresource if r.subresource else ''}"
            f" {r.namespace}".rstrip()
            for r in list(s.cluster.cluster.requests)
            if r.user == rendering.IDENTITY and r.code == 403
        }
    )


def _wait(s: testing.Stack, check: Callable[[], Any], timeout: float, message: str) -> Any:
    def guarded() -> Any:
        denied = refused(s)
        if denied:
            raise OperatorRefused(f"the API refused the operator: {denied}")
        return check()

    return s.wait_for(guarded, timeout=timeout, message=message)


def _phase(s: testing.Stack, name: str, phases: tuple[str, ...], timeout: float) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        promo = s.get("promo", name)
        return promo if promo.get("status", {}).get("phase") in phases else None

    result: dict[str, Any] = _wait(s, check, timeout, f"{name} in {phases}")
    return result


@contextlib.contextmanager
def web_service(s: testing.Stack) -> Iterator[tuple[str, list[str]]]:
    """``web``'s Service in production with a health endpoint behind its cluster IP (here 127.0.0.1): the
    URL of an HTTP check the operator resolves through the Service, and the Host header of each probe."""
    with healthendpoint.serving() as health:
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "production"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "127.0.0.1", "ports": [{"port": health.port}]},
        }
        s.kubectl("apply", "-f", "-", input=json.dumps(service))
        yield f"http://web.production.svc:{health.port}/healthz", health.hosts


def lifecycle(s: testing.Stack, timeout: float = 20.0, *, lease: str | None = "lockgate-leader") -> None:
    """Leadership, policy, request, two approvals, deploy, verify (an HTTP check through a Service),
    events, a CronJob run by hand: every call the operator makes."""
    if lease:

        def held() -> bool:
            got = s.kubectl("get", "lease", lease, "-n", rendering.NAMESPACE, "-o", "json", check=False)
            return got.returncode == 0 and bool(json.loads(got.stdout)["spec"].get("holderIdentity"))

        _wait(s, held, timeout, "the operator to hold the leader Lease")
    s.kubectl("create", "-n", "production", "-f", "-", input=json.dumps(NIGHTLY))  # before production is gated
    s.kubectl("apply", "-f", str(rendering.REPO / "examples" / "gatepolicy-production.yaml"))
    with web_service(s) as (url, hosts):
        _lifecycle(s, timeout, url, hosts)
    _cronjob_run(s)


NIGHTLY = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "nightly"},
    "spec": {
        "schedule": "@daily",
        "jobTemplate": {
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "report", "image": "registry.example/report:1"}],
                    }
                }
            }
        },
    },
}


def _cronjob_run(s: testing.Stack) -> None:
    """``kubectl create job --from=cronjob/nightly`` in gated production: the guard reads the CronJob to see that
    the Job runs its template as it is (sent as JSON: the embedded API does not decode kubectl's protobuf)."""
    run = ["create", "job", "nightly-now", "--from=cronjob/nightly", "-n", "production", "--dry-run=client", "-o=json"]
    made = s.kubectl("create", "-n", "production", "-f", "-", input=s.kubectl(*run).stdout, check=False)
    assert made.returncode == 0, f"the CronJob's manual run was refused: {made.stderr}"


def _lifecycle(s: testing.Stack, timeout: float, url: str, hosts: list[str]) -> None:
    check = f"    http: [{{url: '{url}', expectStatus: 200, successes: 1, interval: 1s}}]"
    spec = manifests.promotion().replace(
        "  verification: {timeout: 20s, rollbackOnFailure: true}",
        f"  verification:\n    timeout: 20s\n    rollbackOnFailure: true\n{check}",
    )
    s.apply(spec, context="alice")
    promo = _phase(s, "web-2", ("AwaitingApproval",), timeout)
    assert promo["status"]["requestedBy"]["username"] == "alice"
    s.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    s.apply(manifests.approval("web-2-carol", "web-2"), context="carol")
    promo = _phase(s, "web-2", ("Succeeded", "Failed", "RolledBack"), timeout)
    assert promo["status"]["phase"] == "Succeeded", promo["status"]
    assert "HTTP checks passed" in json.dumps(promo["status"])
    assert hosts and set(hosts) == {url.split("/")[2]}  # at the Service's cluster IP, by the Service's name
    assert s.image() == WEB_2
    assert sorted(a["approver"] for a in promo["status"]["approvals"] if a["counted"]) == ["bob", "carol"]
    approval = _wait(
        s,
        lambda: (a := s.get("appr", "web-2-carol")).get("status", {}).get("counted") and a,
        timeout,
        "the Approval's status to say it counted",
    )
    assert approval["spec"]["approver"] == "carol"
    _wait(
        s,
        lambda: s.get("gatepolicy", "production", namespace="").get("status"),
        timeout,
        "the GatePolicy's status",
    )

    def deploying_event() -> bool:
        events = json.loads(s.kubectl("get", "events", "-n", "production", "-o", "json").stdout)["items"]
        return any(e["involvedObject"]["name"] == "web-2" and e["reason"] == "Deploying" for e in events)

    _wait(s, deploying_event, timeout, "the Deploying event on web-2")
    assert refused(s) == []
