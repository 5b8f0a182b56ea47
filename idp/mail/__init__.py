"""Mail to residents: SMTP in production, a local outbox in development."""
