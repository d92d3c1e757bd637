"""The shipped weights: `weights/manifest.json`, sha256 checks and pickle-free loading.

The manifest is the single source of truth for what a named model is: its task, input
domain, architecture and arguments, file and sha256, how it was trained and what it scores.
Weight files are loaded with `torch.load(weights_only=True)`, which refuses pickled code,
and only after their sha256 matches the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST = "manifest.json"


class WeightsError(ValueError):
    """A missing, corrupt or unknown weight file, or a broken manifest."""


@dataclass
class Entry:
    name: str
    task: str
    domain: str
    arch: str
    args: dict
    file: str
    sha256: str
    parameters: int
    training: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)


def weights_dir(override=None) -> Path:
    """`ISPCLI_WEIGHTS`, else the wheel's copy (`ispcli/_weights`), else the checkout's `weights/`."""
    if override is not None:
        return Path(override)
    if os.environ.get("ISPCLI_WEIGHTS"):
        return Path(os.environ["ISPCLI_WEIGHTS"])
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_weights", package.parent / "weights"):
        if (candidate / MANIFEST).is_file():
            return candidate
    return package.parent / "weights"


def read_manifest(directory=None) -> dict[str, Entry]:
    path = weights_dir(directory) / MANIFEST
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {item["name"]: Entry(**item) for item in raw["models"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"{path}: broken weights manifest ({exc})") from None


def names(task: str | None = None, directory=None) -> list[str]:
    return sorted(n for n, e in read_manifest(directory).items() if task is None or e.task == task)


def entry(name: str, directory=None) -> Entry:
    models = read_manifest(directory)
    if name not in models:
        known = ", ".join(sorted(models)) or "none shipped"
        raise WeightsError(f"unknown model {name!r} (known: {known})")
    return models[name]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_state(e: Entry, directory=None) -> dict:
    """The state dict of `e` as float32, after checking its sha256; never unpickles code."""
    import torch

    path = weights_dir(directory) / e.file
    if not path.is_file():
        raise WeightsError(f"{path}: weight file of model {e.name!r} is missing")
    actual = sha256(path)
    if actual != e.sha256:
        raise WeightsError(f"{path}: sha256 {actual[:12]}… does not match the manifest's "
                           f"{e.sha256[:12]}… (corrupt or replaced weight file); refusing to load it")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise WeightsError(f"{path}: not a loadable weight file ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(state, dict) or not all(hasattr(v, "dtype") for v in state.values()):
        raise WeightsError(f"{path}: does not hold a state dict of tensors")
    return {k: v.float() for k, v in state.items()}


def save(model, e: Entry, directory=None) -> Entry:
    """Write `model`'s weights (float16: half the size, far below the models' error) and
    add or replace `e` in the manifest; both writes are atomic."""
    import torch

    root = weights_dir(directory)
    root.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    path = root / e.file
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    e.sha256 = sha256(path)
    e.parameters = sum(p.numel() for p in model.parameters())
    write_entry(e, root)
    return e


def write_entry(e: Entry, directory=None) -> None:
    """Add or replace `e`; a lock keeps two training runs that end together from losing one."""
    import fcntl

    root = weights_dir(directory)
    with open(root / f".{MANIFEST}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        models = read_manifest(root)
        models[e.name] = e
        body = {"format": 1, "models": [asdict(models[n]) for n in sorted(models)]}
        tmp = root / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, root / MANIFEST)
