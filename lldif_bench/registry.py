"""One small registry used everywhere: dataset adapters, presets, landmark backends, methods.

Register by decorator, build by name; an unknown name is a clear error that lists what exists.

>>> METHODS = Registry("method")
>>> @METHODS.register("resnet18", help="plain cross-entropy")
... def build_resnet18(**kw): ...
>>> METHODS.get("resnet18")            # doctest: +ELLIPSIS
<function build_resnet18 ...>
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """Raised for an unknown or duplicate registry name; its message says what exists."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    help: str


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj, help)
            return obj

        return decorator

    def add(self, name: str, obj: T, help: str = "") -> None:
        if name in self._entries:
            raise RegistryError(f"{self.kind} {name!r} is registered twice")
        doc = help or (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
        self._entries[name] = Entry(name, obj, doc if isinstance(doc, str) else (doc[0] if doc else ""))

    def get(self, name: str) -> T:
        try:
            return self._entries[name].obj
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.names()) or '(none)'}"
            ) from None

    def help(self, name: str) -> str:
        self.get(name)
        return self._entries[name].help

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
