"""Weave's RemoteScorer: the call is POSTed to the scorer's `endpoint_url` and the reply's
`result` is the score.

The request follows Weave's remote scorer contract, version 1: a JSON body
`{"schema_version": 1, "original_call": <the call>, "scoring_call_id": ..., "scorer": {"name",
"ref", "config"}}` (optional fields without a value are omitted, not null; there is no monitor
here, so no `monitor`), and headers `Idempotency-Key` (stable for one task across its retries, so
the endpoint can deduplicate), `X-Correlation-ID` and `X-Weave-Schema-Version: 1`. The endpoint
must answer 200 with `{"schema_version": 1, "result": ...}`; bodies are limited to 1 MiB each way,
and redirects are not followed.

Unlike Weave, which sends a call request once, 408/429/5xx answers, timeouts and connection errors
are retried by the task runner (with the same Idempotency-Key); other answers fail the task. The
URL is SSRF-guarded (scoring/netguard.py). Credentials are sent only to the origin they were
configured for (SCORING_OUTBOUND_CREDENTIALS) and never appear in an error. A reply body is never
copied into an error: the error keeps the status, the origin and, for a reply in the contract's
error shape `{"schema_version": 1, "error": {"message": ...}}`, its message.
"""

import json
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from scoring.scorers import credentials, netguard
from scoring.scorers.base import (
    Outcome,
    RefResolver,
    RetryableError,
    Scorer,
    ScorerConfigError,
    ScorerFailed,
    ScoringContext,
    read_timeout,
)

SCHEMA_VERSION = 1
MAX_REQUEST_BYTES = 1024 * 1024
ERROR_TEXT_LIMIT = 500
RETRYABLE_STATUSES = frozenset({408, 425, 429})


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _contract_error(raw: bytes) -> str:
    """`: <message>` of a reply in the contract's error shape, else nothing: other bodies may be
    pages of an internal host, and the tenant reads task errors back."""
    try:
        reply = json.loads(raw, parse_constant=_no_constants)
    except ValueError:
        return ""
    if not isinstance(reply, dict) or reply.get("schema_version") != SCHEMA_VERSION:
        return ""
    problem = reply.get("error")
    message = problem.get("message") if isinstance(problem, dict) else None
    if not isinstance(message, str):
        return ""
    return f": {message[:ERROR_TEXT_LIMIT]}"


class RemoteScorer(Scorer):
    """The result a customer-hosted HTTP endpoint returns for the call."""

    class_name = "RemoteScorer"
    slow = True

    def __init__(self, val: dict, resolve: RefResolver | None = None):
        super().__init__(val, resolve)
        self.endpoint_url = val["endpoint_url"].strip()
        self.config = val.get("config")

    @classmethod
    def validate(cls, val: dict) -> None:
        super().validate(val)
        url = val.get("endpoint_url")
        url = url.strip() if isinstance(url, str) else ""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  # a malformed port raises here
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ScorerConfigError(f"RemoteScorer endpoint_url must be an http(s) URL with a host, got {url!r}")
        config = val.get("config")
        if config is not None and not isinstance(config, dict):
            raise ScorerConfigError("RemoteScorer config must be an object")

    def request_body(self, context: ScoringContext) -> dict:
        """The schema_version 1 request for this call."""
        original_call = {k: v for k, v in context.call.items() if v is not None}
        # Weave's contract names the call's id `call_id`; our CallSchema copy names it `id`.
        original_call.setdefault("call_id", context.call_id)
        original_call.setdefault("project_id", context.project_id)
        scorer = {"name": self.name, "ref": context.scorer_ref or None, "config": self.config}
        return {
            "schema_version": SCHEMA_VERSION,
            "original_call": original_call,
            "scoring_call_id": context.scoring_call_id,
            "scorer": {k: v for k, v in scorer.items() if v is not None},
        }

    def run(self, arguments: dict[str, Any], context: ScoringContext) -> Outcome:
        data = json.dumps(self.request_body(context), separators=(",", ":"), default=str).encode()
        if len(data) > MAX_REQUEST_BYTES:
            raise ScorerFailed(
                f"The call is too large to send to a remote scorer ({len(data)} bytes; the limit is "
                f"{MAX_REQUEST_BYTES})",
                error_type="RemoteRequestTooLarge",
            )
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": context.task_key,
            "X-Correlation-ID": context.scoring_call_id,
            "X-Weave-Schema-Version": str(SCHEMA_VERSION),
        }
        secret = credentials.headers_for(self.endpoint_url)
        headers.update(secret)
        try:
            return Outcome(self._post(data, headers))
        except (RetryableError, ScorerFailed) as exc:
            exc.args = (netguard.redact(str(exc), credentials.secrets_in(secret)),)
            raise

    def _post(self, data: bytes, headers: dict) -> Any:
        where = f"Remote scorer {credentials.origin(self.endpoint_url)}"
        try:
            netguard.check_url(self.endpoint_url)
            with (
                netguard.transport_errors(where, "RemoteScorer"),
                netguard.shared_client("guarded").stream(
                    "POST",
                    self.endpoint_url,
                    content=data,
                    headers=headers,
                    timeout=netguard.timeout(read_timeout(settings.SCORING_REMOTE_SCORER_TIMEOUT, self.class_name)),
                ) as response,
            ):
                raw = netguard.read_capped(response)
        except netguard.OutboundRefused as exc:
            raise ScorerFailed(f"Refused to call {self.endpoint_url}: {exc}", error_type="OutboundRefused") from None
        except netguard.OutboundLookupFailed as exc:
            if exc.temporary:
                raise RetryableError(f"{where}: {exc}", error_type="RemoteScorerUnavailable") from None
            raise ScorerFailed(f"{where}: {exc}", error_type="RemoteScorerUnavailable") from None

        status = response.status_code
        text = _contract_error(raw)
        if status in RETRYABLE_STATUSES or status >= 500:
            raise RetryableError(
                f"{where} answered {status} {response.reason_phrase}{text}",
                error_type="RemoteScorerRateLimited" if status == 429 else "RemoteScorerError",
                retry_after=netguard.retry_after_seconds(response.headers.get("Retry-After")),
            )
        if 300 <= status < 400:
            raise ScorerFailed(
                f"{where} redirected ({status}); redirects are not followed",
                error_type="RemoteScorerRedirected",
            )
        if status != 200:
            raise ScorerFailed(
                f"{where} rejected the request ({status} {response.reason_phrase}){text}",
                error_type="RemoteScorerRejected",
            )
        try:
            reply = json.loads(raw, parse_constant=_no_constants)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or "result" not in reply:
            raise ScorerFailed(
                f'{where} answered 200 without a {{"schema_version": 1, "result": ...}} object '
                f"({len(raw)} bytes, {response.headers.get('Content-Type') or 'no content type'})",
                error_type="RemoteScorerBadResponse",
            )
        if reply.get("schema_version") != SCHEMA_VERSION:
            raise ScorerFailed(
                f"{where} answered schema_version {reply.get('schema_version')!r}; the request's is {SCHEMA_VERSION}",
                error_type="RemoteScorerBadResponse",
            )
        return reply["result"]
