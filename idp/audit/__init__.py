"""Append-only audit trail, written in the same transaction as the change."""
