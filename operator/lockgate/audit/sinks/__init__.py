"""Durable homes for the audit chain: sqlite (embedded), DynamoDB and S3 (boto3).

Every sink keeps the chain head itself, appends idempotently by record id, never forks
a stream under concurrent writers, and raises ``AuditUnavailable`` instead of
pretending to have written.
"""
