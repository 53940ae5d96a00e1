"""Kopf wiring only: translate events into calls of the core and the adapters. The only layer that imports Kopf."""
