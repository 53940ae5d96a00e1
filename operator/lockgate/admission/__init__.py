"""Admission decisions, pure: identity stamps for Promotions and Approvals, and the image-change guard.

The Kopf webhook handlers (``lockgate.handlers.admission``) call these with the request's
authenticated ``userInfo``; nothing here does I/O.
"""
