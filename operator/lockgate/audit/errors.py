"""The one error the audit layer raises when a record cannot be made durable."""

from __future__ import annotations


class AuditUnavailable(Exception):
    """A sink could not durably write (or read) the audit trail; the caller must not proceed.

    ``sink`` names the sink, and the message says what failed and what to do about it.
    """

    def __init__(self, message: str, *, sink: str | None = None) -> None:
        super().__init__(message)
        self.sink = sink
        self.message = message
