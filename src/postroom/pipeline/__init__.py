"""Postroom pipeline package."""
