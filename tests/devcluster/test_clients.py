"""The kubernetes Python client and a throwaway Kopf operator against the embedded API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf
import kubernetes

from lockgate.devcluster import runner, testing


def _api_client(cluster: runner.RunningCluster, context: str = "admin") -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig), context=context)


def test_kubernetes_python_client_list_create_patch(devcluster: runner.RunningCluster) -> None:
    with _api_client(devcluster) as client:
        apps = kubernetes.client.AppsV1Api(client)
        listing = apps.list_namespaced_deployment("production")
        assert [d.metadata.name for d in listing.items] == ["web"]
        assert listing.metadata.resource_version

        core = kubernetes.client.CoreV1Api(client)
        created = core.create_namespaced_config_map(
            "staging", {"metadata": {"name": "c"}, "data": {"a": "1"}}
        )
        assert created.metadata.uid
        patched = core.patch_namespaced_config_map("c", "staging", {"data": {"b": "2"}})
        assert patched.data == {"a": "1", "b": "2"}
        assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)

        custom = kubernetes.client.CustomObjectsApi(client)
        body = {
            "apiVersion": "test.lockgate.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"image": "registry.example/w:1"},
        }
        custom.create_namespaced_custom_object("test.lockgate.dev", "v1", "staging", "widgets", body)
        widgets = custom.list_namespaced_custom_object("test.lockgate.dev", "v1", "staging", "widgets")
        assert widgets["kind"] == "WidgetList" and [w["metadata"]["name"] for w in widgets["items"]] == ["w"]

        try:
            core.read_namespaced_config_map("missing", "staging")
        except kubernetes.client.ApiException as exc:
            assert exc.status == 404
        else:
            raise AssertionError("expected 404")


async def test_kopf_operator_reacts_to_a_custom_object(devcluster: runner.RunningCluster) -> None:
    registry = kopf.OperatorRegistry()
    seen: asyncio.Queue[str] = asyncio.Queue()

    @kopf.on.create("test.lockgate.dev", "v1", "widgets", registry=registry)  # type: ignore[arg-type]
    def created(name: str, patch: kopf.Patch, **_: Any) -> None:
        patch.status["phase"] = "Seen"
        seen.put_nowait(name)

    @kopf.on.login(registry=registry)  # type: ignore[arg-type]
    def login(**_: Any) -> kopf.ConnectionInfo:
        token = devcluster.users["admin"].token
        return kopf.ConnectionInfo(
            server=devcluster.url, token=token, scheme="Bearer", ca_data=devcluster.running.ca_pem
        )

    @kopf.on.startup(registry=registry)  # type: ignore[arg-type]
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.standalone = True
        settings.posting.enabled = False
        settings.watching.server_timeout = 10

    stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    logging.getLogger("kopf").setLevel(logging.WARNING)
    task = asyncio.create_task(
        kopf.operator(registry=registry, stop_flag=stop, clusterwide=True, standalone=True)
    )
    try:
        await asyncio.sleep(1.0)
        widget = {
            "apiVersion": "test.lockgate.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "kw"},
            "spec": {"image": "registry.example/w:1"},
        }
        path = "/apis/test.lockgate.dev/v1/namespaces/staging/widgets"
        await asyncio.to_thread(testing.api, devcluster, "POST", path, widget)
        assert await asyncio.wait_for(seen.get(), timeout=15) == "kw"
        for _ in range(50):
            _, body = await asyncio.to_thread(testing.api, devcluster, "GET", path + "/kw")
            if body.get("status", {}).get("phase") == "Seen":
                break
            await asyncio.sleep(0.1)
        assert body["status"]["phase"] == "Seen"
    finally:
        stop.set_result(None)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=10)
