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
