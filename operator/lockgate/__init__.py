"""Lockgate: an auditable approval gate in front of production rollouts."""

__version__ = "0.1.0"
