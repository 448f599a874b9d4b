"""JWTs signed by keys published at JWT_JWKS_URL (RS256 and ES256), from a real
HTTP server: keys fetched once and cached, fetched again for a key id not seen
yet (a rotation), and each algorithm accepted only with its own kind of key."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy.ext.asyncio import AsyncEngine

from app.identity.tokens import InvalidToken, TokenVerifier
from app.main import create_app
from tests.conftest import make_settings, served
from tests.identity.conftest import bearer


class KeySetServer:
    """Serves `/jwks.json` from `keys`, counting the fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def publish(self, kid: str, jwk_json: str, algorithm: str) -> None:
        self.keys.append({**json.loads(jwk_json), "kid": kid, "alg": algorithm, "use": "sig"})


@pytest.fixture
def key_set() -> Iterator[KeySetServer]:
    server = KeySetServer()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
CLAIMS = {"tenant_id": "acme", "sub": "u1", "scope": "runs:read"}


def signed(key: Any, algorithm: str, kid: str, **claims: Any) -> str:
    payload = {**CLAIMS, "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
async def jwks_app(
    database_url: str, db_engine: AsyncEngine, key_set: KeySetServer
) -> AsyncIterator[httpx.AsyncClient]:
    key_set.publish("rsa-1", RSAAlgorithm.to_jwk(RSA_KEY.public_key()), "RS256")
    key_set.publish("ec-1", ECAlgorithm.to_jwk(EC_KEY.public_key()), "ES256")
    app: FastAPI = create_app(make_settings(database_url, jwt_jwks_url=key_set.url))
    async with served(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_rs256_and_es256_tokens_from_published_keys(
    jwks_app: httpx.AsyncClient, key_set: KeySetServer
) -> None:
    for token in (
        signed(RSA_KEY, "RS256", "rsa-1"),
        signed(EC_KEY, "ES256", "ec-1"),
        signed(RSA_KEY, "RS256", "rsa-1", sub="u2"),
    ):
        answer = await jwks_app.get("/v1/runs", headers=bearer(token))
        assert answer.status_code == 200, answer.text
    assert key_set.fetches == 1  # the key set is cached


async def test_tokens_the_published_keys_do_not_sign_are_refused(
    jwks_app: httpx.AsyncClient,
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for token, why in [
        (signed(other, "RS256", "rsa-1"), "not valid"),
        (signed(RSA_KEY, "RS256", "rsa-unknown"), "No published signing key"),
        (signed(EC_KEY, "ES256", "rsa-1"), "not valid"),  # another key's id
        (signed(RSA_KEY, "RS256", "rsa-1", exp=int(time.time()) - 60), "expired"),
        # The RSA public key as an HMAC secret: HS256 is not accepted here at all.
        (jwt.encode({**CLAIMS, "exp": int(time.time()) + 60}, "x" * 32, "HS256"), "HS256"),
    ]:
        answer = await jwks_app.get("/v1/runs", headers=bearer(token))
        assert answer.status_code == 401, (why, answer.text)
        assert why in answer.json()["detail"]
    assert public_pem  # (what an HS256 confusion attack would have used as its secret)


async def test_a_rotated_key_is_fetched_when_first_seen(key_set: KeySetServer) -> None:
    key_set.publish("rsa-1", RSAAlgorithm.to_jwk(RSA_KEY.public_key()), "RS256")
    settings = make_settings("sqlite+aiosqlite:///unused.db", jwt_jwks_url=key_set.url)
    verifier = TokenVerifier(settings, key_set_cooldown=0)
    assert (await verifier.principal(signed(RSA_KEY, "RS256", "rsa-1"))).user_id == "u1"
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_set.publish("rsa-2", RSAAlgorithm.to_jwk(rotated.public_key()), "RS256")
    found = await verifier.principal(signed(rotated, "RS256", "rsa-2", sub="u9"))
    assert (found.tenant_id, found.user_id, found.scopes) == ("acme", "u9", {"runs:read"})
    assert key_set.fetches == 2


async def test_an_unreachable_key_set_refuses_tokens() -> None:
    settings = make_settings(
        "sqlite+aiosqlite:///unused.db", jwt_jwks_url="http://127.0.0.1:1/jwks.json"
    )
    with pytest.raises(InvalidToken, match="cannot be fetched"):
        await TokenVerifier(settings).principal(signed(RSA_KEY, "RS256", "rsa-1"))
