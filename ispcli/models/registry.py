"""The one model registry: architecture names → builders, and named weights → models.

`build("unet", **args)` makes an untrained network; `load("denoise-unet")` makes the network
named in the weights manifest, fills it from its checked weight file and returns it in eval
mode. Commands refer to models only through these two functions.
"""

from __future__ import annotations

from typing import Callable

ARCHITECTURES: dict[str, Callable[[], Callable]] = {}


def _unet():
    from ispcli.models.unet import UNet
    return UNet


def _dehaze():
    from ispcli.models.dehaze import DehazeNet
    return DehazeNet


def _enhance():
    from ispcli.models.enhance import EnhanceNet
    return EnhanceNet


ARCHITECTURES["unet"] = _unet
ARCHITECTURES["enhance-net"] = _enhance
ARCHITECTURES["dehaze-net"] = _dehaze


class ModelError(ValueError):
    """An unknown model or architecture, or weights that do not fit it."""


def build(arch: str, **args):
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})")
    try:
        return ARCHITECTURES[arch]()(**args)
    except TypeError as exc:
        raise ModelError(f"architecture {arch!r} does not take these arguments: {exc}") from None


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _entry_for(name: str, task: str | None, domain: str | None, weights_dir):
    """The manifest entry of `name`, refusing one made for another task or domain."""
    from ispcli.models import weights

    entry = weights.entry(name, weights_dir)
    if task is not None and entry.task != task:
        raise ModelError(f"model {name!r} is {_a(entry.task)} model, not {_a(task)} model "
                         f"(models for {task}: {', '.join(weights.names(task, weights_dir)) or 'none'})")
    if domain is not None and entry.domain != domain:
        raise ModelError(f"model {name!r} works on {entry.domain} images, this stage needs {domain}")
    return entry


def check(name: str, *, task: str | None = None, domain: str | None = None, weights_dir=None):
    """The manifest entry of `name` after the checks `load` makes (known name, task, domain,
    file present with the right sha256), without importing torch: commands call it before a
    batch starts so a bad model is one usage error, not one failure per file."""
    from ispcli.models import weights

    entry = _entry_for(name, task, domain, weights_dir)
    if entry.arch not in ARCHITECTURES:
        raise ModelError(f"model {name!r} needs architecture {entry.arch!r}, which this ispcli does not have")
    path = weights.weights_dir(weights_dir) / entry.file
    if not path.is_file():
        raise weights.WeightsError(f"{path}: weight file of model {name!r} is missing")
    if weights.sha256(path) != entry.sha256:
        raise weights.WeightsError(f"{path}: sha256 does not match the manifest (corrupt or replaced weight "
                                   f"file); refusing to load it")
    return entry


def load(name: str, *, task: str | None = None, domain: str | None = None, weights_dir=None):
    """The trained model `name` in eval mode, checked against the manifest (sha256, strict keys).

    `task`/`domain` refuse a model made for something else, with a message naming both.
    """
    from ispcli.models import weights

    entry = _entry_for(name, task, domain, weights_dir)
    model = build(entry.arch, **entry.args)
    state = weights.load_state(entry, weights_dir)
    problem = _misfit(model.state_dict(), state)
    if problem:
        raise ModelError(f"weights {entry.file} of model {name!r} do not fit {entry.arch} with the manifest's "
                         f"args {entry.args}: {problem}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()] or [str(exc)]
        raise ModelError(f"weights {entry.file} do not fit architecture {entry.arch}: {detail[0]}") from None
    model.eval()
    model.entry = entry
    return model


def _misfit(expected: dict, state: dict) -> str:
    """What keeps `state` from loading strictly into a model whose state dict is `expected`
    ('' when it fits): missing and unexpected keys, and shapes that differ."""
    def some(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} is {list(state[k].shape)} in the file, {list(expected[k].shape)} in the model"
              for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} key(s) missing from the file ({some(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) in the file ({some(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es) ({some(shapes)})")
    return "; ".join(parts)
