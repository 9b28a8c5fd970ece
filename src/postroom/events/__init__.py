"""Postroom events package."""
