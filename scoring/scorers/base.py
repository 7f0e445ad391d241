"""What every scorer is: built from a stored Weave object value, told which call inputs it
needs, and applied to one call's output."""

from typing import Any, ClassVar


class ScorerConfigError(ValueError):
    """The stored scorer object cannot be used (a permanent error)."""


class MissingArgument(ValueError):
    """A parameter of the scorer is not among the call's inputs (a permanent error)."""


class Scorer:
    """Base class: subclasses set `class_name` and `params`, and implement `score`."""

    class_name: ClassVar[str]
    # Parameters of `score` besides `output`, filled from the call's inputs by name.
    params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, val: dict):
        self.val = val
        column_map = val.get("column_map") or {}
        if not isinstance(column_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in column_map.items()
        ):
            raise ScorerConfigError("column_map must map scorer parameter names to input names")
        self.column_map: dict[str, str] = column_map

    @property
    def name(self) -> str:
        """The scorer's name as feedback types spell it (`wandb.runnable.<name>`)."""
        return self.val.get("name") or self.class_name

    def arguments(self, output: Any, inputs: dict) -> dict[str, Any]:
        """Map a call onto `score`'s parameters the Weave way: `output` is the call's output,
        the rest come from its inputs by name, renamed through `column_map`."""
        args = {"output": output}
        for param in self.params:
            key = self.column_map.get(param, param)
            if key not in inputs:
                available = ", ".join(sorted(map(str, inputs))) or "none"
                raise MissingArgument(
                    f"Scorer {self.name} needs argument {param!r} (input {key!r}); the call's inputs are: {available}"
                )
            args[param] = inputs[key]
        return args

    def score(self, **kwargs: Any) -> Any:
        raise NotImplementedError
