"""Save and load LeNet checkpoints, pruned or not; the shipped pretrained weights.

Introduced in notebooks/05_saving_and_loading.ipynb (pretrained() in 01_load_lenet).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import secrets
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn
from torch.nn.utils import prune

from .device import get_device
from .inspection import _pruning_hooks, _refuse_int8
from .model import LeNet, _require_model

#: The trained weights shipped with the course (made by ``python -m lenet.train --replace-shipped``).
PRETRAINED_PATH = Path(__file__).with_name("weights") / "lenet_mnist.pt"
#: Their SHA-256, in the format of ``sha256sum`` (so ``sha256sum -c`` checks it too).
PRETRAINED_SHA256_PATH = PRETRAINED_PATH.with_name(PRETRAINED_PATH.name + ".sha256")

#: How a checkpoint of PyTorch < 1.6 starts (pickle protocol 2, then torch's magic number).
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be loaded: missing, corrupt, truncated or of another model."""


def _replace_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    A kill, a full disk or a failing ``write`` leaves ``path`` as it was and no temporary file.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # e.g. a read-only folder, where the file was never made: the first error is the one to report
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX; Windows has no directory fsync)
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_state_dict(state: nn.Module | Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """``torch.save`` a state_dict (or a model's) so that ``path`` is never left half-written.

    The file is written next to ``path`` under a temporary name, flushed to disk and then renamed
    over ``path`` (``os.replace``): after a crash, a kill or an error while pickling, ``path`` holds
    either the complete new checkpoint or the old file, untouched. Used by ``python -m lenet.train``.

    Returns:
        ``path``, as a ``Path``.
    Raises:
        TypeError: ``state`` is neither a module nor a dict.
        IsADirectoryError / FileNotFoundError: ``path`` is a folder, or its folder does not exist.
    """
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, Mapping):
        raise TypeError(f"save_state_dict expects a model or its state_dict(), got {type(state).__name__}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; name a file inside it, such as {path / 'lenet_mnist.pt'}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save {path}: the folder {path.parent} does not exist")
    _replace_atomically(path, lambda f: torch.save(state, f))
    return path


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (what ``sha256sum`` prints)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_archive(path: Path) -> None:
    """Refuse a file that is not a complete, undamaged torch zip archive (legacy files pass unchecked)."""
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC))
    if head.startswith(_LEGACY_MAGIC):
        return  # PyTorch < 1.6 format: torch.load still reads it, but it carries no checksums
    if not head.startswith(b"PK\x03\x04"):  # torch.save writes a zip archive (since PyTorch 1.6)
        raise CheckpointError(f"{path}: not a torch checkpoint: torch.save writes a zip archive, and this file "
                              f"starts with {head[:4]!r}: damaged at the start, or another format")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every record and compares its CRC-32
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint: not a complete zip archive ({exc}); the file was "
                              "probably cut off (an interrupted save, copy or download, or a full disk): "
                              "save or copy it again") from None
    if bad is not None:
        raise CheckpointError(f"{path}: damaged checkpoint: the record {bad!r} fails its CRC-32 check, so its bytes "
                              "changed after torch.save wrote them (a bad copy or disk): save or copy it again")


def _refusal(path: Path, exc: Exception) -> str:
    """Explain a ``weights_only=True`` refusal without advising ``weights_only=False``."""
    text = _ANSI.sub("", str(exc))
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    what = f"the object {found.group(1)}" if found else "an object that is not a tensor, dict, list or number"
    return (f"{path}: torch.load(weights_only=True) refused it: besides tensors it holds {what}, and "
            "unpickling that could run code from the file. It is probably a whole model saved with "
            "torch.save(model), or holds your own classes. Save model.state_dict() instead. To read a file you "
            "made yourself, allow exactly the classes it names: with torch.serialization.safe_globals([...]): "
            "torch.load(path, weights_only=True).")


