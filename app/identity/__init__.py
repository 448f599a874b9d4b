"""Identity: who is calling. Credentials (operator keys, JWTs, stored API keys)
become a `Principal` once per request, in the middleware before routing; the
route scope map says which scope each route needs; `/v1/api-keys` manages the
stored keys."""
