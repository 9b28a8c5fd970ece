"""Postroom storage package."""
