"""Protocol adapters: Authlib's server classes with our storage hooks.

Only this package imports Authlib, so an Authlib upgrade touches one folder;
the models (``idp.access.models``, ``idp.clients.models``) implement Authlib's
model interfaces by duck typing, without inheriting its mixins.
"""
