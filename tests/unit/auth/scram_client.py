"""A Haystack SCRAM-SHA-256 client written from RFC 5802 directly (hashlib/hmac, no scramp).

It is independent of the server's implementation on purpose, and can mimic the quirks of real
clients: no gs2 header (pyhaystack), the standard or URL base64 alphabet, padded or not, a
trailing newline after the proof (pyhaystack), a lower-case scheme and parameter names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass


def _b64(data: bytes, *, url: bool, padded: bool) -> str:
    text = (base64.urlsafe_b64encode if url else base64.b64encode)(data).decode()
    return text if padded else text.rstrip("=")


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


@dataclass
class HandClient:
    username: str
    password: str
    gs2: bool = True
    url: bool = True
    padded: bool = False
    proof_newline: bool = False
    lower_case: bool = False
    cnonce: str = ""

    def __post_init__(self) -> None:
        self.cnonce = self.cnonce or secrets.token_hex(12)
        self.client_first_bare = f"n={self.username},r={self.cnonce}"
        self.server_signature = b""

    def enc(self, text: str | bytes) -> str:
        raw = text.encode() if isinstance(text, str) else text
        return _b64(raw, url=self.url, padded=self.padded)

    def _scheme(self, scheme: str) -> str:
        return scheme.lower() if self.lower_case else scheme

    def hello(self) -> str:
        return f"{self._scheme('HELLO')} username={self.enc(self.username)}"

    def client_first(self) -> str:
        return ("n,," if self.gs2 else "") + self.client_first_bare

    def first(self, handshake_token: str) -> str:
        return self._scram(self.client_first(), handshake_token)

    def _scram(self, message: str, handshake_token: str) -> str:
        token_name = "handshaketoken" if self.lower_case else "handshakeToken"
        return f"{self._scheme('SCRAM')} data={self.enc(message)}, {token_name}={handshake_token}"

    def client_final(self, server_first: str) -> str:
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        nonce, salt, iterations = attrs["r"], attrs["s"], int(attrs["i"])
        assert nonce.startswith(self.cnonce)
        salted = hashlib.pbkdf2_hmac(
            "sha256", self.password.encode(), base64.b64decode(salt), iterations
        )
        client_key = _hmac(salted, b"Client Key")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.client_first_bare},{server_first},{without_proof}".encode()
        signature = _hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self.server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        # pyhaystack writes the proof with base64.encodebytes, which ends in a newline.
        tail = "\n" if self.proof_newline else ""
        return f"{without_proof},p={base64.b64encode(proof).decode()}{tail}"

    def final(self, server_first: str, handshake_token: str) -> str:
        return self._scram(self.client_final(server_first), handshake_token)

    def verify_server_final(self, server_final: str) -> bool:
        assert server_final.startswith("v=")
        return hmac.compare_digest(base64.b64decode(server_final[2:]), self.server_signature)
