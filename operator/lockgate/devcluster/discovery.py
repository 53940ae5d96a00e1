"""API discovery documents (/api, /apis, groups, versions, /version) and the OpenAPI v3 kubectl needs."""

from __future__ import annotations

from typing import Any

from lockgate.devcluster import resources

VERSION_INFO: dict[str, str] = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-lockgate-dev",
    "gitCommit": "lockgate",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    items = [{"groupVersion": f"{name}/{version}", "version": version} for version in versions]
    return {"name": name, "versions": items, "preferredVersion": items[0]}


def api_group_list(registry: resources.Registry) -> dict[str, Any]:
    groups = [_group(name, versions) for name, versions in registry.groups().items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: resources.Registry, group: str) -> dict[str, Any] | None:
    versions = registry.groups().get(group)
    if not versions or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def api_resource_list(registry: resources.Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [rtype for rtype in registry if rtype.group == group and rtype.version == version]
    if not types:
        return None
    entries: list[dict[str, Any]] = []
    for rtype in types:
        entry: dict[str, Any] = {
            "name": rtype.plural,
            "singularName": rtype.singular,
            "namespaced": rtype.namespaced,
            "kind": rtype.kind,
            "verbs": list(rtype.verbs),
        }
        if rtype.short_names:
            entry["shortNames"] = list(rtype.short_names)
        if rtype.categories:
            entry["categories"] = list(rtype.categories)
        entries.append(entry)
        for sub in rtype.subresources:
            sub_entry: dict[str, Any] = {
                "name": f"{rtype.plural}/{sub}",
                "singularName": "",
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": ["get", "patch", "update"],
            }
            if sub == "scale":
                sub_entry.update(group="autoscaling", version="v1", kind="Scale")
            entries.append(sub_entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def openapi_v3_root(registry: resources.Registry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for rtype in registry:
        gv = _gv_path(rtype.group, rtype.version)
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash=lockgate{len(paths)}"}
    return {"paths": paths}


def openapi_v3_group_version(registry: resources.Registry, group: str, version: str) -> dict[str, Any] | None:
    """A minimal OpenAPI v3 document: PATCH operations accepting ``fieldValidation`` (server validation)."""
    types = [rtype for rtype in registry if rtype.group == group and rtype.version == version]
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rtype in types:
        base = "/" + _gv_path(rtype.group, rtype.version)
        prefix = f"{base}/namespaces/{{namespace}}" if rtype.namespaced else base
        gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
        params = [
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
        ]
        if rtype.namespaced:
            params.append({"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}})
        paths[f"{prefix}/{rtype.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{rtype.kind}",
                "x-kubernetes-group-version-kind": gvk,
                "x-kubernetes-action": "patch",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            },
            "parameters": params,
        }
        if rtype.schema is not None:
            schema_name = ".".join(reversed(rtype.group.split("."))) + f".{rtype.version}.{rtype.kind}"
            schemas[schema_name] = {**rtype.schema, "x-kubernetes-group-version-kind": [gvk]}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
