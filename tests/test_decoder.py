"""Raw decoding in a separate process: a crash or a hang inside the decoder costs one file."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from ispcli.io import decoder
from ispcli.io.errors import RawReadError

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "kodak_dc50.kdc"


# Decoder functions for the decoder process (module level: the process imports them by name).
def segfault(path, **kwargs):
    os.kill(os.getpid(), signal.SIGSEGV)


def abort(path, **kwargs):
    os.abort()


def hang(path, **kwargs):
    time.sleep(60)


def test_a_raw_decodes_in_the_decoder_process_and_errors_keep_their_reason(tmp_path):
    d = decoder.Decoder()
    try:
        raw = d.read(str(SAMPLE))
        assert raw.kind == "bayer" and raw.data.ndim == 2
        fake = tmp_path / "photo.dng"
        fake.write_bytes(b"\xff\xd8\xff\xe0" + bytes(2000))
        with pytest.raises(RawReadError) as info:
            d.read(str(fake))
        assert info.value.path == str(fake) and "JPEG" in info.value.reason
        assert d.read(str(SAMPLE)).kind == "bayer"      # the same process goes on
    finally:
        d.close()


@pytest.mark.parametrize("func, reason", [(segfault, "decoder crashed (signal 11, SIGSEGV)"),
                                          (abort, "decoder crashed (signal 6, SIGABRT)")])
def test_a_crashing_decoder_fails_that_file_only(func, reason):
    d = decoder.Decoder(func)
    try:
        for _ in range(2):                              # replaced after each crash
            with pytest.raises(RawReadError) as info:
                d.read("card/IMG_0001.CR2")
            assert info.value.path == "card/IMG_0001.CR2" and info.value.reason == reason
    finally:
        d.close()


def test_a_hanging_decode_is_stopped_at_the_timeout():
    d = decoder.Decoder(hang, timeout=1.5)
    try:
        start = time.monotonic()
        with pytest.raises(RawReadError, match=r"decode timed out after 1.5 s"):
            d.read("slow.nef")
        assert time.monotonic() - start < 10
        proc = d._proc
        assert proc is None                              # killed, not left running
    finally:
        d.close()


def test_a_batch_goes_on_past_a_file_that_crashes_the_decoder(tmp_path, monkeypatch, capsys):
    import json

    from ispcli.cli.batch_run import BatchOptions, run_batch
    from ispcli.recipe import Recipe

    crashing = decoder.Decoder(segfault)
    monkeypatch.setattr(decoder, "_decoder", crashing)
    try:
        code = run_batch(BatchOptions(inputs=[str(SAMPLE)], output=str(tmp_path / "out"), recipe=Recipe(),
                                      jobs=1, quiet=True, json=True))
    finally:
        crashing.close()
    assert code == 1
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert line["status"] == "failed" and line["error"] == "decoder crashed (signal 11, SIGSEGV)"
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def crash_on_bad(path, **kwargs):
    if "bad" in path:
        os.kill(os.getpid(), signal.SIGSEGV)
    return (path, kwargs, os.getpid())


def slow_echo(path, **kwargs):
    time.sleep(0.5)
    return path


def test_the_decoder_reads_ahead_the_files_it_was_told_of():
    d = decoder.Decoder(crash_on_bad)
    try:
        d.expect([("a.dng", {"max_megapixels": 5}), ("bad.dng", {"max_megapixels": 5}),
                  ("c.dng", {"max_megapixels": 5})])
        assert d._pending[:2] == ("a.dng", {"max_megapixels": 5})     # sent at once
        assert d.read("a.dng", max_megapixels=5)[:2] == ("a.dng", {"max_megapixels": 5})
        assert d._pending[:2] == ("bad.dng", {"max_megapixels": 5})   # the next is on its way
        with pytest.raises(RawReadError, match="decoder crashed"):
            d.read("bad.dng", max_megapixels=5)
        assert d.read("c.dng", max_megapixels=5)[0] == "c.dng"        # a new decoder took over
        assert d._pending is None
        assert d.read("d.dng")[0] == "d.dng"                          # and reads unannounced files
    finally:
        d.close()


def test_a_file_read_ahead_but_then_skipped_does_not_mix_up_replies():
    d = decoder.Decoder(crash_on_bad)
    try:
        d.expect([("a.dng", {}), ("b.dng", {}), ("c.dng", {})])
        assert d.read("b.dng")[0] == "b.dng"                          # a was skipped
        assert d.read("c.dng")[0] == "c.dng"
    finally:
        d.close()


def test_a_read_ahead_decode_overlaps_the_callers_work():
    d = decoder.Decoder(slow_echo)
    try:
        d.expect([("a.dng", {}), ("b.dng", {})])
        d.read("a.dng")
        time.sleep(0.6)                                               # the caller works on a.dng
        start = time.monotonic()
        assert d.read("b.dng") == "b.dng"
        assert time.monotonic() - start < 0.3                         # b was decoded meanwhile
    finally:
        d.close()


def test_develop_asks_for_the_first_raw_before_it_imports_torch(tmp_path, monkeypatch):
    from ispcli.cli.batch_run import BatchOptions, run_batch
    from ispcli.pipeline import executor
    from ispcli.recipe import Recipe

    seen = []
    real_init = executor._init_worker
    d = decoder.Decoder()
    monkeypatch.setattr(decoder, "_decoder", d)

    def init(*a, **k):
        seen.append(d._pending and d._pending[0])
        return real_init(*a, **k)

    monkeypatch.setattr(executor, "_init_worker", init)
    try:
        code = run_batch(BatchOptions(inputs=[str(SAMPLE)], output=str(tmp_path / "out"), recipe=Recipe(),
                                      jobs=1, quiet=True))
    finally:
        d.close()
    assert code == 0 and seen == [str(SAMPLE)]


def test_parallel_workers_are_told_which_raw_to_read_ahead(tmp_path, monkeypatch):
    import shutil

    from ispcli.cli import batch_run
    from ispcli.pipeline import executor
    from ispcli.recipe import Recipe

    card = tmp_path / "card"
    card.mkdir()
    for i in range(5):
        shutil.copy(SAMPLE, card / f"img{i}.kdc")
    given = []
    real = executor.run_jobs

    def spy(func, jobs, workers, **kw):
        given.extend(jobs)
        return real(func, jobs, workers, **kw)

    monkeypatch.setattr(executor, "run_jobs", spy)
    code = batch_run.run_batch(batch_run.BatchOptions(inputs=[str(card)], output=str(tmp_path / "out"),
                                                      recipe=Recipe(), jobs=2, quiet=True))
    assert code == 0 and len(list((tmp_path / "out").glob("*.jpg"))) == 5
    names = [job.input for job in given]
    assert [job.read_ahead for job in given] == names[2:] + [None, None]


class Interrupt(BaseException):
    pass


def test_a_read_interrupted_mid_reply_leaves_no_half_read_pipe(monkeypatch):
    d = decoder.Decoder()
    try:
        d.read(str(SAMPLE))
        d.expect([(str(SAMPLE), {})])
        conn = d._conn
        real_recv = conn.recv

        def interrupted():
            conn._recv(4)                                            # the reply is left half read
            raise Interrupt

        monkeypatch.setattr(conn, "recv", interrupted)
        with pytest.raises(Interrupt):
            d.read(str(SAMPLE))
        monkeypatch.setattr(conn, "recv", real_recv)
        assert d._proc is None                                       # that decoder is gone
        assert d.read(str(SAMPLE)).kind == "bayer"                  # a fresh one reads in step
    finally:
        d.close()


def slow_decode(path, **kwargs):
    time.sleep(1.0)
    return path


def test_a_decoder_whose_parent_stopped_mid_decode_exits_quietly(capfd):
    # Ctrl-C while a read-ahead decodes: the parent closes its end, the reply has nowhere to go.
    d = decoder.Decoder(slow_decode)
    d.expect([("card/IMG_0002.CR2", {})])
    proc = d._proc
    d._conn.close()
    proc.join(10)
    assert proc.exitcode == 0
    assert "Traceback" not in capfd.readouterr().err


def test_a_large_mosaic_comes_back_through_shared_memory_unchanged(tmp_path):
    import mmap

    import numpy as np
    from conftest import natural_image, synthetic_raw_file

    from ispcli.io.raw import read_raw

    path = tmp_path / "big.dng"
    synthetic_raw_file(path, natural_image(1024, 1536))            # 3 MB of mosaic
    d = decoder.Decoder()
    try:
        for _ in range(2):                                           # and the pipe stays in step
            raw = d.read(str(path))
            assert isinstance(raw.data.base, mmap.mmap)
            np.testing.assert_array_equal(raw.data, read_raw(str(path)).data)
            raw.data[0, 0] += 1                                      # a private, writable array
    finally:
        d.close()
