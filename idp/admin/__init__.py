"""Consortium administration: admin accounts, the console under /admin, reports."""
