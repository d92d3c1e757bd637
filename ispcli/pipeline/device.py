"""Choosing the torch device: `auto` takes a GPU when one works, else the CPU."""

from __future__ import annotations

import os


class DeviceError(ValueError):
    pass


def resolve_device(name: str = "auto"):
    """A torch.device for `auto|cpu|cuda[:N]|mps`; asking for a missing GPU is an error."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: no CUDA GPU is available to this torch "
                              f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'})")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
        return dev
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError("--device mps: Apple Metal is not available")
        return torch.device("mps")
    raise DeviceError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps")


def set_cpu_threads(jobs: int = 1) -> None:
    """Split the machine's cores between parallel jobs so they don't oversubscribe."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, cores // max(1, jobs)))
