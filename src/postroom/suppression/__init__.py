"""The suppression list: addresses a project (or the whole account) must not mail."""
