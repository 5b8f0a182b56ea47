"""Residents: consortium IDs, passwords and sign-in sessions."""