def _not_a_state_dict(path: Path, obj: object) -> str:
    if not isinstance(obj, dict):
        return f"{path}: holds a {type(obj).__name__}, not a state_dict (a dict of tensors)"
    nested = [k for k, v in obj.items() if isinstance(v, dict) and v and all(isinstance(t, torch.Tensor) for t in v.values())]
    if nested:
        key = nested[0]
        return (f"{path}: holds a dict with keys {sorted(map(str, obj))[:6]}, and its state_dict is under {key!r} "
                f"(a training checkpoint?); load that part: sd = torch.load(path, weights_only=True)[{key!r}], then "
                "lenet.restore_pruning(model, sd) and model.load_state_dict(sd)")
    others = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
    return f"{path}: holds a dict, but not a state_dict: the entries {others[:6]} are not tensors"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)`` after checking the file, with one clear error per way it fails.

    The zip archive that ``torch.save`` writes carries a CRC-32 for every record: a damaged byte
    anywhere in the file is caught here instead of loading as NaN weights. Checkpoints in the
    legacy format (PyTorch < 1.6, no checksums) are read as they are.

    Raises:
        CheckpointError: a missing file or a folder, a damaged or truncated file, a file that
            ``weights_only=True`` refuses, or one that is not a state_dict; the message names the file.
    """
    if not isinstance(path, (str, os.PathLike)):
        hint = " (the path comes first, then the model: load_pruned(path, model))" if isinstance(path, nn.Module) else ""
        raise TypeError(f"expected the path of a checkpoint file, got {type(path).__name__}{hint}")
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file; pass the path of the .pt/.pth file in it")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    _check_archive(path)
    try:
        with warnings.catch_warnings():  # torch's own loader of int8 (quantized) tensors uses the deprecated class
            warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise CheckpointError(_refusal(path, exc)) from None
        raise CheckpointError(f"{path}: not a readable torch checkpoint (corrupt or truncated file?): {_first_line(exc)}") from exc
    except Exception as exc:  # torch.load raises many types on bad bytes (IndexError, RuntimeError, ...)
        raise CheckpointError(f"{path}: not a readable torch checkpoint (corrupt or truncated file?): {_first_line(exc)}") from exc
    if isinstance(obj, dict):
        packed = [str(k) for k in obj if str(k).endswith("._packed_params._packed_params")]
        if packed:
            raise CheckpointError(
                f"{path}: holds the state_dict of an int8 (quantize_dynamic) model (keys such as {packed[0]!r}), which "
                "a float LeNet cannot load. Load it into a model quantized the same way: model = "
                "lenet.quantize_int8(lenet.SlimLeNet(*widths)) with the widths it was saved with (LeNet's are "
                "(6, 16, 120, 84)), then model.load_state_dict(torch.load(path, weights_only=True))")
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(_not_a_state_dict(path, obj))
    return obj


def _first_line(exc: Exception) -> str:
    text = _ANSI.sub("", str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def restore_pruning(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Re-create the pruning reparametrization that ``state_dict`` describes, in place.

    For every ``<module>.<name>_mask`` key it calls ``prune.identity(module, name)``, which
    registers ``<name>_orig``, a ``<name>_mask`` buffer and the forward-pre-hook, so that
    ``model.load_state_dict(state_dict)`` then finds every key it expects.

    Raises:
        TypeError: ``state_dict`` is not a dict (a file name? use :func:`load_pruned`).
        KeyError: a mask names a parameter the model does not have.
    """
    _require_model(model, "restore_pruning", ", state_dict")
    if not isinstance(state_dict, Mapping):
        hint = f"; to load a file, use lenet.load_pruned({str(state_dict)!r}, model)" if isinstance(state_dict, (str, os.PathLike)) else ""
        raise TypeError(f"restore_pruning expects a state_dict (a dict of tensors), got {type(state_dict).__name__}{hint}")
    modules = dict(model.named_modules())
    for key in state_dict:
        if not key.endswith("_mask"):
            continue
        module_name, _, param = key[: -len("_mask")].rpartition(".")
        module = modules.get(module_name)
        if module is None or not hasattr(module, param):
            raise KeyError(f"checkpoint key {key!r} names {module_name}.{param}, which this model does not have")
        if not prune.is_pruned(module) or f"{param}_mask" not in dict(module.named_buffers(recurse=False)):
            prune.identity(module, param)
    return model


def _pruned_tensors(model: nn.Module) -> set[tuple[str, str]]:
    return {(name, tensor) for name, _, tensor in _pruning_hooks(model)}


