"""Operator settings: one documented class, read from ``LOCKGATE_*`` environment variables."""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lockgate.admission import imageguard
from lockgate.rollout import verification


class OperatorSettings(BaseSettings):
    """How the Lockgate operator runs. Every field maps to ``LOCKGATE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_", extra="ignore")

    namespace: str = Field("lockgate-system", description="Namespace the operator runs in; holds its Secrets.")
    identity: str = Field(
        "system:serviceaccount:lockgate-system:lockgate-operator",
        description="The operator's own Kubernetes username; admission lets image changes through only from it.",
    )
    stamp_secret: str = Field(
        "lockgate-stamp-key",
        description="Secret (in `namespace`) holding the HMAC key that signs identity stamps.",
    )
    standalone: bool = Field(False, description="A single replica: no leader election (development and tests).")
    lease_name: str = Field(
        "lockgate-leader",
        description="Lease (in `namespace`) whose holder is the one replica that acts; the others keep a warm "
        "view, serve the webhooks and take over when the holder stops renewing.",
    )
    lease_seconds: int = Field(
        15, description="How long a lease holder may go without renewing before others take over."
    )
    pod_name: str = Field(
        default_factory=lambda: os.environ.get("HOSTNAME", "lockgate"),
        description="This replica's identity in the Lease (the Pod name in a cluster).",
    )
    metrics_port: int = Field(9090, description="Port of the Prometheus /metrics endpoint (0 disables it).")
    metrics_host: str = Field("0.0.0.0", description="Address the metrics endpoint listens on.")
    health_port: int = Field(
        8081, description="Port of the probes: /healthz (liveness) and /readyz (readiness) (0 disables them)."
    )
    health_host: str = Field("0.0.0.0", description="Address the probes listen on.")
    webhook_host: str = Field("0.0.0.0", description="Address the admission webhook server listens on.")
    webhook_port: int = Field(
        9443, description="Port of the admission webhook server (0: any free port; negative disables webhooks)."
    )
    webhook_cert_dir: str | None = Field(
        None, description="Directory with tls.crt/tls.key for the webhook server; self-signed when unset."
    )
    webhook_public_host: str = Field(
        "localhost",
        description="Host name the API server uses to reach the webhooks (SAN of a self-signed cert); the guard "
        "coverage check expects the guard webhooks' clientConfig to call it (<service>.<namespace>.svc: that Service).",
    )
    manage_webhooks: bool = Field(
        True,
        description="Let the operator create and update its webhook configurations (named lockgate.dev); "
        "false when the Helm chart renders them. Its own configurations let the Pod, ReplicaSet, Job and Scale "
        "guards fail open (failurePolicy Ignore), which the guard coverage check then does not report.",
    )
    guard_new_workloads: bool = Field(
        False,
        description="Also refuse creating a Deployment, StatefulSet or DaemonSet in a gated namespace (its images "
        "were never approved), except by the break-glass groups; the chart turns this on. New Pods, ReplicaSets, Jobs, "
        "CronJobs and ReplicationControllers are always judged (only the workload controllers or break-glass).",
    )
    workload_controllers: list[str] = Field(
        default_factory=lambda: list(imageguard.KUBE_CONTROLLERS),
        description="Identities that make ReplicaSets, Pods and Jobs from a guarded owner's template "
        "(kube-controller-manager's); add the identity of any other controller that creates Pods in gated namespaces.",
    )
    image_annotations: list[str] = Field(
        default_factory=lambda: list(imageguard.IMAGE_ANNOTATIONS),
        description="Pod template annotations (glob patterns) whose value chooses an image a mutating webhook adds "
        "to the Pods (a sidecar or agent injector's image or version): in a gated namespace, changing one needs "
        "break-glass, like a container image that no Promotion rolls out. Add your injectors' keys.",
    )
    verification_hosts: list[str] = Field(
        default_factory=lambda: list(verification.DEFAULT_HOSTS),
        description="Hosts a Promotion's HTTP checks may probe ('*' is one DNS label, '{namespace}' the "
        "Promotion's namespace); by default the Services of its own namespace. Refused at admission otherwise.",
    )
    break_glass_groups: list[str] = Field(
        default_factory=list,
        description="Groups that may change images in gated namespaces directly; every use is an emergency change.",
    )
    sar_cache_seconds: float = Field(
        10.0, description="How long a SubjectAccessReview answer is reused (forgotten at once on any RBAC change)."
    )
    log_format: str = Field("text", description="`text` or `json` (structured logs; each line names its promotion).")
    api_timeout_seconds: float = Field(10.0, description="Deadline of one Kubernetes API call.")
