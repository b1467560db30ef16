"""Authentication and authorization: SCRAM, tokens, authenticators, users and roles."""
