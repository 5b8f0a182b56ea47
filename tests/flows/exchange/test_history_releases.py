"""The resident's history names the registered data a service received by category."""

from __future__ import annotations

from idp.exchange import categories
from idp.privacy.history import released_items


def test_released_registered_data_is_named_by_its_category(app):
    """Test that ``registered_data.<key>`` in a release record reads as the category's
    label after the fixed items, and an unknown key as itself."""
    categories.ensure_defaults()
    with app.test_request_context(headers={"Accept-Language": "ja"}):
        items = released_items(["email", "email_verified", "registered_data.language",
                                "registered_data.gone"])
    assert items[-2:] == ["使用言語", "gone"]
    assert len(items) == 3
