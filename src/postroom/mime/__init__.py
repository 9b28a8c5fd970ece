"""Postroom mime package."""
