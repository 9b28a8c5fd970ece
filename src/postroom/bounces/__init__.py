"""Postroom bounces package."""
