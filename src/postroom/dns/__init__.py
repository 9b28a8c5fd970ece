"""Postroom dns package."""
