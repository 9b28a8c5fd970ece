"""Postroom api package."""
