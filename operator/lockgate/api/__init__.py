"""The Lockgate API: pydantic models of Promotion, Approval and GatePolicy, their phases and conditions.

The single source of truth the CRD YAML in ``crds/`` is generated from. Imports nothing else of ours.
"""
