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


ARCHITECTURES["unet"] = _unet


class ModelError(ValueError):
    """An unknown model or architecture, or weights that do not fit it."""


def build(arch: str, **args):
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})")
    try:
        return ARCHITECTURES[arch]()(**args)
    except TypeError as exc:
        raise ModelError(f"architecture {arch!r} does not take these arguments: {exc}") from None


def load(name: str, *, task: str | None = None, domain: str | None = None, weights_dir=None):
    """The trained model `name` in eval mode, checked against the manifest (sha256, strict keys).

    `task`/`domain` refuse a model made for something else, with a message naming both.
    """
    from ispcli.models import weights

    entry = weights.entry(name, weights_dir)
    if task is not None and entry.task != task:
        raise ModelError(f"model {name!r} is a {entry.task} model, not a {task} model "
                         f"(models for {task}: {', '.join(weights.names(task, weights_dir)) or 'none'})")
    if domain is not None and entry.domain != domain:
        raise ModelError(f"model {name!r} works on {entry.domain} images, this stage needs {domain}")
    model = build(entry.arch, **entry.args)
    state = weights.load_state(entry, weights_dir)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(f"weights {entry.file} do not fit architecture {entry.arch}: {first}") from None
    model.eval()
    model.entry = entry
    return model
