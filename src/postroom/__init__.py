"""Postroom: capture mail for testing, send it for real."""

__version__ = "0.1.0"
