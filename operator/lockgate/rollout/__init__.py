"""Planning the workload image patch and judging rollout health (pure), plus post-deploy HTTP verification."""
