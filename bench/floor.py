"""The floor of the approval -> rollout latency: watch Approvals, patch the Deployment. No gate logic.

Run by ``bench/approval_latency.py`` as a subprocess (as the operator runs), with the embedded API's
URL, a bearer token, its CA file and the namespace to watch. Each Approval names (``spec.promotion``)
a Deployment of the same name; when ``--required`` distinct approvers approved it, the Deployment's
``web`` container is set to the image given in the Approval's ``lockgate.dev/image`` annotation.
This is the least any gate must do: one watch event in, one PATCH out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl

import aiohttp


async def floor(url: str, token: str, cafile: str, namespace: str, required: int) -> None:
    context = ssl.create_default_context(cafile=cafile)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    approvers: dict[str, set[str]] = {}
    patched: set[str] = set()
    async with aiohttp.ClientSession(url, headers=headers, connector=aiohttp.TCPConnector(ssl=context)) as session:
        path = f"/apis/lockgate.dev/v1alpha1/namespaces/{namespace}/approvals"
        version = ""
        while True:
            params = {"watch": "true", "allowWatchBookmarks": "true"}
            if version:
                params["resourceVersion"] = version
            async with session.get(path, params=params, timeout=aiohttp.ClientTimeout(total=None)) as stream:
                async for line in stream.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    version = obj.get("metadata", {}).get("resourceVersion") or version
                    if event.get("type") != "ADDED":
                        continue
                    spec = obj.get("spec") or {}
                    target = str(spec.get("promotion"))
                    if spec.get("decision") != "Approve" or target in patched:
                        continue
                    approvers.setdefault(target, set()).add(str(spec.get("approver")))
                    if len(approvers[target]) < required:
                        continue
                    image = obj["metadata"].get("annotations", {}).get("lockgate.dev/image")
                    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}
                    async with session.patch(
                        f"/apis/apps/v1/namespaces/{namespace}/deployments/{target}",
                        data=json.dumps(patch),
                        headers={"Content-Type": "application/strategic-merge-patch+json"},
                    ) as response:
                        await response.read()
                        if response.status < 300:
                            patched.add(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--required", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(floor(args.url, args.token, args.cafile, args.namespace, args.required))


if __name__ == "__main__":
    main()
