"""A resident's consent to a client: which items, under which terms, until when."""
