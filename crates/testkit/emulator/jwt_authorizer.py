"""Checks a caller's token as an HTTP API's JWT authorizer does, before the function runs.

API Gateway developer guide, "Control access to HTTP APIs with JWT authorizers" (its workflow)
and "Troubleshooting HTTP API JWT authorizers" (the refusal's shape):

1. the token is in the identity source (``$request.header.Authorization``), alone or after
   ``Bearer``;
2. its algorithm is RSA-based (RS256, RS384, RS512: "currently, only RSA-based algorithms are
   supported") and its ``kid`` names a key of the issuer's set, found through
   ``{issuer}/.well-known/openid-configuration`` and its ``jwks_uri``;
3. the signature holds; ``iss`` is the issuer; ``aud``, or ``client_id`` when there is no
   ``aud``, is one of the audiences; ``exp`` is after now, ``nbf`` and ``iat`` before it.

A refusal is 401 ``{"message":"Unauthorized"}`` with a ``www-authenticate`` header saying why.
API Gateway keeps the keys up to two hours; here they are read for each request.
"""

from __future__ import annotations

import json
import time
import urllib.request

RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
UNAUTHORIZED = (401, {"message": "Unauthorized"})


class Refused(Exception):
    """Why the authorizer turns a request away, as its ``www-authenticate`` header says it."""

    def header(self) -> tuple[str, str]:
        return ("www-authenticate", f'Bearer scope="" error="invalid_token" error_description="{self}"')


def claims_of(authorizer, authorization: str | None) -> dict:
    """The token's claims, as the integration's event carries them; raises [`Refused`]."""
    import jwt  # PyJWT (scripts/setup.sh), only where a route has a JWT authorizer

    config = authorizer.jwt_config or {}
    issuer, audiences = config.get("issuer") or "", config.get("audience") or []
    if not authorization or not authorization.strip():
        raise Refused("the token is missing")
    token = authorization.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Refused("the token is malformed") from None
    if header.get("alg") not in RSA_ALGORITHMS:
        raise Refused("the token's signing algorithm is not supported")
    key = issuer_key(issuer, header.get("kid"))
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[header["alg"]],
            issuer=issuer,
            options={"verify_aud": False, "require": ["exp", "iss"]},
        )
    except jwt.InvalidIssuerError:
        raise Refused("the token does not have a valid issuer") from None
    except jwt.PyJWTError as error:
        raise Refused(f"the token is not valid: {type(error).__name__}") from None
    if claims.get("iat", 0) > time.time():
        raise Refused("the token is not valid before its time of issue")
    audience = claims.get("aud", claims.get("client_id"))
    given = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(one, str) and one in audiences for one in given):
        raise Refused("the token does not have a valid audience")
    return claims


def issuer_key(issuer: str, kid):
    """The key ``kid`` of the issuer's set, found through its discovery document."""
    import jwt

    try:
        discovery = fetch_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        keys = fetch_json(discovery["jwks_uri"])["keys"]
        found = next(key for key in keys if isinstance(key, dict) and key.get("kid") == kid)
        return jwt.PyJWK(found)
    except (OSError, ValueError, KeyError, TypeError, StopIteration, jwt.PyJWTError):
        raise Refused("the token's key is not one of the issuer's") from None


def fetch_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())
