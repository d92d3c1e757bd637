"""One file in, one result out: read → analyse → run tiles → encode → write atomically.

`develop_file` (and every other worker, through `run_guarded`) never raises for a problem
with its file: the problem becomes a failed `FileResult` with a one-line reason, so a batch
always goes on.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ispcli import __version__
from ispcli.io.errors import FileError
from ispcli.recipe import Recipe


@dataclass
class FileResult:
    input: str
    output: str | None
    status: str  # the command's verb (developed, denoised, demosaicked) | skipped | failed
    seconds: float = 0.0
    megapixels: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    # denoise: the noise σ used, in 0-255 units (given, or estimated from the whole image)
    sigma: float | None = None

    @property
    def done(self) -> bool:
        return self.status not in ("skipped", "failed")

    def to_json(self) -> str:
        d = asdict(self)
        if d["sigma"] is None:  # only the commands that use a noise level report one
            del d["sigma"]
        return json.dumps(d, ensure_ascii=False)


@dataclass(frozen=True)
class Job:
    input: str
    output: str
    recipe: Recipe
    overwrite: bool = False
    sidecar: bool = False
    max_megapixels: float = 500.0
    timeout: float = 120.0        # seconds one raw may take to decode (io.decoder)
    # demosaic --cfa: inputs are single-channel mosaic images with this pattern (e.g. RGGB)
    cfa: str | None = None
    # the raw a parallel worker will probably be given next (decoded ahead while this one works)
    read_ahead: str | None = None


class Canvas:
    """The output image, filled tile by tile: quantised and turned upright on the way in."""

    def __init__(self, height: int, width: int, orientation: int, bits: int):
        from ispcli.isp.geometry import oriented_size

        self.height, self.width, self.orientation, self.bits = height, width, orientation, bits
        oh, ow = oriented_size(height, width, orientation)
        dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[bits]
        self.image = np.empty((oh, ow, 3), dtype=dtype)
        self._pixels = None        # the same memory as a torch tensor, made on the first tile

    def __call__(self, tile, out) -> None:
        import torch

        from ispcli.isp.geometry import orient, oriented_box

        if self._pixels is None:
            self._pixels = torch.from_numpy(self.image)
        q = orient(out[0].float(), self.orientation)
        if self.bits != 32:
            q = q.clamp(0, 1).mul_(255.0 if self.bits == 8 else 65535.0).round_()
        y, x, h, w = oriented_box(tile.y0, tile.x0, tile.y1 - tile.y0, tile.x1 - tile.x0,
                                  self.height, self.width, self.orientation)
        # one threaded copy does the (C, H, W) -> (H, W, C) transpose and the integer conversion
        self._pixels[y:y + h, x:x + w].copy_(q.permute(1, 2, 0))


def decode_request(job: Job) -> tuple[str, dict]:
    """What the decoder process is asked for this job's raw (also what it is told to read ahead)."""
    return job.input, {"max_megapixels": job.max_megapixels}


def read_job_raw(job: Job):
    from ispcli.io import decoder

    path, kwargs = decode_request(job)
    if job.read_ahead:
        decoder.read_next(job.read_ahead, **kwargs)
    return decoder.read_raw_isolated(path, timeout=job.timeout, **kwargs)


def develop_array(raw, recipe: Recipe, device=None):
    """Develop a decoded `RawImage` into an upright (H, W, 3) array; also the analysis."""
    from ispcli.pipeline import develop, runner
    from ispcli.pipeline.device import resolve_device

    device = device or resolve_device(recipe.device)
    analysis = develop.analyse(raw, recipe)
    pipeline = develop.build_pipeline(raw, recipe, analysis, float_output=recipe.bits == 32, device=device)
    canvas = Canvas(raw.height, raw.width, raw.orientation, recipe.bits)
    align = raw.cfa.shape[0] if raw.cfa is not None else 1
    runner.run(pipeline, raw.data, canvas, device=device, tile=recipe.tile, align=align)
    return canvas.image, analysis


def sidecar_payload(job: Job, raw, analysis) -> dict:
    import platform

    import rawpy
    import torch

    return {
        "ispcli": __version__,
        "input": job.input,
        "output": job.output,
        "recipe": job.recipe.to_dict(),
        "analysis": asdict(analysis),
        "camera": raw.camera,
        "matrix_source": raw.matrix_source,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "rawpy": rawpy.__version__, "libraw": ".".join(map(str, rawpy.libraw_version))},
    }


def develop_file(job: Job) -> FileResult:
    """Develop one raw to one output file; every per-file problem becomes a failed result."""
    return run_guarded(job, "developed", _develop)


