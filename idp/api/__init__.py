"""Resource-server APIs: endpoints that accept our access tokens (``require_oauth``) on
behalf of a domain. They read the bearer token through ``idp.oauth.server``, never
through Authlib, and call the domain's service for the work."""
