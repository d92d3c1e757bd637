"""Recipes, input discovery, EXIF mapping, atomic writes and the camera-matrix logic."""

from __future__ import annotations

import io

import numpy as np
import pytest

from ispcli import recipe as R
from ispcli.io import batch
from ispcli.io.camera_color import interpolate_color_matrix, xy_to_cct
from ispcli.io.exif import ExifSummary, output_tags
from ispcli.io.images import OutputExists, write_atomic


def test_recipe_round_trips_through_toml_and_json(tmp_path):
    r = R.Recipe(wb="2.1,1,1.6", look="neutral", exposure=0.7, color_space="rec2020", format="tif", bits=16)
    (tmp_path / "r.toml").write_text(R.to_toml(r))
    assert R.load(tmp_path / "r.toml") == r
    (tmp_path / "r.json").write_text(r.to_json())
    assert R.load(tmp_path / "r.json") == r


@pytest.mark.parametrize("changes,message", [
    ({"bits": 12}, "--bits 12"), ({"quality": 0}, "--quality 0"), ({"wb": "0,1,1"}, "positive"),
    ({"highlights": "magic"}, "--highlights"), ({"tile": 10}, "--tile 10"), ({"version": 99}, "newer"),
])
def test_recipe_refuses_bad_values_by_name(changes, message):
    with pytest.raises(R.RecipeError, match=message):
        R.Recipe(**changes)


def test_recipe_file_errors_name_the_file(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text("look = [")
    with pytest.raises(R.RecipeError, match="broken.toml: not a valid recipe"):
        R.load(p)
    p.write_text('bits = "sixteen"')
    with pytest.raises(R.RecipeError, match="bits = 'sixteen' should be int"):
        R.load(p)


def test_discover_files_folders_globs_stdin_and_missing(tmp_path):
    (tmp_path / "a.CR2").write_bytes(b"x")
    (tmp_path / "b.txt").write_text("x")
    (tmp_path / ".hidden.dng").write_bytes(b"x")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "c.nef").write_bytes(b"x")
    found, missing = batch.discover([str(tmp_path)])
    assert [s.path for s in found] == [str(tmp_path / "a.CR2")]
    found, _ = batch.discover([str(tmp_path)], recursive=True)
    assert {(s.path, s.subdir) for s in found} == {(str(tmp_path / "a.CR2"), ""), (str(sub / "c.nef"), "sub")}
    found, missing = batch.discover(["-", str(tmp_path / "nope.dng"), str(tmp_path / "*.zzz")],
                                    stdin=io.StringIO(f"{sub / 'c.nef'}\n\n{sub / 'c.nef'}\n"))
    assert [s.path for s in found] == [str(sub / "c.nef")]  # de-duplicated
    assert [m.reason for m in missing] == ["no such file or folder", "pattern matches no files"]


def test_plan_refuses_collisions_and_overwriting_inputs(tmp_path):
    (tmp_path / "x.dng").write_bytes(b"x")
    (tmp_path / "x.cr2").write_bytes(b"x")
    src = [batch.Source(str(tmp_path / "x.dng")), batch.Source(str(tmp_path / "x.cr2"))]
    plans = batch.plan_outputs(src, str(tmp_path), "{stem}", ".jpg", overwrite=False)
    assert [p.status for p in plans] == ["todo", "failed"] and "collides" in plans[1].reason
    plans = batch.plan_outputs(src[:1], str(tmp_path), "{stem}", ".dng", overwrite=True)
    assert plans[0].status == "failed" and "overwrite an input" in plans[0].reason


def test_output_tags_drop_gps_on_request_and_reset_orientation():
    s = ExifSummary(tags={"Exif.Image.Make": "Canon", "Exif.GPSInfo.GPSLatitude": "48/1 51/1 0/1",
                          "Exif.Image.Orientation": "6"})
    with_gps = output_tags(s, gps=True, width=10, height=20, software="ispcli")
    assert with_gps["Exif.GPSInfo.GPSLatitude"] == "48/1 51/1 0/1" and with_gps["Exif.Image.Orientation"] == "1"
    without = output_tags(s, gps=False, width=10, height=20, software="ispcli")
    assert not any(k.startswith("Exif.GPSInfo") for k in without)
    assert without["Exif.Photo.PixelXDimension"] == "10"


def test_atomic_write_claims_or_skips(tmp_path):
    target = tmp_path / "a.jpg"
    write_atomic(target, b"first", overwrite=False)
    with pytest.raises(OutputExists):
        write_atomic(target, b"second", overwrite=False)
    assert target.read_bytes() == b"first"
    write_atomic(target, b"third", overwrite=True)
    assert target.read_bytes() == b"third"
    assert [p.name for p in tmp_path.iterdir()] == ["a.jpg"]


def test_color_matrix_interpolates_between_illuminants_by_cct():
    a = np.eye(3) * 2.0
    d65 = np.eye(3)
    assert 6400 < xy_to_cct(0.3127, 0.3290) < 6600
    assert 2800 < xy_to_cct(0.4476, 0.4074) < 2900
    # a neutral that is D65 in XYZ picks the D65 calibration, one that is illuminant A picks A
    xyz_d65 = np.array([0.9505, 1.0, 1.089])
    xyz_a = np.array([1.0985, 1.0, 0.3558])
    np.testing.assert_allclose(interpolate_color_matrix(a, 17, d65, 21, d65 @ xyz_d65), d65, atol=1e-6)
    np.testing.assert_allclose(interpolate_color_matrix(a, 17, d65, 21, a @ xyz_a), a, atol=2e-3)
    mid = interpolate_color_matrix(a, 17, d65, 21, np.array([1.0, 1.0, 0.6]))
    assert 1.0 < mid[0, 0] < 2.0
