"""The reputation guard: bounce and complaint rates per project, warnings and pauses."""
