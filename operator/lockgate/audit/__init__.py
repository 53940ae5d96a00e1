"""The audit record, its hash chain, and the durable sinks (sqlite, DynamoDB, S3).

Layout: ``record`` builds one canonical, deterministic record per decision; ``chain``
links and verifies records (pure); ``sinks`` store them durably and refuse loudly
(``AuditUnavailable``) when they cannot; ``trail`` writes to every configured sink
(fail closed); ``evidence`` maps one change to the controls an auditor checks.
"""
