"""Postroom delivery package."""
