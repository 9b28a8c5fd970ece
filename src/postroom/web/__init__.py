"""Postroom web package."""
