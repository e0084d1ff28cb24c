"""Generates orch-py/python/orch/events.py, a Python class per event type, from the Rust wire type
(`pub enum Event` in orch-core/src/wire/event.rs): its variants, their fields and doc comments.

    python orch-py/scripts/gen_events.py            # rewrites python/orch/events.py
    python orch-py/scripts/gen_events.py --check    # exit 1 when the file is out of date

The enum is rustfmt-formatted: variants at 4 spaces (`Name {`, `Name {},`), fields at 8 (`name: Type,`),
each after its `///` docs and `#[...]` attributes. A `#[serde(skip)]` variant (the catch-all for
unknown types) gets no class: `UnknownEvent` stands for every type this package does not know.
"""

from __future__ import annotations

import pathlib
import re
import sys
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

PACKAGE = pathlib.Path(__file__).resolve().parent.parent
WIRE = PACKAGE.parent / "orch-core" / "src" / "wire" / "event.rs"
OUT = PACKAGE / "python" / "orch" / "events.py"

# Rust types as Python annotations, and the default a field takes when the payload leaves it out.
SCALARS = {
    "String": ("str", '""'),
    "bool": ("bool", "False"),
    "f64": ("float", "0.0"),
    "u32": ("int", "0"),
    "u64": ("int", "0"),
    "usize": ("int", "0"),
    "i64": ("int", "0"),
    "Id": ("str", '""'),
    "Value": ("Any", "None"),
}
# Enums serialized as their names (snake_case or upper case strings).
STRING_ENUMS = {
    "AgentStatus",
    "ApprovalDecision",
    "CompactTrigger",
    "EndReason",
    "HookVerdict",
    "LogLevel",
    "StepStatus",
}


@dataclass
class Field:
    name: str
    rust: str
    doc: str


@dataclass
class Variant:
    name: str
    doc: str
    fields: List[Field] = field(default_factory=list)


def python_type(rust: str) -> Tuple[str, str]:
    """The annotation and the default expression of a Rust field type."""
    rust = rust.strip()
    inner = re.fullmatch(r"(Option|Vec|Box)<(.+)>", rust)
    if inner:
        wrapper, arg = inner.groups()
        annotation, default = python_type(arg)
        if wrapper == "Option":
            return f"Optional[{annotation}]", "None"
        if wrapper == "Vec":
            return f"List[{annotation}]", "field(default_factory=list)"
        return annotation, default
    if rust in SCALARS:
        return SCALARS[rust]
    if rust in STRING_ENUMS:
        return "str", '""'
    # A record (Agent, Usage, WorkflowRecord, …): its JSON object.
    return "Dict[str, Any]", "field(default_factory=dict)"


def parse(source: str) -> List[Variant]:
    """The variants of `pub enum Event` with their fields and docs."""
    start = source.index("pub enum Event {")
    end = source.index("\n}\n", start)
    variants: List[Variant] = []
    docs: List[str] = []
    skip = False
    current: Optional[Variant] = None
    for line in source[start:end].splitlines()[1:]:
        text = line.strip()
        if text.startswith("///"):
            docs.append(text[3:].strip())
            continue
        if text.startswith("#["):
            skip = skip or text == "#[serde(skip)]"
            continue
        if not text or text.startswith("//"):
            docs = []
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 4:
            m = re.fullmatch(r"(\w+) \{(\},)?", text)
            if m and not skip:
                current = Variant(m.group(1), " ".join(docs))
                variants.append(current)
            elif not m:
                current = None  # a tuple variant (the catch-all)
            skip = False
        elif indent == 8 and current is not None:
            m = re.fullmatch(r"(\w+): (.+),", text)
            if m:
                current.fields.append(Field(m.group(1), m.group(2), " ".join(docs)))
        docs = []
    return variants


