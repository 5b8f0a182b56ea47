"""The HTML steps of a grant (node-oidc-provider's "interactions"): login and consent."""
