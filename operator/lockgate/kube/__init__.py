"""Thin adapters to the Kubernetes API: facts gathering (SubjectAccessReview, workloads), patches, status writes, events.
"""
