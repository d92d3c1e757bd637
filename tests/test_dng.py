"""DNG writer/reader round trips through LibRaw (rawpy) and exifread, plus the unprocess maths.

Tests touching ../shared/data/raw skip when that folder is absent.
"""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` puts tests/, not the repo root, on sys.path
    sys.path.insert(0, str(ROOT))

from ispcli.io.dng import CFA_PATTERNS, XYZ_FROM_SRGB, read_dng_color_tags, write_dng  # noqa: E402

rawpy = pytest.importorskip("rawpy")
torch = pytest.importorskip("torch")
from ispcli.train import unprocess as up  # noqa: E402

SHARED_RAW = ROOT.parent / "shared" / "data" / "raw"
needs_shared = pytest.mark.skipif(not SHARED_RAW.is_dir(), reason="../shared/data/raw not present")

CFAS = ["RGGB", "BGGR", "GRBG", "GBRG"]
# LibRaw numbers the green on the second row of the 2x2 tile 3 (color_desc b'RGBG').
LIBRAW_PATTERNS = {"RGGB": [[0, 1], [3, 2]], "BGGR": [[2, 3], [1, 0]],
                   "GRBG": [[1, 0], [2, 3]], "GBRG": [[3, 2], [0, 1]]}
CM_30D = np.array(up.CAMERA_MATRICES["Canon EOS 30D"])
CM_SONY = np.array(up.CAMERA_MATRICES["Sony ILCE-7RM3"])


def libraw_cmatrix(cm):
    """What LibRaw derives from a DNG ColorMatrix: rawpy color_matrix[:, :3] and pre_mul."""
    cam_rgb = np.asarray(cm) @ XYZ_FROM_SRGB
    rowsum = cam_rgb.sum(axis=1)
    return np.linalg.inv(cam_rgb / rowsum[:, None]), 1.0 / rowsum


def mosaic_data(h=34, w=50, seed=0, hi=16383):
    # LibRaw refuses images narrower or shorter than 22 pixels as "not RAW".
    return np.random.default_rng(seed).integers(0, hi + 1, (h, w), dtype=np.uint16)


@pytest.mark.parametrize("cfa", CFAS)
def test_cfa_round_trip(tmp_path, cfa):
    data, black, neutral = mosaic_data(), [500, 510, 520, 530], (0.45, 1.0, 0.75)
    path = write_dng(tmp_path / "x.dng", data, cfa=cfa, black_level=black, white_level=16383,
                     color_matrix1=CM_30D, as_shot_neutral=neutral)
    with rawpy.imread(str(path)) as raw:
        pattern = raw.raw_pattern.copy()
        assert raw.raw_type == rawpy.RawType.Flat and raw.color_desc == b"RGBG"
        assert np.array_equal(raw.raw_image, data)
        assert pattern.tolist() == LIBRAW_PATTERNS[cfa]
        assert np.where(pattern == 3, 1, pattern).ravel().tolist() == list(CFA_PATTERNS[cfa])
        for i in range(2):
            for j in range(2):
                assert raw.black_level_per_channel[pattern[i, j]] == black[2 * i + j]
        assert raw.white_level == 16383
        np.testing.assert_allclose(raw.camera_whitebalance[:3], 1 / np.array(neutral), rtol=1e-4)
        expect_cm, expect_pre_mul = libraw_cmatrix(CM_30D)
        np.testing.assert_allclose(raw.color_matrix[:, :3], expect_cm, atol=1e-5)
        np.testing.assert_allclose(raw.daylight_whitebalance[:3], expect_pre_mul, rtol=1e-5)
        # LibRaw fills rgb_xyz_matrix only from its own Make/Model table, never from the DNG.
        assert not np.any(raw.rgb_xyz_matrix)
        assert raw.sizes.flip == 0
        assert raw.postprocess(half_size=True).shape == (17, 25, 3)


@pytest.mark.parametrize("camera, make, model", [
    ("Canon EOS 30D", "Canon", "Canon EOS 30D"), ("Canon EOS D30", "Canon", "Canon EOS D30"),
    ("Sony ILCE-7RM3", "SONY", "ILCE-7RM3"), ("Fujifilm X-H1", "FUJIFILM", "X-H1")])
def test_libraw_table_matrix_matches_unprocess_table(tmp_path, camera, make, model):
    path = write_dng(tmp_path / "x.dng", mosaic_data(), color_matrix1=CM_SONY, make=make, model=model)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_allclose(raw.rgb_xyz_matrix[:3], up.CAMERA_MATRICES[camera], atol=1e-6)
        np.testing.assert_allclose(raw.color_matrix[:, :3], libraw_cmatrix(CM_SONY)[0], atol=1e-5)


@pytest.mark.parametrize("swap", [False, True])
def test_libraw_prefers_the_d65_matrix(tmp_path, swap):
    a, b = (CM_30D, 21), (CM_SONY, 17)
    (m1, i1), (m2, i2) = (b, a) if swap else (a, b)
    path = write_dng(tmp_path / "x.dng", mosaic_data(), color_matrix1=m1, calibration_illuminant1=i1,
                     color_matrix2=m2, calibration_illuminant2=i2)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_allclose(raw.color_matrix[:, :3], libraw_cmatrix(CM_30D)[0], atol=1e-5)
    tags = read_dng_color_tags(path)
    np.testing.assert_allclose(tags["ColorMatrix1"], m1, atol=1e-9)
    np.testing.assert_allclose(tags["ColorMatrix2"], m2, atol=1e-9)
    assert (tags["CalibrationIlluminant1"], tags["CalibrationIlluminant2"]) == (i1, i2)


def test_linear_dng_round_trip(tmp_path):
    data = np.random.default_rng(1).integers(0, 60001, (24, 30, 3), dtype=np.uint16)
    path = write_dng(tmp_path / "lin.dng", data, black_level=[10, 20, 30], white_level=60000,
                     as_shot_neutral=(0.5, 1.0, 0.8))
    with rawpy.imread(str(path)) as raw:
        assert raw.raw_type == rawpy.RawType.Stack and raw.raw_pattern is None
        assert np.array_equal(raw.raw_image[..., :3], data)
        assert raw.black_level_per_channel[:3] == [10, 20, 30]
        assert raw.white_level == 60000
        # LinearRaw only: LibRaw folds unequal channel blacks into the WB multipliers.
        expect = 1 / np.array([0.5, 1.0, 0.8]) * (60000 - 10) / (60000 - np.array([10, 20, 30]))
        np.testing.assert_allclose(raw.camera_whitebalance[:3], expect, rtol=1e-6)
        assert raw.postprocess().shape == (24, 30, 3)


@pytest.mark.parametrize("orientation, flip", [(1, 0), (2, 1), (3, 3), (4, 2), (5, 4), (6, 6), (7, 7), (8, 5)])
def test_orientation(tmp_path, orientation, flip):
    path = write_dng(tmp_path / "o.dng", mosaic_data(24, 30), orientation=orientation)
    with rawpy.imread(str(path)) as raw:
        assert raw.sizes.flip == flip
        assert raw.postprocess().shape[:2] == ((30, 24) if orientation >= 5 else (24, 30))


def test_exif_metadata(tmp_path):
    exifread = pytest.importorskip("exifread")
    when = dt.datetime(2024, 5, 1, 12, 30, 0)
    path = write_dng(tmp_path / "e.dng", mosaic_data(), make="ispcli", model="Synthetic", iso=1600,
                     exposure_time=1 / 250, f_number=2.8, focal_length=35, datetime=when)
    with open(path, "rb") as fh:
        tags = exifread.process_file(fh, details=False)
    assert str(tags["Image Make"]) == "ispcli" and str(tags["Image Model"]) == "Synthetic"
    assert str(tags["EXIF ISOSpeedRatings"]) == "1600"
    assert str(tags["EXIF DateTimeOriginal"]) == "2024:05:01 12:30:00"
    with rawpy.imread(str(path)) as raw:
        other = raw.other
    assert other.iso_speed == 1600 and other.aperture == pytest.approx(2.8)
    assert other.shutter_speed == pytest.approx(1 / 250) and other.focal_length == pytest.approx(35)
    assert other.timestamp == when


def test_read_color_tags_on_written_file(tmp_path):
    path = write_dng(tmp_path / "c.dng", mosaic_data(), color_matrix1=CM_SONY, calibration_illuminant1=17,
                     color_matrix2=CM_30D, calibration_illuminant2=21, as_shot_neutral=(0.4, 1, 0.7),
                     baseline_exposure=-0.25)
    tags = read_dng_color_tags(path)
    np.testing.assert_allclose(tags["ColorMatrix1"], CM_SONY, atol=1e-9)
    np.testing.assert_allclose(tags["ColorMatrix2"], CM_30D, atol=1e-9)
    np.testing.assert_allclose(tags["AsShotNeutral"], [0.4, 1, 0.7], atol=1e-9)
    assert tags["BaselineExposure"] == -0.25 and tags["CalibrationIlluminant1"] == 17
    for absent in ("ForwardMatrix1", "AnalogBalance", "CameraCalibration1", "AsShotWhiteXY"):
        assert tags[absent] is None


def test_read_color_tags_non_dng(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    (tmp_path / "a.txt").write_text("not a tiff")
    (tmp_path / "empty.dng").write_bytes(b"")
    (tmp_path / "trunc.dng").write_bytes(b"II*\x00\xff\xff\x00\x00")
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 4), np.uint16))
    for name in ("a.txt", "empty.dng", "trunc.dng", "plain.tif"):
        assert read_dng_color_tags(tmp_path / name) == {}


def test_write_is_atomic(tmp_path):
    target = tmp_path / "a.dng"
    write_dng(target, mosaic_data(seed=1))
    with pytest.raises(ValueError):
        write_dng(target, np.zeros((2, 3, 4), np.uint16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.dng"]
    with rawpy.imread(str(target)) as raw:
        assert np.array_equal(raw.raw_image, mosaic_data(seed=1))


@needs_shared
def test_magic_lantern_550d_tags():
    path = SHARED_RAW / "canon_eos_550d_magiclantern.dng"
    tags = read_dng_color_tags(path)
    print({k: v for k, v in tags.items() if v is not None})
    np.testing.assert_allclose(tags["ColorMatrix1"], [[0.6461, -0.1164, -0.0857], [-0.3825, 1.1597, 0.2534],
                                                      [-0.0416, 0.1540, 0.6039]], atol=1e-9)
    np.testing.assert_allclose(tags["AsShotNeutral"], [1.0, 2.477, 1.462], atol=1e-9)
    assert tags["CalibrationIlluminant1"] is None and tags["BaselineExposure"] == 0.0  # stored as 0/0
    with rawpy.imread(str(path)) as raw:
        assert not np.any(raw.rgb_xyz_matrix)  # "Canon EOS Kiss X4" is not in LibRaw's table
        np.testing.assert_allclose(raw.color_matrix[:, :3], libraw_cmatrix(tags["ColorMatrix1"])[0], atol=1e-5)


@needs_shared
@pytest.mark.parametrize("name", ["fujifilm_xh1_smartpreview_a.dng", "fujifilm_xh1_smartpreview_b.dng"])
def test_fujifilm_linear_dng_tags(name):
    path = SHARED_RAW / name
    tags = read_dng_color_tags(path)
    assert (tags["CalibrationIlluminant1"], tags["CalibrationIlluminant2"]) == (17, 21)
    np.testing.assert_allclose(tags["ColorMatrix2"], up.CAMERA_MATRICES["Fujifilm X-H1"], atol=1e-9)
    assert tags["ForwardMatrix2"].shape == (3, 3) and tags["CameraCalibration2"].shape == (3, 3)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_allclose(raw.camera_whitebalance[:3], 1 / tags["AsShotNeutral"], rtol=1e-4)
        calibrated = np.diag(tags["AnalogBalance"]) @ tags["CameraCalibration2"] @ tags["ColorMatrix2"]
        np.testing.assert_allclose(raw.color_matrix[:, :3], libraw_cmatrix(calibrated)[0], atol=1e-5)


@needs_shared
@pytest.mark.parametrize("name, camera", [
    ("canon_eos_30d.cr2", "Canon EOS 30D"), ("canon_eos_d30.crw", "Canon EOS D30"),
    ("sony_ilce7rm3_compressed.arw", "Sony ILCE-7RM3"), ("fujifilm_xh1_smartpreview_a.dng", "Fujifilm X-H1")])
def test_camera_matrices_match_real_files(name, camera):
    if not (SHARED_RAW / name).exists():
        pytest.skip(f"{name} not in ../shared/data/raw")
    with rawpy.imread(str(SHARED_RAW / name)) as raw:
        np.testing.assert_allclose(raw.rgb_xyz_matrix[:3], up.CAMERA_MATRICES[camera], atol=1e-6)
    if name.endswith((".cr2", ".crw", ".arw")):
        assert read_dng_color_tags(SHARED_RAW / name) == {}


# --- unprocess -------------------------------------------------------------------------------

def test_srgb_curve_round_trip():
    x = torch.linspace(0, 1, 1001)
    torch.testing.assert_close(up.linear_to_srgb(up.srgb_to_linear(x)), x, atol=2e-6, rtol=0)
    assert up.srgb_to_linear(torch.tensor(0.5)).item() == pytest.approx(0.2140411, abs=1e-6)


@pytest.mark.parametrize("camera", list(up.CAMERA_MATRICES))
def test_rgb_to_camera_of_d65_white(camera):
    m = up.xyz_camera_matrices()[camera]
    white = torch.ones(1, 3, 2, 2)
    cam = up.rgb_to_camera(white, m)[0, :, 0, 0]
    torch.testing.assert_close(cam, m @ up.XYZ_D65)
    torch.testing.assert_close(cam / cam[1], up.camera_neutral(m))
    torch.testing.assert_close(up.camera_to_rgb(up.rgb_to_camera(white, m), m), white, atol=1e-5, rtol=0)
    assert float((cam * up.white_exposure(m)).max()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("cfa", CFAS)
def test_mosaic_picks_the_right_channel(cfa):
    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    m = up.mosaic(x, cfa)
    assert m.shape == (2, 1, 5, 7)
    for y in range(5):
        for xx in range(7):
            ch = CFA_PATTERNS[cfa][2 * (y % 2) + xx % 2]
            assert torch.equal(m[:, 0, y, xx], x[:, ch, y, xx])


def test_sensor_counts_round_trip():
    x = torch.tensor([[[[-1.0, 0.0, 0.5], [1.0, 2.0, 0.25]]]])
    counts = up.to_sensor_counts(x, black=[500, 510, 520, 530], white=16383)
    assert counts.dtype == torch.int32
    assert counts[0, 0].tolist() == [[0, 510, round(500 + 0.5 * 15883)], [16383, 16383, round(520 + 0.25 * 15863)]]
    back = up.from_sensor_counts(counts, black=[500, 510, 520, 530], white=16383)
    torch.testing.assert_close(back[0, 0, :, 1:], torch.tensor([[0.0, 0.5], [1.0, 0.25]]), atol=1e-4, rtol=0)


def test_noise_model():
    shot, read = up.noise_levels_for_iso(1600)
    assert shot == pytest.approx(1.6e-3) and read == pytest.approx(up.read_from_shot(shot))
    assert up.noise_levels_for_iso(3200)[0] > shot and up.noise_levels_for_iso(3200)[1] > read
    x = torch.full((1, 1, 256, 256), 0.3)
    noisy = up.add_shot_read_noise(x, shot, read, torch.Generator().manual_seed(0))
    assert float((noisy - x).std()) == pytest.approx((shot * 0.3 + read) ** 0.5, rel=0.02)
    again = up.add_shot_read_noise(x, shot, read, torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)
    s, r = up.random_noise_levels(torch.Generator().manual_seed(1))
    assert 1e-4 <= s <= 0.012 and r > 0


def test_random_camera_is_deterministic_and_plausible():
    cams = [up.random_camera(torch.Generator().manual_seed(s)) for s in range(20)]
    again = up.random_camera(torch.Generator().manual_seed(0))
    assert torch.equal(cams[0].xyz_to_cam, again.xyz_to_cam) and torch.equal(cams[0].wb_gains, again.wb_gains)
    for cam in cams:
        assert float(cam.weights.sum()) == pytest.approx(1.0)
        assert float(cam.wb_gains[1]) == 1.0 and 1.0 < float(cam.wb_gains[0]) < 3.5
        assert 0.8 < float(cam.wb_gains[2]) < 3.0
        torch.testing.assert_close(cam.cam_to_xyz @ cam.xyz_to_cam, torch.eye(3), atol=1e-5, rtol=0)


def test_unprocessed_grey_lands_on_as_shot_neutral(tmp_path):
    cam = up.random_camera(torch.Generator().manual_seed(3))
    raw = up.unprocess(torch.full((1, 3, 24, 24), 0.5), cam, "GRBG")
    offsets = [(0, 0), (0, 1), (1, 0), (1, 1)]
    sites = {c: raw[0, 0, y::2, x::2].mean() for (y, x), c in zip(offsets, CFA_PATTERNS["GRBG"])}
    rgb = torch.stack([sites[0], sites[1], sites[2]])
    torch.testing.assert_close(rgb / rgb[1], cam.as_shot_neutral, atol=1e-5, rtol=0)
    counts = up.to_sensor_counts(raw, 512, 16383)[0, 0].numpy().astype(np.uint16)
    path = write_dng(tmp_path / "u.dng", counts, cfa="GRBG", black_level=512, white_level=16383,
                     color_matrix1=cam.xyz_to_cam.double().numpy(),
                     as_shot_neutral=cam.as_shot_neutral.double().numpy())
    with rawpy.imread(str(path)) as r:
        assert np.array_equal(r.raw_image, counts)
        np.testing.assert_allclose(r.camera_whitebalance[:3], cam.wb_gains.double().numpy(), rtol=1e-4)