HEAD = '''"""A Python class per event type of the log, generated from the Rust wire type (`pub enum Event` in
orch-core/src/wire/event.rs) by orch-py/scripts/gen_events.py: do not edit by hand.

``event.typed()`` (or ``typed(event)``) gives an event as its class: the record's fields (``seq``,
``type``, ``ts``, ``agent_id``, …, ``payload``) and the type's own, typed::

    for ev in engine.sync.events():
        match ev.typed():
            case orch.events.ToolUse(tool_name=name, tool_input=args):
                print(name, args)
            case orch.events.UnknownEvent(type=kind):   # written by a newer orch
                print("unknown", kind)

A type this package does not know (written by a newer orch) comes through as an ``UnknownEvent``,
its fields in ``payload``. A type's field named like one of the record's is the attribute with a
trailing ``_`` (``StepEnd.payload_``, ``Compacted.summary_``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional, Type

if TYPE_CHECKING:
    from ._orch import Event


@dataclass(frozen=True)
class TypedEvent:
    """An event of the log as a class: the record's fields; a subclass per type adds the type's own."""

    TYPE: ClassVar[str] = ""
    FIELDS: ClassVar[Dict[str, str]] = {}
    """The type's own fields: attribute name → payload key."""

    seq: int
    type: str
    category: str
    agent_id: Optional[str]
    orchestrator_id: Optional[str]
    workflow_id: Optional[str]
    step: Optional[str]
    task_slug: Optional[str]
    ts: datetime.datetime
    summary: str
    payload: Dict[str, Any]


@dataclass(frozen=True)
class UnknownEvent(TypedEvent):
    """An event of a type this package does not know (written by a newer orch): its fields are in
    ``payload``."""
'''

TAIL = '''

CLASSES: Dict[str, Type[TypedEvent]] = {{
{entries}
}}
"""The class of each event type this package knows."""


def typed(event: Event) -> TypedEvent:
    """``event`` as the class of its type (``UnknownEvent`` for a type this package does not know)."""
    cls = CLASSES.get(event.type, UnknownEvent)
    payload = event.payload
    own = {{attr: payload[key] for attr, key in cls.FIELDS.items() if key in payload}}
    return cls(
        seq=event.seq,
        type=event.type,
        category=event.category,
        agent_id=event.agent_id,
        orchestrator_id=event.orchestrator_id,
        workflow_id=event.workflow_id,
        step=event.step,
        task_slug=event.task_slug,
        ts=event.ts,
        summary=event.summary,
        payload=payload,
        **own,
    )


__all__ = [
{names}
]
'''


# The record's own fields: a type's field of the same name is the attribute NAME_ (`StepEnd.payload_`,
# `Compacted.summary_`).
RECORD_FIELDS = {"seq", "type", "category", "agent_id", "orchestrator_id", "workflow_id", "step", "task_slug", "ts"}
RECORD_FIELDS |= {"summary", "payload"}


def docstring(text: str) -> str:
    """``text`` as the body of a triple-quoted docstring."""
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return text + " " if text.endswith('"') else text


def render(variants: List[Variant]) -> str:
    out = [HEAD]
    for v in variants:
        out.append("\n\n@dataclass(frozen=True)")
        out.append(f"\nclass {v.name}(TypedEvent):")
        out.append(f'\n    """{docstring(v.doc or f"A `{v.name}` event.")}"""\n')
        out.append(f'\n    TYPE: ClassVar[str] = "{v.name}"')
        attrs = [(f.name + "_" if f.name in RECORD_FIELDS else f.name, f) for f in v.fields]
        pairs = ", ".join(f'"{a}": "{f.name}"' for a, f in attrs)
        out.append(f"\n    FIELDS: ClassVar[Dict[str, str]] = {{{pairs}}}")
        for attr, f in attrs:
            annotation, default = python_type(f.rust)
            out.append(f"\n    {attr}: {annotation} = {default}")
            if f.doc:
                out.append(f'\n    """{docstring(f.doc)}"""')
        out.append("\n")
    entries = "\n".join(f'    "{v.name}": {v.name},' for v in variants)
    names = "\n".join(f'    "{n}",' for n in ["CLASSES", "TypedEvent", "UnknownEvent", "typed"] + [v.name for v in variants])
    out.append(TAIL.format(entries=entries, names=names))
    return "".join(out)


def main() -> int:
    text = render(parse(WIRE.read_text()))
    if "--check" in sys.argv[1:]:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python {pathlib.Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
