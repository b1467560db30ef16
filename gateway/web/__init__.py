"""The web edge: the Quart-Trio app factory, content negotiation and auth middleware."""
