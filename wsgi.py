"""WSGI entry point: ``gunicorn wsgi:app`` (``idp serve`` does this for you)."""

from idp import create_app

app = create_app()
