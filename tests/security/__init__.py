"""Hostile-input and access tests (SECURITY.md section 4)."""
