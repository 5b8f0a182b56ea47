"""Signing keys for ID tokens: rotation with a publish-before-use delay."""
