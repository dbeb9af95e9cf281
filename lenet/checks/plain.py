"""Plain data: what a check's ``collect`` hands to its ``judge``, possibly from another process.

:func:`plain` turns whatever the learner's code returned into data that ``torch.load(weights_only=True)``
accepts: tensors (detached, on the CPU, of class ``torch.Tensor`` whatever subclass they came as), Python
numbers, strings, bytes, None, dtypes and devices, and lists, tuples, dicts and sets of them. Anything else
becomes an :class:`Opaque` marker ("a Foo"), so an object that claims to equal everything never reaches the
judge. An exception becomes a :class:`Raised` (an :class:`Uncaught` when ``collect`` itself raised). :func:`transfer` is the round trip a grader makes (through a
file), done in memory: a notebook's check cell uses it, so a check behaves the same in both places.

Introduced in solutions/01_load_lenet.ipynb (its checks are the worked example, docs/authoring.md).
"""
from __future__ import annotations

import io
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

#: Containers nested deeper than this are cut (an Opaque marker).
MAX_DEPTH = 12
#: Longest repr of an opaque object kept for a hint.
MAX_TEXT = 80
#: The key that marks an Opaque, a Raised or an Ellipsis on the way between processes.
MARK = "__course__"


@dataclass(frozen=True)
class Opaque:
    """A value that was not plain data: its type's name and a short repr, for the hint."""

    type: str
    text: str = ""

    def __str__(self) -> str:
        return f"a {self.type}" + (f" ({self.text})" if self.text else "")


@dataclass(frozen=True)
class Raised:
    """An exception raised by the learner's code: its type's name and message."""

    type: str
    message: str

    @classmethod
    def of(cls, error: BaseException) -> Raised:
        return cls(type(error).__name__, _safe_str(error))

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


class Uncaught(Raised):
    """What ``Check.collect_all`` records when ``collect`` itself raised (not a :class:`Raised` it returned):
    the grader reports it as the learner's error, where a notebook would have shown the traceback."""


def _safe_str(value: object, limit: int = 2000) -> str:
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a learner's object may refuse
        text = "?"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _opaque(value: object) -> dict[str, str]:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a learner's object may refuse
        text = ""
    text = " ".join(text.split())
    return {MARK: "opaque", "type": type(value).__name__,
            "text": text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."}


def _tensor(value: torch.Tensor) -> torch.Tensor | dict[str, str]:
    with torch._C.DisableTorchFunctionSubclass():  # a learner's subclass cannot intercept the copy
        t = torch.Tensor.detach(value)
        if t.device.type == "meta":
            return {MARK: "opaque", "type": "Tensor", "text": f"on the meta device, shape {tuple(t.shape)}"}
        if t.is_quantized:
            return {MARK: "opaque", "type": "Tensor", "text": f"quantized ({t.dtype}): collect t.int_repr()"}
        return t.cpu().clone().as_subclass(torch.Tensor)


def plain(value: Any, _depth: int = 0) -> Any:
    """``value`` as plain data (see the module docstring); never calls the learner's methods except ``repr``."""
    if _depth > MAX_DEPTH:
        return {MARK: "opaque", "type": type(value).__name__, "text": "nested too deep"}
    if value is None or isinstance(value, (torch.dtype, torch.device)):
        return value
    if value is Ellipsis:
        return {MARK: "ellipsis"}
    if isinstance(value, Raised):
        return {MARK: "uncaught" if isinstance(value, Uncaught) else "raised", "type": value.type,
                "message": value.message}
    if isinstance(value, Opaque):
        return {MARK: "opaque", "type": value.type, "text": value.text}
    if isinstance(value, bool):
        return bool(value)
    # a subclass becomes the exact type, read through the base type's own slot (its __eq__, __int__, ... are gone)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, complex):
        return complex(float.__float__(value.real), float.__float__(value.imag))
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(memoryview(value))
    if isinstance(value, torch.Tensor):
        return _tensor(value)
    if isinstance(value, torch.Size):
        return tuple(int(n) for n in value)
    if type(value).__module__ == "numpy":
        import numpy as np

        if isinstance(value, np.generic):
            return plain(value.item(), _depth + 1)
        if isinstance(value, np.ndarray) and value.dtype != object:
            return torch.from_numpy(np.array(value))
        return _opaque(value)
    if isinstance(value, list):
        return [plain(v, _depth + 1) for v in list.__iter__(value)]
    if isinstance(value, tuple):  # a namedtuple too
        return tuple(plain(v, _depth + 1) for v in tuple.__iter__(value))
    if isinstance(value, (set, frozenset)):
        return {item for item in (plain(v, _depth + 1) for v in value) if _hashable(item)}
    if isinstance(value, Mapping):
        pairs = list(dict.items(value)) if isinstance(value, dict) else [(k, value[k]) for k in list(value)]
        out = {}
        for key, item in pairs:
            k = plain(key, _depth + 1)
            if _hashable(k):
                out[k] = plain(item, _depth + 1)
        return out
    return _opaque(value)


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def decode(value: Any) -> Any:
    """The markers written by :func:`plain` turned back into :class:`Opaque`, :class:`Raised` and ``...``."""
    if isinstance(value, dict):
        mark = value.get(MARK)
        if mark == "ellipsis":
            return Ellipsis
        if mark == "opaque":
            return Opaque(str(value.get("type", "?")), str(value.get("text", "")))
        if mark in ("raised", "uncaught"):
            return (Uncaught if mark == "uncaught" else Raised)(str(value.get("type", "?")),
                                                                 str(value.get("message", "")))
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, tuple):
        return tuple(decode(v) for v in value)
    return value


def transfer(value: Any) -> Any:
    """``value`` after the trip a grader makes it take between processes: plain, saved, loaded, decoded."""
    buffer = io.BytesIO()
    torch.save(plain(value), buffer)
    buffer.seek(0)
    return decode(torch.load(buffer, weights_only=True))


def save(value: Any, path: str | Path) -> None:
    """Write ``plain(value)`` to ``path`` (in the learner's kernel, for the grader to :func:`load`)."""
    torch.save(plain(value), path)


def load(path: str | Path, max_bytes: int) -> Any:
    """Read what :func:`save` wrote, refusing anything but a regular file of at most ``max_bytes`` (never a
    symlink or a FIFO a learner put in its place); only plain data is accepted (``weights_only=True``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{Path(path).name} is not a regular file")
        if info.st_size > max_bytes:
            raise ValueError(f"{Path(path).name} holds {info.st_size:,} bytes, more than {max_bytes:,}")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(fd)
    return decode(torch.load(io.BytesIO(data), weights_only=True))
