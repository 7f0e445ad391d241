"""Outbound credentials bound to an origin (scheme, host, port): a request carries the headers
configured for its own origin (SCORING_OUTBOUND_CREDENTIALS) and nothing else."""

from urllib.parse import urlsplit

from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


class CredentialsConfigError(ValueError):
    """SCORING_OUTBOUND_CREDENTIALS is not a mapping of origins to header sets."""


def origin(url: str) -> str:
    """`scheme://host:port` of a URL, lower-cased and with the port always spelled, so that
    `https://Scorer.example` and `https://scorer.example:443/x` are one origin."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if not scheme or not host:
        raise ValueError(f"{url!r} has no scheme or host")
    port = parts.port or DEFAULT_PORTS.get(scheme)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def parse(config) -> dict[str, dict[str, str]]:
    """The configured credentials as origin -> headers. Each value is `{"bearer": token}` and/or
    `{"headers": {name: value}}`."""
    if not isinstance(config, dict):
        raise CredentialsConfigError("SCORING_OUTBOUND_CREDENTIALS must map origins to credentials")
    out: dict[str, dict[str, str]] = {}
    for key, value in config.items():
        try:
            normalised = origin(key)
        except ValueError as exc:
            raise CredentialsConfigError(f"SCORING_OUTBOUND_CREDENTIALS key {key!r}: {exc}") from None
        if urlsplit(key).path not in ("", "/"):
            raise CredentialsConfigError(f"SCORING_OUTBOUND_CREDENTIALS key {key!r} must be an origin, without a path")
        if not isinstance(value, dict) or not set(value) <= {"bearer", "headers"}:
            raise CredentialsConfigError(f'SCORING_OUTBOUND_CREDENTIALS[{key!r}] takes "bearer" and/or "headers"')
        headers = dict(value.get("headers") or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise CredentialsConfigError(f"SCORING_OUTBOUND_CREDENTIALS[{key!r}].headers must map strings to strings")
        if value.get("bearer"):
            headers["Authorization"] = f"Bearer {value['bearer']}"
        out[normalised] = headers
    return out


def headers_for(url: str) -> dict[str, str]:
    """The credential headers configured for this URL's origin (none for any other origin)."""
    try:
        return dict(parse(settings.SCORING_OUTBOUND_CREDENTIALS).get(origin(url), {}))
    except ValueError:
        return {}


def secrets_in(headers: dict[str, str]) -> list[str]:
    """Every value worth redacting from text that may echo these headers."""
    values = list(headers.values())
    values += [v.split(" ", 1)[1] for v in headers.values() if " " in v]
    return values
