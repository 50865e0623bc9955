"""Search proposals and offers by meaning and by keyword."""
