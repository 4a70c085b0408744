"""Ingest: the source topics' batch path (decode, validate, write idempotently, dead-letter)."""
