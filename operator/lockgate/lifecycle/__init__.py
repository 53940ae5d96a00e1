"""The promotion lifecycle: what to do next (``steps``, pure) and doing it (``reconciler``, the I/O edge).

Handlers feed the reconciler with what they see; the reconciler asks the gate engine and
``steps.next_step`` what the Promotion may do, then acts through ``kube`` and ``audit``.
"""
