"""The pure decision core: ``engine.evaluate(...) -> Decision``.

No I/O, no Kopf, no Kubernetes client. Imports only ``lockgate.api``.
"""
