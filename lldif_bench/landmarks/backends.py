"""The landmark-backend registry and the contract every backend meets.

A backend turns a list of uint8 ``(H, W, C)`` images into 68 iBUG-ordered points per image, batched:
``detect(images, whole_crop, keys=None) -> (points (N, 68, 2) float32, confidence (N,), status)``.
Points are pixel ``(x, y)`` of the image as given. ``status`` per image is ``detected`` (a face
detector found the face), ``whole-crop`` (the crop itself was the face box), ``ground-truth``, or
``missed`` (points NaN, confidence 0; :mod:`.fallback` fills those in).

Backends are registered as factories ``factory(*, device, whole_crop, search_dirs) -> Backend``;
``factory.availability(whole_crop)`` says, offline and in milliseconds, whether it can run here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from lldif_bench.errors import UserError
from lldif_bench.registry import Registry

log = logging.getLogger(__name__)


class Backend(Protocol):
    name: str

    def detect(self, images: list[np.ndarray], whole_crop: bool,
               keys: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        ...


class BackendFactory(Protocol):
    def __call__(self, *, device: str = "auto", whole_crop: bool = False,
                 search_dirs: Sequence[Path] = ()) -> Backend:
        ...

    def availability(self, whole_crop: bool = False) -> tuple[bool, str]:
        ...


BACKENDS: Registry[BackendFactory] = Registry("landmark backend")

# Order in which ``auto`` tries the real detectors (the design card's choice first).
AUTO_ORDER = ("face-alignment", "dlib")


@dataclass
class Resolved:
    """The backend actually built, and why (``auto`` records each candidate it skipped)."""

    backend: Backend
    requested: str
    used: str
    notes: list[str] = field(default_factory=list)


def empty_result(n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """All-missed arrays for ``n`` images, for backends to fill in."""
    return (np.full((n, 68, 2), np.nan, dtype=np.float32), np.zeros(n, dtype=np.float32), ["missed"] * n)


def build_backend(name: str, *, device: str = "auto", whole_crop: bool = False,
                  search_dirs: Sequence[Path] = ()) -> Resolved:
    """Build backend ``name`` (or the first available one for ``auto``).

    An unavailable named backend raises :class:`UserError` from its constructor, before any model
    is loaded, so a missing weight file fails in milliseconds rather than on a network timeout.
    """
    if name == "auto":
        notes = []
        for candidate in AUTO_ORDER:
            ok, why = BACKENDS.get(candidate).availability(whole_crop)
            if ok:
                notes.append(f"auto: using {candidate} ({why})")
                log.info(notes[-1])
                backend = BACKENDS.get(candidate)(device=device, whole_crop=whole_crop, search_dirs=search_dirs)
                return Resolved(backend, "auto", candidate, notes)
            notes.append(f"auto: skipped {candidate}: {why}")
            log.warning(notes[-1])
        raise UserError("--landmarks auto found no usable landmark backend:\n  " + "\n  ".join(notes))
    factory: BackendFactory = BACKENDS.get(name)
    # Each backend's constructor checks its own files first and raises a UserError that says what
    # is missing, where it comes from and where it goes, before loading any model.
    return Resolved(factory(device=device, whole_crop=whole_crop, search_dirs=search_dirs), name, name)


def backend_factory(cls: type, availability: Callable[[bool], tuple[bool, str]]) -> BackendFactory:
    """Wrap a backend class as a registry factory with its availability check attached."""

    def factory(*, device: str = "auto", whole_crop: bool = False, search_dirs: Sequence[Path] = ()):
        return cls(device=device, whole_crop=whole_crop, search_dirs=search_dirs)

    factory.availability = availability  # type: ignore[attr-defined]
    factory.__doc__ = cls.__doc__
    return factory  # type: ignore[return-value]


def _auto_availability(whole_crop: bool = False) -> tuple[bool, str]:
    reasons = []
    for candidate in AUTO_ORDER:
        ok, why = BACKENDS.get(candidate).availability(whole_crop)
        if ok:
            return True, f"would use {candidate}"
        reasons.append(f"{candidate}: {why}")
    return False, "; ".join(reasons)


def _auto_factory(*, device: str = "auto", whole_crop: bool = False, search_dirs: Sequence[Path] = ()):
    return build_backend("auto", device=device, whole_crop=whole_crop, search_dirs=search_dirs).backend


_auto_factory.availability = _auto_availability  # type: ignore[attr-defined]
BACKENDS.add("auto", _auto_factory, help="first available of face-alignment, then dlib")
