"""Authentication (passwords, tokens) and authorisation (who may do what)."""
