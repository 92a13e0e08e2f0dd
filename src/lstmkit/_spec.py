"""``name:key=value,key=value`` — how the command line names a layer or a task with options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lstmkit._errors import LstmkitValueError


@dataclass(frozen=True)
class Spec:
    """A name with keyword options, written ``name`` or ``name:key=value,key=value``.

    Values are read as bool (``true``/``false``), None (``none``), int, float, else str:
    ``lstm:variant=NIG,forget_bias=5`` is ``Spec("lstm", {"variant": "NIG", "forget_bias": 5})``.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def parse(text: str) -> Spec:
        name, _, rest = text.partition(":")
        if not name.strip():
            raise LstmkitValueError(f"expected a name before ':' in {text!r}")
        options = {}
        if rest:
            for item in rest.split(","):
                key, eq, value = item.partition("=")
                if not eq or not key.strip():
                    raise LstmkitValueError(f"expected key=value in {text!r}, got {item!r}")
                options[key.strip()] = parse_value(value.strip())
        return Spec(name.strip(), options)

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return self.name + ":" + ",".join(f"{k}={format_value(v)}" for k, v in self.options.items())


def parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def format_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) or value is None else str(value)