def _develop(job: Job, result: FileResult):
    from ispcli.io import icc
    from ispcli.io.exif import output_tags
    from ispcli.io.images import save_image, write_atomic

    raw = read_job_raw(job)
    result.megapixels = round(raw.megapixels, 3)
    result.warnings = list(raw.warnings)
    image, analysis = develop_array(raw, job.recipe)
    result.warnings += analysis.warnings
    r = job.recipe
    tags = output_tags(raw.exif, gps=r.gps, width=image.shape[1], height=image.shape[0],
                       software=f"ispcli {__version__}")
    sidecar = json.dumps(sidecar_payload(job, raw, analysis), indent=2, ensure_ascii=False) if job.sidecar else None
    del raw

    def write() -> None:
        Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        save_image(job.output, image, r.format, quality=r.quality, icc=icc.icc_profile(r.color_space), exif=tags,
                   overwrite=job.overwrite)
        if sidecar is not None:
            write_atomic(job.output + ".ispcli.json", sidecar.encode(), overwrite=True)

    return write


def run_guarded(job: Job, status: str, body) -> FileResult:
    """`body(job, result)` does the work and fills in `result`; when it returns, the file is
    `status` (the command's verb). Every per-file problem becomes a failed result instead.

    A body may return its last step, the writing of the output (a callable): inside
    `overlapped_writes` that step runs on the writer thread while the next file is computed,
    and the result says "writing" until `Writer.ready` hands it back finished."""
    start = time.perf_counter()
    result = FileResult(input=job.input, output=job.output, status="failed")
    steps: list = []

    def compute() -> None:
        steps.append(body(job, result))

    _settle(result, status, compute, start)
    write = steps[0] if steps else None
    if write is None or result.status != status:
        return result
    if _writer is None:
        return _settle(result, status, write, start)
    result.status = "writing"
    _writer.submit(result, lambda: _settle(result, status, write, start))
    return result


def _settle(result: FileResult, status: str, work, start: float) -> FileResult:
    """Run `work()`; the result is `status` if it returns, else failed (or skipped) with a reason."""
    from ispcli.io.images import OutputExists

    result.status = "failed"
    try:
        work()
        result.status = status
    except OutputExists:
        result.status = "skipped"
        result.error = None
    except FileError as exc:
        result.error = exc.reason
    except ValueError as exc:
        # a learned stage that cannot take this file (X-Trans) or a model that broke since
        # the batch started: the stage's own message is the reason
        from ispcli.models.registry import ModelError
        from ispcli.models.weights import WeightsError
        from ispcli.pipeline.learned import StageError

        if not isinstance(exc, (StageError, ModelError, WeightsError)):
            if os.environ.get("ISPCLI_DEBUG"):
                raise
            result.error = f"internal error ({type(exc).__name__}: {exc}); set ISPCLI_DEBUG=1 for a traceback"
        else:
            result.error = str(exc)
    except MemoryError:
        result.error = "out of memory (try a smaller --tile or fewer --jobs)"
    except OSError as exc:
        result.error = f"cannot write output ({exc.strerror or exc})"
    except Exception as exc:  # a bug or an odd file must cost one file, not the batch
        if os.environ.get("ISPCLI_DEBUG"):
            raise
        result.error = f"internal error ({type(exc).__name__}: {exc}); set ISPCLI_DEBUG=1 for a traceback"
    result.seconds = round(time.perf_counter() - start, 3)
    return result


# ---- writing file N while file N+1 is computed ------------------------------------------------

class Writer:
    """One thread that encodes and writes finished outputs (JPEG/PNG encoders, file writes and
    fsync release the GIL) while the caller computes the next file. One write at a time: a
    second waits for the first, so at most two finished images are held."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ispcli-writer")
        self._queue: list = []            # (result, future or None), in submission order

    def _wait(self) -> None:
        for _, fut in self._queue:
            if fut is not None:
                fut.result()

    def submit(self, result: FileResult, write) -> None:
        self._wait()
        self._queue.append((result, self._pool.submit(write)))

    def add(self, result: FileResult) -> None:
        """Keep `result` in order behind the writes, unless it is one of them (its status may
        already have left "writing": the thread can finish before the caller looks)."""
        if not any(r is result for r, _ in self._queue):
            self._queue.append((result, None))

    def ready(self) -> list[FileResult]:
        """The results at the front whose writes have finished."""
        out = []
        while self._queue and (self._queue[0][1] is None or self._queue[0][1].done()):
            result, fut = self._queue.pop(0)
            if fut is not None:
                fut.result()              # a bug in the writer itself surfaces here
            out.append(result)
        return out

    def drain(self) -> list[FileResult]:
        self._wait()
        return self.ready()

    def close(self) -> None:
        """Wait for the write in flight (an interrupted batch leaves whole files or none)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


_writer: Writer | None = None


def overlapped_writes(func, jobs):
    """Yield `func(job)` for each job, in order, writing each output on a `Writer` thread while
    the next job computes (one process's batch: decoding is read ahead by the decoder process,
    so file N+1 decodes, file N computes and file N-1 is written at the same time)."""
    global _writer
    writer = _writer = Writer()
    try:
        for job in jobs:
            writer.add(func(job))
            yield from writer.ready()
        yield from writer.drain()
    finally:
        _writer = None
        writer.close()
