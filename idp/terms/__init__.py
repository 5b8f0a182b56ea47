"""The consortium's terms of use: published versions and residents' acceptance."""