def load_pruned(path: str | Path, model: nn.Module | None = None, device: str | torch.device | None = None) -> nn.Module:
    """Load a checkpoint saved with or without pruning into ``model`` (a fresh LeNet by default).

    The pruning reparametrization is restored first (see :func:`restore_pruning`), so the masks
    come back exactly. Always loads with ``weights_only=True``, after checking the file's checksums.
    If loading fails, ``model`` is left exactly as it was (no mask or hook added, no weight changed).

    Raises:
        TypeError: ``model`` is a class (``LeNet`` instead of ``LeNet()``), not a module, or an int8 model.
        RuntimeError / ValueError: ``device`` is unknown or not on this machine (checked before anything is loaded).
        CheckpointError: missing, damaged or truncated file, a checkpoint of another architecture, or of an
            int8 model.
    """
    if isinstance(model, type):
        raise TypeError(f"load_pruned needs a model, got the class {model.__name__} itself: write "
                        f"load_pruned(path, {model.__name__}()), or leave model out for a fresh LeNet")
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"load_pruned needs an nn.Module as model, got {type(model).__name__}")
    if model is not None:
        _refuse_int8(model, "load_pruned needs a float model",
                    "pass a float model (lenet.LeNet(), lenet.SlimLeNet(*widths)); an int8 checkpoint loads with "
                    "model.load_state_dict(torch.load(path, weights_only=True)) into a model quantized the same way")
    target = get_device(device)  # before anything is loaded: an unavailable device leaves the model untouched
    state = read_state_dict(path)
    model = model if model is not None else LeNet()
    pruned_before = _pruned_tensors(model)
    values_before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    order_before = {name: list(m._parameters) for name, m in model.named_modules()}
    try:
        restore_pruning(model, state)
        model.load_state_dict(state)
    except (KeyError, RuntimeError) as exc:
        modules = dict(model.named_modules())
        for module_name, name in _pruned_tensors(model) - pruned_before:
            module = modules[module_name]
            prune.remove(module, name)  # undo the prune.identity of restore_pruning...
            params = dict(module._parameters)  # ...and put the parameter back in its place
            module._parameters.clear()
            module._parameters.update((k, params[k]) for k in order_before[module_name])
        model.load_state_dict(values_before)  # load_state_dict copies the keys that fit before it raises
        raise CheckpointError(f"{path}: does not fit {type(model).__name__}: {exc}") from exc
    model = model.to(target).eval()
    refresh_pruned(model)
    return model


def refresh_pruned(model: nn.Module) -> None:
    """Recompute every pruned attribute (``weight = weight_orig * weight_mask``) now.

    ``load_state_dict`` copies new values into ``weight_orig`` and ``weight_mask`` but the
    ``weight`` attribute is only recomputed by the forward-pre-hook, at the next forward.
    Calling the hooks by hand makes ``module.weight`` right at once.
    """
    _require_model(model, "refresh_pruned")
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                hook(module, None)


def _check_shipped_weights() -> None:
    """Refuse shipped weights whose SHA-256 differs from the one recorded beside them."""
    restore = ("restore them with `git checkout -- lenet/weights/` (or reinstall the course); if you retrained "
               "them on purpose, `python -m lenet.train --replace-shipped` records their new SHA-256")
    if not PRETRAINED_PATH.is_file() or not PRETRAINED_SHA256_PATH.is_file():
        missing = PRETRAINED_PATH if not PRETRAINED_PATH.is_file() else PRETRAINED_SHA256_PATH
        raise CheckpointError(f"{missing}: the shipped file is missing; {restore}")
    record = re.match(rb"([0-9a-fA-F]{64})\s", PRETRAINED_SHA256_PATH.read_bytes())
    if record is None:  # empty, binary or overwritten: not what sha256sum writes
        raise CheckpointError(f"{PRETRAINED_SHA256_PATH}: the SHA-256 record of the shipped weights is damaged (it "
                              f"should be one line, '<64 hex digits>  {PRETRAINED_PATH.name}', as sha256sum writes); "
                              f"{restore}")
    expected = record.group(1).decode("ascii").lower()
    actual = sha256_of(PRETRAINED_PATH)
    if actual != expected:
        raise CheckpointError(f"{PRETRAINED_PATH}: the shipped weights were changed or damaged (SHA-256 "
                              f"{actual[:16]}..., but {PRETRAINED_SHA256_PATH.name} records {expected[:16]}...); {restore}")


def pretrained(device: str | torch.device | None = None) -> LeNet:
    """The course's trained LeNet (≈97% on the 1,000 held-out test images), in eval mode.

    Loaded offline from the weights shipped inside the package, with ``weights_only=True``,
    after checking their SHA-256 against ``lenet_mnist.pt.sha256``.
    Introduced in notebooks/01_load_lenet.ipynb.

    Raises:
        CheckpointError: the shipped file is missing, damaged or was overwritten.
    """
    _check_shipped_weights()
    model = load_pruned(PRETRAINED_PATH, LeNet(), device)
    assert isinstance(model, LeNet)
    return model
