"""A call as its page shows it: the call, its place in its trace, and every feedback on it with the
scoring call that recorded how each score was made."""

from dataclasses import dataclass, field

from scoring.models import Call, Feedback, Project
from scoring.weave.refs import PREFIX, call_ref_uri

TRACE_LIMIT = 500  # calls of one trace drawn as a tree; a longer trace is cut, and says so


@dataclass
class TraceNode:
    call: Call
    children: list["TraceNode"] = field(default_factory=list)


@dataclass(frozen=True)
class FeedbackView:
    feedback: Feedback
    scoring_call: Call | None

    @property
    def scorer_name(self) -> str:
        return self.feedback.feedback_type.removeprefix("wandb.runnable.")

    @property
    def usage(self) -> dict:
        """Token usage by model id, as a judge's scoring call records it in `summary.usage`."""
        summary = self.scoring_call.summary if self.scoring_call is not None else None
        usage = summary.get("usage") if isinstance(summary, dict) else None
        return usage if isinstance(usage, dict) else {}


@dataclass(frozen=True)
class CallDetail:
    call: Call
    parent: Call | None
    tree: TraceNode | None
    trace_cut: bool
    feedback: list[FeedbackView]

    @property
    def trace_rows(self) -> list[tuple[int, Call]]:
        """The tree depth first as (depth, call), walked without recursion: a trace may be deep."""
        rows, stack = [], [(0, self.tree)] if self.tree else []
        while stack:
            depth, node = stack.pop()
            rows.append((depth, node.call))
            stack.extend((depth + 1, child) for child in reversed(node.children))
        return rows


def call_detail(*, project: Project, call_id: str) -> CallDetail | None:
    call = Call.objects.filter(project=project, call_id=call_id, deleted_at__isnull=True).first()
    if call is None:
        return None
    trace = []
    if call.trace_id:
        trace = list(
            Call.objects.filter(project=project, trace_id=call.trace_id, deleted_at__isnull=True)
            .only("call_id", "op_name", "display_name", "parent_id", "started_at", "ended_at", "exception")
            .order_by("started_at", "call_id")[: TRACE_LIMIT + 1]
        )
    parent = None
    if call.parent_id:
        parent = (
            next((c for c in trace if c.call_id == call.parent_id), None)
            or Call.objects.filter(project=project, call_id=call.parent_id).first()
        )
    tree = _tree(trace[:TRACE_LIMIT], call)
    return CallDetail(
        call=call,
        parent=parent,
        tree=tree,
        trace_cut=len(trace) > TRACE_LIMIT,
        feedback=_feedback(project, call),
    )


def _tree(calls: list[Call], current: Call) -> TraceNode | None:
    """The trace as a tree from its root (the current call alone when its trace is not stored)."""
    nodes = {c.call_id: TraceNode(c) for c in calls}
    nodes.setdefault(current.call_id, TraceNode(current))
    roots = []
    for node in nodes.values():
        parent = nodes.get(node.call.parent_id or "")
        if parent is not None and parent is not node:
            parent.children.append(node)
        else:
            roots.append(node)
    return next((r for r in roots if _contains(r, current.call_id)), None)


def _contains(node: TraceNode, call_id: str) -> bool:
    stack = [node]
    while stack:
        item = stack.pop()
        if item.call.call_id == call_id:
            return True
        stack.extend(item.children)
    return False


def _feedback(project: Project, call: Call) -> list[FeedbackView]:
    rows = list(
        Feedback.objects.filter(project=project, weave_ref=call_ref_uri(project.project_id, call.call_id)).order_by(
            "created_at", "id"
        )
    )
    prefix = f"{PREFIX}{project.project_id}/call/"
    scoring_ids = {r.call_ref.removeprefix(prefix) for r in rows if r.call_ref and r.call_ref.startswith(prefix)}
    scoring_calls = {c.call_id: c for c in Call.objects.filter(project=project, call_id__in=scoring_ids)}
    return [
        FeedbackView(
            feedback=row,
            scoring_call=scoring_calls.get(row.call_ref.removeprefix(prefix)) if row.call_ref else None,
        )
        for row in rows
    ]
