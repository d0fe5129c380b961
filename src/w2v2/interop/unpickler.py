"""Read fairseq checkpoints without fairseq or omegaconf, and without running pickled code.

A fairseq ``.pt`` file is a ``torch.save`` archive whose pickle holds, besides tensors, omegaconf
``DictConfig`` objects, enums, ``argparse.Namespace`` and numpy scalars. This module is passed to
``torch.load`` as its ``pickle_module``: its :class:`Unpickler` resolves only

* the tensor rebuild functions that ``torch.load(weights_only=True)`` allows, ``torch.Size``,
  ``torch.device`` and dtypes, plain containers (``collections.OrderedDict``, builtins), and
  ``argparse.Namespace``;
* any class of omegaconf, fairseq, hydra, numpy, typing or enum, which becomes an inert
  :class:`Standin` that records its constructor arguments and pickled state as plain data.

Every other global (``os.system``, ``builtins.eval``, ...) makes loading fail: nothing named in the
file is imported or called except the allowlisted functions above. :func:`plain` turns the loaded
tree into dicts, lists, strings, numbers and tensors.

(``torch.load(weights_only=True)`` with ``safe_globals`` would need every class name in advance, not
"any class of omegaconf", and cannot list the globals of a legacy-format file; hence the
``pickle_module``, which torch accepts only with ``weights_only=False``: the restriction is here.)
"""

from __future__ import annotations

import argparse
import builtins
import collections
import pickle
import sys
from pathlib import Path
from typing import Any

import torch

_TORCH = {
    "torch._utils": {"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                     "_rebuild_parameter_with_state"},
    "torch": {"Size", "device"},
    "_codecs": {"encode"},  # how protocol 2 writes bytes
}
_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str", "bytes", "bytearray",
             "bool", "slice"}
_PY2 = {"long": "int", "unicode": "str"}  # protocol-2 pickles written by Python 2 name these
_INERT = ("omegaconf", "fairseq", "fairseq_cli", "hydra", "numpy", "typing", "enum")


class UnsafeGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allowlist."""


class Standin:
    """Plain-data replacement for a class this reader will not import."""

    qualname = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Standin:
        obj = super().__new__(cls)
        obj.args, obj.state, obj.items = args, None, {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:  # items of a dict subclass
        self.items[key] = value

    def __repr__(self) -> str:
        return f"<{self.qualname} stand-in>"


_standins: dict[str, type[Standin]] = {}


def _standin(module: str, name: str) -> type[Standin]:
    qualname = f"{module}.{name}"
    if qualname not in _standins:
        _standins[qualname] = type(name, (Standin,), {"qualname": qualname})
    return _standins[qualname]


class Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in ("__builtin__", "builtins"):
            module, name = "builtins", _PY2.get(name, name)
            if name in _BUILTINS:
                return getattr(builtins, name)
        elif name in _TORCH.get(module, ()):
            return getattr(__import__(module, fromlist=[name]), name)
        elif module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        elif module == "collections" and name in ("OrderedDict", "defaultdict"):
            return getattr(collections, name)
        elif module == "argparse" and name == "Namespace":
            return argparse.Namespace
        elif module.split(".")[0] in _INERT:
            return _standin(module, name)
        raise UnsafeGlobal(f"refusing to load {module}.{name}: not part of a model checkpoint")


def load(file: Any, **kwargs: Any) -> Any:
    """``pickle.load`` through the restricted :class:`Unpickler` (torch calls it for the legacy format)."""
    return Unpickler(file, **kwargs).load()


def load_checkpoint(path: str | Path) -> Any:
    """``torch.load`` of ``path`` (zip or legacy format) on the CPU through the restricted unpickler."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        # weights_only=False is what allows a pickle_module; this module is the restriction
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=sys.modules[__name__])
    except UnsafeGlobal as e:
        raise ValueError(f"{path}: {e}") from e
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError,
            TypeError, IndexError) as e:
        raise ValueError(f"{path}: not a readable PyTorch checkpoint (truncated or another format): {e}") from e


def plain(obj: Any) -> Any:
    """Dicts, lists and scalars in place of stand-ins: an omegaconf config becomes its content, a
    config node its value, an enum its value, a Namespace its attributes; tensors are kept."""
    if isinstance(obj, Standin):
        state = obj.state
        if isinstance(state, dict) and "_content" in state:  # DictConfig / ListConfig
            return plain(state["_content"])
        if isinstance(state, dict) and "_val" in state:  # omegaconf value node
            return plain(state["_val"])
        if state is not None:
            return plain(state)
        if obj.items:
            return plain(obj.items)
        return plain(obj.args[0]) if len(obj.args) == 1 else [plain(a) for a in obj.args]
    if isinstance(obj, argparse.Namespace):
        return {k: plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(plain(v) for v in obj)
    return obj
