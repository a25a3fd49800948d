"""Alembic migrations for every package's tables (see switchboard.migrate)."""
