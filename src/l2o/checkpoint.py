"""Checkpoints: tensors as safetensors, settings as JSON, written atomically; never pickle.

A checkpoint is one ``.safetensors`` file. Its header metadata holds a JSON document under the key
``"l2o"`` with the format name and version, the rule's settings (``rule.config()``) and free-form
information (what it was trained on, its measured results). Training runs also save their resumable
state in the same format. Files are written to a temporary name in the same folder and renamed over the
target, so a crash never leaves a half-written checkpoint.

Names: ``load_rule("quadratic")`` loads an optimizer shipped inside the package (see ``pretrained()``);
anything else is a path.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save
from torch import Tensor

FORMAT_VERSION = 1
PRETRAINED_DIR = Path(__file__).parent / "pretrained"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, truncated, or not one of ours."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``path`` so that it is always either its old content or the new one, never a mix: the data go
    to ``.NAME.*.tmp`` beside it, are flushed to disk, and replace ``path`` in one rename. A failure (a full
    or read-only disk) raises an OSError that names the file and says that the old one is intact."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        kept = "the previous file is left as it was" if path.exists() else "nothing was written"
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}; {kept}") from e
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Remove the temporary files that writes interrupted by a kill left in ``folder``; how many there were."""
    count = 0
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        count += 1
    return count


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def jsonable(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists), for comparing settings with saved ones."""
    return json.loads(json.dumps(obj))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def read_json(path: str | os.PathLike, what: str, key: str, hint: str) -> dict[str, Any]:
    """Read an l2o JSON file of kind ``what`` that must have ``key``; ``hint`` says how to make one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path} ({hint})")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(doc, dict) or key not in doc:
        raise ValueError(f"{path} is not an l2o {what} file (no '{key}' entry)")
    return doc


def save(path: str | os.PathLike, tensors: dict[str, Tensor], kind: str, meta: dict[str, Any]) -> None:
    """Write ``tensors`` and the JSON document ``meta`` (tagged with ``kind``) to ``path`` atomically."""
    doc = {"format": f"l2o.{kind}", "version": FORMAT_VERSION, **meta}
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(tensors, metadata={"l2o": json.dumps(doc)}))


def load(path: str | os.PathLike, kind: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save`; clear errors for anything else."""
    return _read(path, kind, with_tensors=True)


def read_document(path: str | os.PathLike, kind: str) -> dict[str, Any]:
    """A checkpoint's JSON document alone (its weights are not read); the same checks and errors as :func:`load`."""
    return _read(path, kind, with_tensors=False)[1]


def _read(path: str | os.PathLike, kind: str, with_tensors: bool) -> tuple[dict[str, Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()} if with_tensors else {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file (corrupt or truncated?): {e}") from e
    if "l2o" not in header:
        raise CheckpointError(f"{path} is a safetensors file but not an l2o checkpoint (no 'l2o' metadata)")
    try:
        doc = json.loads(header["l2o"])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: the l2o metadata is not valid JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("format") != f"l2o.{kind}":
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise CheckpointError(f"{path} holds {found!r}, expected an 'l2o.{kind}' checkpoint")
    if doc.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {doc.get('version')}, this l2o reads {FORMAT_VERSION}")
    return tensors, doc


def pretrained() -> dict[str, dict[str, Any]]:
    """The optimizers shipped with the package: name → their settings, training and measured results."""
    out = {}
    for file in sorted(PRETRAINED_DIR.glob("*.safetensors"), key=lambda p: p.stem):  # by name: mnist before mnist-gac
        _, doc = load(file, "rule")
        out[file.stem] = {"path": str(file), "rule": doc["rule"], **doc.get("info", {})}
    return out


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A shipped optimizer's name, or a path, to the checkpoint file."""
    candidate = PRETRAINED_DIR / f"{name_or_path}.safetensors"
    if isinstance(name_or_path, str) and os.sep not in name_or_path and candidate.is_file():
        return candidate
    path = Path(name_or_path)
    if path.is_dir() and (path / "best.safetensors").is_file():
        return path / "best.safetensors"
    if path.is_file():
        return path
    names = sorted(p.stem for p in PRETRAINED_DIR.glob("*.safetensors"))
    raise CheckpointError(
        f"no pretrained optimizer or checkpoint file named {str(name_or_path)!r}; "
        f"pretrained optimizers: {', '.join(names) or '(none)'}; or pass the path of a .safetensors "
        f"checkpoint (or a training run's folder)"
    )


def save_rule(path: str | os.PathLike, rule: torch.nn.Module, info: dict[str, Any] | None = None) -> None:
    """A rule's weights and settings, with ``info`` and the implementation that computed it (``implementation``)."""
    from l2o.rules.base import implementation_of

    info = {**(info or {}), "implementation": implementation_of(rule)}
    save(path, dict(rule.state_dict()), "rule", {"rule": rule.config(), "info": info})


def load_rule(name_or_path: str | os.PathLike, device: str | torch.device = "cpu", implementation: str = "auto",
              settings: dict[str, Any] | None = None):
    """Rebuild a learned rule with its weights from a shipped name or a checkpoint path, on ``device``,
    computed by ``implementation`` ("auto", "torch" or "fused"). ``settings``: changes to the rule's saved
    settings that keep its weights' shapes, e.g. ``{"memory": "window"}`` for an NTM-BFGS on a large model."""
    from l2o.rules import make_rule  # rules import nothing from here; keep the dependency one-way

    path = resolve(name_or_path)
    tensors, doc = load(path, "rule")
    if settings:
        unknown = sorted(set(settings) - set(doc["rule"]))
        if "name" in settings or unknown:
            raise CheckpointError(f"{path}: cannot change {sorted(settings)} of its rule; its settings are "
                                  f"{', '.join(k for k in doc['rule'] if k != 'name')}")
    try:
        rule = make_rule(**{**doc["rule"], **(settings or {})}, implementation=implementation)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot rebuild the rule from its settings {doc.get('rule')}: {e}") from e
    try:
        rule.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: the weights do not fit the rule's settings: {e}") from e
    return rule.to(device)
