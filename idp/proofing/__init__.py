"""Identity proofing: a resident's identity checked against an official document."""
