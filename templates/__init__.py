"""Jinja2 templates rendered into bundles (shipped as package data of the host, ``bilite.templates``)."""
