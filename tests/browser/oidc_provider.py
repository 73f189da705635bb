"""A minimal OpenID Connect provider for the browser test of single sign-on.

No identity provider can be reached from here, so the test runs this one on localhost: the
discovery document, an authorization endpoint that signs in one configured person at once (no
login form), a token endpoint that returns an RS256-signed ID token carrying the nonce it was
asked for, and the public key set. It checks the client id, secret, redirect URI and code the way
a provider must; it is a test peer, not a product part.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class Provider:
    """The provider's settings and what it has handed out."""

    client_id: str
    client_secret: str
    email: str
    name: str
    url: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048,
                                                                   parameters={"kid": "k1"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    sign_ins: int = 0
    # seconds the ID token is valid for; negative: already expired when handed over (Streamlit's
    # OIDC client accepts up to two minutes past exp, so only the app's own check refuses it)
    lifetime: int = 300

    def app(self) -> Starlette:
        """The provider's HTTP endpoints."""
        return Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
            Route("/jwks", self.jwks),
        ])

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({
            "issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
        })

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": query.get("nonce", ""),
                            "redirect_uri": query["redirect_uri"]}
        target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return RedirectResponse(target, status_code=302)

    async def token(self, request: Request) -> Response:
        form = await request.form()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if request.headers.get("authorization", "").startswith("Basic "):
            import base64

            raw = base64.b64decode(request.headers["authorization"][6:]).decode()
            client_id, _, client_secret = raw.partition(":")
        grant = self.codes.pop(str(form.get("code")), None)
        if (client_id, client_secret) != (self.client_id, self.client_secret) or grant is None \
                or grant["redirect_uri"] != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {"iss": self.url, "sub": "person-1", "aud": self.client_id, "iat": now,
                  "exp": now + self.lifetime, "nonce": grant["nonce"], "email": self.email,
                  "email_verified": True, "name": self.name}
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
        self.sign_ins += 1
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                             "expires_in": 300, "id_token": id_token})

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})


@contextmanager
def serving(provider: Provider, port: int) -> Iterator[Provider]:
    """Serve the provider on 127.0.0.1:port in a thread."""
    provider.url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(provider.app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=10)
