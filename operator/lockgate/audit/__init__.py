"""The audit record, its hash chain, and the durable sinks (sqlite, DynamoDB, S3).
"""
