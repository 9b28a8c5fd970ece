"""Types, errors and ports shared by every layer. Imports nothing else of Postroom's."""
