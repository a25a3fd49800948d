"""Operator scripts that run outside the hub (not installed with the package)."""
