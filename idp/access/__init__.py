"""The floor of access: browser sessions, authorization codes, tokens, device codes and
pairwise subjects, and the one way to end them (``service``: ``revoke_grants``,
``end_sessions``) with the logout notices that go with it (``notices``).

Every domain may call it; it imports no domain (residents and clients are known
by id, relationships by class name), and no Authlib: ``idp.oauth`` is the protocol.
"""
