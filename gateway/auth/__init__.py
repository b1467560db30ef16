"""Authentication and authorization: SCRAM, tokens, authenticators, users and roles.

No HTTP and no trio here; the web layer calls :class:`gateway.auth.service.AuthService` once per
request and checks :func:`gateway.auth.roles.is_allowed` before running an op.

- ``errors``          the exception tree, each with its HTTP status
- ``headers``         ``SCHEME name=value, ...`` and lenient base64
- ``scram``           SCRAM-SHA-256 credentials, the sans-IO server and its handshake table
- ``tokens``          bearer tokens, their policy, the ``TokenStore`` protocol, a memory store
- ``throttle``        failed-login throttling per user name and client address
- ``roles``           ``Role`` and the role matrix
- ``users``           ``User``, ``create_user``, the ``UserStore`` protocol, a memory store
- ``authenticators``  ``Authenticator`` and the Simple / Storage / Cert authenticators
- ``reply``           ``AuthReply`` and ``Identity``: what the HTTP layer acts on
- ``service``         ``AuthService``: the whole decision for one request
- ``pki``             the site CA, server and device certificates, PEM files
"""
