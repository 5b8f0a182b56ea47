"""Protocol adapters: Authlib's server classes with our storage hooks.

Only this package (and ``ClientMixin`` in ``idp.clients.models``) imports
Authlib, so an Authlib upgrade touches one folder.
"""
