"""The scope registry (idp.scopes) is the single source of every scope list."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from idp import scopes
from idp.clients import validation
from idp.clients.validation import ClientError
from idp.clients.validation import ClientSettings
from idp.config import Settings
from idp.consent import items
from idp.oauth.claims import VALUES
from idp.oauth.claims import claims_for
from idp.oauth.discovery import metadata
from idp.scopes import Scope
from idp.scopes import ScopeFamily

# The lists as they were written out by hand before the registry; they must not drift.
OWN = ("openid", "name", "birth_year", "gender", "email", "postal_code", "offline_access",
       "touch_events", "sensor_counts")
CONSENT_ORDER = ["openid", "name", "birth_year", "gender", "email", "postal_code",
                 "verified_claims", "offline_access", "touch_events"]

SETTINGS = Settings.load({"environment": "test", "database_url": "sqlite://",
                          "issuer": "https://id.example.jp"})


def resident() -> SimpleNamespace:
    return SimpleNamespace(family_name="札幌", given_name="花子", family_name_kana="サッポロ",
                           given_name_kana="ハナコ", birth_year=1990, gender="female",
                           email="hanako@example.jp", email_verified=True,
                           postal_code="060-0042", locality="札幌市中央区")


def test_discovery_offers_exactly_the_registry_scopes():
    """Test that scopes_supported is the registry's scopes: our own, then the standard ones."""
    assert metadata(SETTINGS)["scopes_supported"] == scopes.supported(families=False)
    assert scopes.supported(families=False) == [*OWN, "profile", "address"]
    assert metadata(SETTINGS, ("registered:language",))["scopes_supported"] \
        == [*OWN, "registered:language", "profile", "address"]


def test_discovery_claims_are_the_registry_claims():
    """Test that every claim a scope releases is advertised, and no other resident claim
    but registered_data (what the registered:<category> family releases)."""
    released = {c for claims in scopes.claims().values() for c in claims}
    advertised = set(metadata(SETTINGS)["claims_supported"])
    assert released <= advertised
    assert advertised - released == {"iss", "aud", "exp", "iat", "auth_time", "nonce",
                                     "at_hash", "amr", "acr", "sid", "verified_claims",
                                     "registered_data"}


def test_continued_access_is_the_one_opt_in_item_of_the_registry():
    """Test that the consent screen's opt-in items come from the registry: continued access
    only, which is neither required nor ticked by default (the consent view reads it there)."""
    assert scopes.opt_in() == items.OPT_IN_SCOPES == {"offline_access"}
    assert not scopes.opt_in() & scopes.required()


def test_clients_may_be_registered_for_the_registry_scopes_only():
    """Test that client validation accepts the registry's own scopes and nothing else."""
    assert validation.SCOPES == OWN == scopes.registrable()
    settings = ClientSettings(name="A", redirect_uris=["https://rp.example.jp/cb"],
                              post_logout_redirect_uris=[], grant_types=[], scopes=list(OWN))
    assert validation.checked(settings, public=False).scopes == list(OWN)
    for unknown in ("profile", "verified_claims", "phone"):
        settings.scopes = [unknown]
        with pytest.raises(ClientError):
            validation.checked(settings, public=False)


def test_consent_items_follow_the_registry_order():
    """Test that the consent screen's items are the registry's labelled entries, in order."""
    every = [s.name for s in scopes.SCOPES]
    assert [i.scope for i in items.items_for(every)] == CONSENT_ORDER
    assert {"openid"} == items.REQUIRED_SCOPES


def test_each_scope_releases_the_claims_the_registry_names():
    """Test that claims release and the registry agree, scope by scope."""
    for name, claims in scopes.claims().items():
        assert set(claims_for(resident(), [name], "sub-1")) == {"sub", *claims}


def test_every_claim_the_registry_names_has_one_reader():
    """Test that release reads exactly the claims the registry names: each has a reader in
    oauth/claims.py, and no reader is left for a claim no scope names any more."""
    named = {c for claims in scopes.claims().values() for c in claims} - {"sub"}
    assert set(VALUES) == named


def test_standard_scopes_are_read_as_finer_ones():
    """Test that profile and address expand to the registry's finer scopes."""
    assert scopes.expand("openid profile address") == "openid name birth_year gender postal_code"
    assert scopes.expand("openid  profile", allowed={"openid", "name"}) == "openid name"
    assert scopes.expand(None) is None


def test_only_device_scopes_are_not_about_a_resident():
    """Test that client_credentials may ask touch_events and sensor_counts, no resident scope."""
    assert {s for s in OWN if not scopes.is_about_resident(s)} == {"touch_events",
                                                                  "sensor_counts"}


def test_sensor_counts_is_never_on_a_consent_screen(app):
    """Test that sensor_counts has no consent item: no resident ever grants it."""
    assert "sensor_counts" not in [item.name for item in scopes.consent_items()]
    assert scopes.consent_items(["openid", "sensor_counts"]) == scopes.consent_items(["openid"])


def test_a_family_adds_its_scopes_everywhere(app):
    """Test that a registered family's scopes are known, offered and shown for consent."""
    shop = Scope("shop:all", "Shops", "The shops you registered.")
    family = ScopeFamily("shop:", lambda name: shop if name == shop.name else None,
                         offered=lambda: [shop])
    scopes.register_family(family)
    try:
        assert scopes.known("shop:all")
        assert not scopes.known("registered:nothing")
        assert "shop:all" in scopes.offered_by_families()
        assert [i.scope for i in items.items_for(["openid", "shop:all"])] \
            == ["openid", "shop:all"]
        scopes.register_family(family)  # the same family again: nothing changes
        with pytest.raises(ValueError):
            scopes.register_family(ScopeFamily("shop:", lambda name: None))
    finally:
        scopes.unregister_family("shop:")
    assert not scopes.known("shop:all")


def test_registered_data_scopes_follow_the_categories_in_use(app):
    """Test that registered:/contribute: scopes exist exactly for the categories in use,
    and that discovery lists them between our fixed scopes and the standard ones."""
    from idp.exchange import categories

    assert not scopes.known("registered:language")
    categories.ensure_defaults()
    assert scopes.known("registered:language") and scopes.known("contribute:language")
    assert not scopes.known("registered:no_such_thing")
    assert scopes.is_about_resident("registered:language")
    assert not scopes.is_about_resident("contribute:language")
    offered = scopes.offered_by_families()
    assert {"registered:household", "contribute:household"} <= set(offered)
    document = metadata(SETTINGS, offered)["scopes_supported"]
    assert document[-2:] == ["profile", "address"] and "registered:language" in document
