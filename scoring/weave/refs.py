"""Weave refs: `weave:///<entity>/<project>/object/<name>:<digest>`, `.../op/<name>:<digest>`
and `.../call/<call_id>`, parsed and formatted."""

from dataclasses import dataclass
from urllib.parse import quote, unquote

PREFIX = "weave:///"


class InvalidRef(ValueError):
    """A string that is not a Weave ref of the expected kind."""


@dataclass(frozen=True)
class ObjectRef:
    entity: str
    project: str
    kind: str  # "object" or "op"
    name: str
    version: str  # a digest, "latest" or "v<N>"
    extra: tuple[str, ...] = ()

    @property
    def project_id(self) -> str:
        return f"{self.entity}/{self.project}"

    def uri(self) -> str:
        return object_ref_uri(self.project_id, self.name, self.version, kind=self.kind)


def object_ref_uri(project_id: str, name: str, digest: str, *, kind: str = "object") -> str:
    return f"{PREFIX}{project_id}/{kind}/{quote(name, safe='.-_ ')}:{digest}"


def call_ref_uri(project_id: str, call_id: str) -> str:
    return f"{PREFIX}{project_id}/call/{call_id}"


def parse_object_ref(ref: str) -> ObjectRef:
    """Parse an object or op ref; raises InvalidRef with a message that says what is wrong."""
    if not isinstance(ref, str) or not ref.startswith(PREFIX):
        raise InvalidRef(f"Ref must start with {PREFIX!r}")
    parts = ref[len(PREFIX) :].split("/")
    if len(parts) < 4:
        raise InvalidRef("Ref must look like weave:///<entity>/<project>/object/<name>:<digest>")
    entity, project, kind, name_version, *extra = parts
    if not entity or not project:
        raise InvalidRef("Ref must name an entity and a project")
    if kind not in ("object", "op"):
        raise InvalidRef(f"Ref kind must be 'object' or 'op', got {kind!r}")
    name, sep, version = name_version.rpartition(":")
    if not sep or not name or not version:
        raise InvalidRef("Ref must end with <name>:<digest>")
    name = unquote(name)
    if "\x00" in name or "\x00" in ref:
        raise InvalidRef("Ref must not contain NUL characters (%00)")
    return ObjectRef(entity, project, kind, name, version, tuple(extra))
