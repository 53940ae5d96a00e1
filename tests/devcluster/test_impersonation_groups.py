"""Repeated --as-group flags impersonate every group, in any order (as kube-apiserver does)."""

from __future__ import annotations

import pytest

from lockgate.devcluster import runner, testing


@pytest.mark.parametrize("groups", [("engineers", "engineering-leads"), ("engineering-leads", "engineers")])
def test_every_impersonated_group_counts(
    devcluster: runner.RunningCluster, kubectl_available: None, groups: tuple[str, str]
) -> None:
    flags = [arg for group in groups for arg in ("--as-group", group)]
    result = testing.kubectl(
        devcluster, "auth", "can-i", "approve", "promotions.lockgate.dev", "-n", "production", "--as", "someone", *flags
    )
    assert result.stdout.strip() == "yes", result.stderr
