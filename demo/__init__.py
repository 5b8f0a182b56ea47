"""Demo relying party for Machi ID (a member company's app). Not part of the IdP."""
