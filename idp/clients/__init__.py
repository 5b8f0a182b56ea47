"""Member companies and their OAuth/OIDC clients."""
