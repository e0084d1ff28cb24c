"""Python workflows: a class with steps, run by the engine's durable workflow runner.

::

    import orch
    from orch.workflow import Workflow, StepContext, step

    class Release(Workflow):
        \"\"\"Tag and announce a release.\"\"\"

        name = "release"
        inputs = ["version"]

        @step
        def tag(self, ctx: StepContext) -> str:
            return f"v{ctx.input['version']}"

        @step
        async def announce(self, ctx: StepContext) -> dict:
            return {"tag": ctx.outputs["tag"]}

    engine = orch.open(".")
    engine.workflows.register(Release)
    run = engine.sync.workflows.start("release", inputs={"version": "1.2"})

The steps run in the order they are defined, each once per run: its start and end (with its return
value, JSON data) are the run's ``StepStart`` and ``StepEnd`` events. A run whose process died is
resumed by another process that registered the same class (``engine.sync.workflows.resume(id)``): the
steps that ended are not run again (their outputs come from the log), the one that was running starts
over. A step that raises fails the run with the traceback; cancelling the run interrupts an ``async``
step. Steps may drive agents through the engine (``engine.command``, ``orch.adw.adw_agent_sdk``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Tuple, Type, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

_STEP = "__orch_step__"


def step(func: _F) -> _F:
    """Marks a method of a ``Workflow`` as one of its steps (in definition order)."""
    setattr(func, _STEP, True)
    return func


@dataclass(frozen=True)
class StepContext:
    """What a step gets: its name, the run's id, input and working dir, the outputs of the steps
    before it (by step name), and its attempt (2 and up when a dead process's run is resumed)."""

    step: str
    run_id: str
    input: Dict[str, Any]
    outputs: Dict[str, Any]
    working_dir: str
    attempt: int


class Workflow:
    """A workflow's steps: subclass it, set ``name`` (default: the class name in snake case) and
    ``inputs`` (the input keys a run requires), and mark methods with ``@step``. The docstring's first
    line is its description."""

    name: ClassVar[str] = ""
    inputs: ClassVar[List[str]] = []

    @classmethod
    def steps(cls) -> List[str]:
        """The step names, in definition order (a subclass's after its bases')."""
        names: List[str] = []
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if callable(value) and getattr(value, _STEP, False) and attr not in names:
                    names.append(attr)
        return names


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _describe(cls: Type[Workflow]) -> Tuple[str, str, List[str], List[str], Callable[[Dict[str, Any]], Any]]:
    """What the engine registers of ``cls``: name, description, steps, required inputs and the runner
    it calls once per step."""
    if not (isinstance(cls, type) and issubclass(cls, Workflow)):
        raise TypeError(f"register takes a subclass of orch.workflow.Workflow, not {cls!r}")
    name = cls.name or _snake(cls.__name__)
    doc = inspect.getdoc(cls) or ""
    description = doc.splitlines()[0] if doc else ""
    steps = cls.steps()
    if not steps:
        raise TypeError(f"workflow {cls.__name__} has no steps: mark its methods with @orch.workflow.step")

    def run_step(call: Dict[str, Any]) -> Any:
        ctx = StepContext(
            step=call["step"],
            run_id=call["run_id"],
            input=dict(call.get("input") or {}),
            outputs=dict(call.get("outputs") or {}),
            working_dir=call.get("working_dir", ""),
            attempt=int(call.get("attempt", 1)),
        )
        return getattr(cls(), ctx.step)(ctx)

    return name, description, steps, list(cls.inputs), run_step


__all__ = ["StepContext", "Workflow", "step"]
