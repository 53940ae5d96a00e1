"""Thin adapters to the Kubernetes API.

Facts gathering (SubjectAccessReview, workloads), patches, status writes and events.
"""
