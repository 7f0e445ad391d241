"""Weave's Monitor objects as the client publishes them (weave.flow.monitor): what a stored value
says, read once, and the deterministic sampling decision per (monitor, call)."""

import hashlib
from dataclasses import dataclass
from typing import Any

MONITOR_CLASSES = ("Monitor", "ClassifierMonitor")
AGENT_SPAN_OP_NAMES = frozenset({"weave.genai.turn_ended"})
DEBOUNCE_FIELDS = ("trace_id", "thread_id")
DEBOUNCE_METHODS = ("last_message", "all_messages")
WRAPPER_KEYS = ("_type", "_class_name", "_bases")


class MonitorInvalid(ValueError):
    """A stored monitor that cannot be applied; the message says what is wrong with it."""


@dataclass(frozen=True)
class Debounce:
    field: str  # trace_id or thread_id
    method: str  # last_message or all_messages
    timeout_seconds: float


@dataclass(frozen=True)
class MonitorSpec:
    """What a monitor version asks for."""

    active: bool
    scorer_refs: tuple[str, ...]
    op_names: tuple[str, ...]
    query: dict | None
    sampling_rate: float
    is_traced: bool
    debounce: Debounce | None
    classifier: bool

    def op_matches(self, op_name: str) -> bool:
        """Whether a call's op name is one the monitor names (none named: every op)."""
        if not self.op_names:
            return True
        for name in self.op_names:
            if name.endswith(":*") and op_name.startswith(name[:-1]):
                return True
            if op_name == name:
                return True
        return False


def unwrap_query(value: Any) -> Any:
    """A query as the client stores it (each operator a pydantic object: `_type` wrappers and
    field names such as `get_field_`) turned into the `$`-keyed form /calls/stream_query takes."""
    if isinstance(value, list):
        return [unwrap_query(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in WRAPPER_KEYS:
            continue
        if key.endswith("_") and not key.startswith("$"):
            head, *rest = key[:-1].split("_")
            key = "$" + head + "".join(part.capitalize() for part in rest)
        out[key] = unwrap_query(item)
    return out


def monitor_spec(val: Any, *, class_name: str | None = None) -> MonitorSpec:
    """Read a stored monitor value; MonitorInvalid says what does not fit Weave's Monitor."""
    if not isinstance(val, dict):
        raise MonitorInvalid("a monitor must be an object")
    scorers = val.get("scorers") or []
    if not isinstance(scorers, list) or not all(isinstance(ref, str) for ref in scorers):
        raise MonitorInvalid("scorers must be a list of scorer refs")
    op_names = val.get("op_names") or []
    if not isinstance(op_names, list) or not all(isinstance(name, str) for name in op_names):
        raise MonitorInvalid("op_names must be a list of op refs")
    rate = val.get("sampling_rate", 1)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise MonitorInvalid("sampling_rate must be a number from 0 to 1")
    query = val.get("query")
    if query is not None:
        query = unwrap_query(query)
        if not isinstance(query, dict) or "$expr" not in query:
            raise MonitorInvalid("query must be a Weave query ({'$expr': ...})")
        query = {"$expr": query["$expr"]}
    return MonitorSpec(
        active=val.get("active") is True,
        scorer_refs=tuple(scorers),
        op_names=tuple(name.strip() for name in op_names),
        query=query,
        sampling_rate=float(rate),
        is_traced=val.get("is_traced", True) is not False,
        debounce=_debounce(val.get("scorer_debounce_config")),
        classifier=(class_name or val.get("_class_name")) == "ClassifierMonitor",
    )


def _debounce(config: Any) -> Debounce | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        raise MonitorInvalid("scorer_debounce_config must be an object")
    field = config.get("aggregation_field")
    method = config.get("aggregation_method") or "last_message"
    timeout = config.get("timeout_seconds")
    if field not in DEBOUNCE_FIELDS:
        raise MonitorInvalid(f"aggregation_field must be one of {', '.join(DEBOUNCE_FIELDS)}")
    if method not in DEBOUNCE_METHODS:
        raise MonitorInvalid(f"aggregation_method must be one of {', '.join(DEBOUNCE_METHODS)}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
        raise MonitorInvalid("timeout_seconds must be a number of seconds")
    return Debounce(field, method, float(timeout))


def sampled_in(monitor_name: str, key: str, rate: float) -> bool:
    """Whether sampling keeps this call (or trace, when debounced) for the monitor: a hash of the
    two, so that a redelivered call, or a new version of the monitor, decides the same way."""
    if rate >= 1:
        return True
    if rate <= 0:
        return False
    digest = hashlib.blake2b(f"{monitor_name}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2**64


def op_names_normalized(op_names: list[str], *, project_id: str) -> list[str]:
    """Short op names expanded to `weave:///<project>/op/<name>:*`, as the client's
    Monitor.activate() and deactivate() store them; refs and agent span names stay as they are."""
    normalized = []
    for name in op_names:
        if name in AGENT_SPAN_OP_NAMES or name.strip().startswith("weave:///"):
            normalized.append(name)
            continue
        short = name.strip().strip("/")
        if not short:
            raise MonitorInvalid(f"op_names entries must be non-empty; got {name!r}")
        if "/" in short:
            raise MonitorInvalid(f"op_names entries must be a weave URI or a single op short name; got {name!r}")
        # Unquoted, as the client's OpRef.uri() writes it.
        normalized.append(f"weave:///{project_id}/op/{short}:*")
    return normalized
