"""Postroom smtp package."""
