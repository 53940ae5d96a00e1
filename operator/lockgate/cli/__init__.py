"""The ``lockgate`` command and the ``kubectl-lockgate`` plugin.
"""
