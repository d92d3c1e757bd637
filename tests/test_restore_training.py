"""What `train` and `eval` of dehaze, deblur and enhance rely on: the synthetic haze, blur and
phone degradations, the enhancer's identity start, and paired training data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ispcli.isp import dehaze
from ispcli.models.enhance import EnhanceNet
from ispcli.train import blur, data, degrade, haze, phone
from tests.conftest import natural_image, run_cli


def _image(h=64, w=80, seed=0) -> torch.Tensor:
    return torch.from_numpy(natural_image(h, w, seed=seed)).permute(2, 0, 1).unsqueeze(0).float()


# ---- haze ---------------------------------------------------------------------------------------

def test_depth_proxy_is_relative_depth_with_the_top_further_away():
    grey = torch.full((1, 3, 64, 48), 0.5)
    d = haze.depth_proxy(grey)
    assert d.shape == (1, 1, 64, 48) and float(d.min()) >= 0 and float(d.max()) <= 1
    assert float(d[..., 0, :].mean()) > float(d[..., -1, :].mean()) + 0.4
    # bright, unsaturated regions (sky, haze) are further than saturated ones at the same height
    scene = grey.clone()
    scene[:, :, :, :24] = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1)
    scene[:, :, :, 24:] = 0.9
    d = haze.depth_proxy(scene)
    assert float(d[..., 32, 40]) > float(d[..., 32, 4])


def test_haze_follows_the_scattering_model():
    clean, depth = _image(), torch.full((1, 1, 64, 80), 0.5)
    assert torch.allclose(haze.add_haze(clean, depth, [0.0], [0.8]), clean)
    hazy = haze.add_haze(clean, depth, [2.0], torch.tensor([[0.9, 0.8, 0.7]]))
    t = np.exp(-1.0)
    expected = clean * t + torch.tensor([0.9, 0.8, 0.7]).view(1, 3, 1, 1) * (1 - t)
    assert torch.allclose(hazy, expected, atol=1e-6)


def test_random_haze_is_fixed_by_its_seed_and_in_the_protocol_ranges():
    clean = _image()
    a1, l1 = haze.random_haze(clean, torch.Generator().manual_seed(3))
    a2, l2 = haze.random_haze(clean, torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2) and torch.equal(l1, l2)
    assert 0.7 <= float(l1[0, 0]) <= 1.0 and torch.all(l1 == l1[:, :1])      # grey airlight


def test_dcp_recovers_haze_it_can_see_and_estimates_the_airlight():
    clean = _image(96, 96)
    hazy = haze.add_haze(clean, torch.full((1, 1, 96, 96), 1.0), [1.0], [0.85]).clamp(0, 1)
    est = dehaze.image_airlight(hazy)
    assert torch.allclose(est, torch.full((1, 3), 0.85), atol=0.1)
    out = dehaze.dcp_dehaze(hazy, est)
    assert float((out - clean).abs().mean()) < float((hazy - clean).abs().mean()) * 0.7


def test_dehaze_pairs_tell_the_model_an_airlight():
    photo = (_image()[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    with_depth = haze.attach_depth(photo)
    assert with_depth.shape == (64, 80, 6) and with_depth[0, :, 3].mean() > with_depth[-1, :, 3].mean()
    assert with_depth[0, 0, 4] == 0 and with_depth[-1, 0, 4] == 255 and with_depth[0, -1, 5] == 255  # row, column
    batch = torch.from_numpy(with_depth).permute(2, 0, 1).unsqueeze(0).float() / 255
    x, target = degrade.dehaze_pair(batch, torch.Generator().manual_seed(0))
    assert x.shape == (1, 8, 64, 80) and torch.equal(target, batch[:, :3])
    assert torch.all(x[:, 3:6] == x[:, 3:6, :1, :1])    # constant airlight planes
    assert torch.equal(x[:, 6:8], batch[:, 4:6])        # then where each pixel lies in the photo


def test_the_dehazer_inverts_the_scattering_model_with_its_transmission():
    from ispcli.models.dehaze import DehazeNet

    net = DehazeNet((8, 16), 1).requires_grad_(False)
    for p in net.net.parameters():
        p.zero_()
    net.net.tail.bias[:4] = 0.0                          # t = 0.05 + 0.95 / 2
    clean = _image()
    t = 0.05 + 0.95 * 0.5
    hazy = clean * t + 0.8 * (1 - t)
    out = net(torch.cat([hazy, torch.full((1, 3, 64, 80), 0.8)], 1))
    assert torch.allclose(out, clean, atol=1e-5)


def test_a_positional_dehazer_grows_from_one_without_position_and_starts_equal():
    from ispcli.models.dehaze import DehazeNet

    torch.manual_seed(0)
    base = DehazeNet((8, 16), 1).eval()
    grown = DehazeNet((8, 16), 1, position=True).eval()
    grown.grow_from(base.state_dict())
    hazy = _image()
    coords = torch.rand(1, 2, 64, 80)
    with torch.no_grad():
        assert torch.allclose(grown.apply(hazy, torch.tensor([0.8, 0.8, 0.8]), coords),
                              base.apply(hazy, torch.tensor([0.8, 0.8, 0.8])), atol=1e-6)
        with pytest.raises(ValueError, match="frame coordinates"):
            grown.apply(hazy, torch.tensor([0.8, 0.8, 0.8]))


def test_an_airlight_branch_starts_from_the_dark_channel_estimate_and_learns_a_correction():
    from ispcli.models.dehaze import DehazeNet

    torch.manual_seed(0)
    plain = DehazeNet((8, 16), 1).eval()
    grown = DehazeNet((8, 16), 1, airlight_width=8).eval()
    grown.grow_from(plain.state_dict())
    clean = _image()
    hazy = haze.add_haze(clean, haze.depth_proxy(clean), [1.5], [[0.9, 0.85, 0.8]]).clamp(0, 1)
    with torch.no_grad():
        est = dehaze.image_airlight(hazy)
        assert torch.equal(plain.analyse(hazy), est) and torch.equal(grown.analyse(hazy), est)
        # trained on whole scenes it analyses its own input; the plain one is told the airlight
        assert torch.equal(grown(torch.cat([hazy, torch.zeros_like(hazy)], 1)),
                           plain(torch.cat([hazy, est.view(1, 3, 1, 1).expand_as(hazy)], 1)))
        torch.nn.init.normal_(grown.airlight_head[-1].weight, std=0.5)
        corrected = grown.analyse(hazy)
    assert not torch.allclose(corrected, est) and bool(((corrected >= 0.05) & (corrected <= 1)).all())
    with pytest.raises(RuntimeError, match="do not fit"):
        DehazeNet((8, 32), 1, airlight_width=8).grow_from(plain.state_dict())


def test_an_airlight_statistics_head_grows_onto_the_branch_and_reads_the_dark_channel():
    from ispcli.models.dehaze import STATS, DehazeNet, airlight_stats

    torch.manual_seed(0)
    branch = DehazeNet((8, 16), 1, airlight_width=8).eval()
    torch.nn.init.normal_(branch.airlight_head[-1].weight, std=0.1)     # as if trained
    grown = DehazeNet((8, 16), 1, airlight_width=8, airlight_stats=8).eval()
    grown.grow_from(branch.state_dict())
    clean = _image()
    light, heavy = (haze.add_haze(clean, haze.depth_proxy(clean), [b], [[0.9, 0.9, 0.9]]).clamp(0, 1)
                    for b in (0.3, 2.5))
    with torch.no_grad():
        assert torch.equal(grown.analyse(heavy), branch.analyse(heavy))
        stats = [airlight_stats(h, dehaze.image_airlight(h)) for h in (light, heavy)]
        assert stats[0].shape == (1, STATS)
        # thicker haze lifts the dark channel's median towards the airlight
        assert float(stats[1][0, 0]) > float(stats[0][0, 0]) + 0.1
        torch.nn.init.normal_(grown.stats_head[-1].weight, std=0.5)
        assert not torch.allclose(grown.analyse(heavy), branch.analyse(heavy))
    with pytest.raises(ValueError, match="airlight_width"):
        DehazeNet((8, 16), 1, airlight_stats=8)


# ---- blur ---------------------------------------------------------------------------------------

def test_blur_is_a_true_convolution_with_reflected_edges():
    from scipy import ndimage

    img = _image(40, 48)
    k = blur.trajectory_kernel(torch.Generator().manual_seed(1), size=9)
    out = blur.blur(img, k.unsqueeze(0))
    ref = np.stack([ndimage.convolve(img[0, c].double().numpy(), k.double().numpy(), mode="mirror")
                    for c in range(3)])
    assert np.abs(out[0].numpy() - ref).max() < 1e-5
    delta = torch.zeros(1, 5, 5)
    delta[0, 2, 2] = 1.0
    assert torch.allclose(blur.blur(img, delta), img)


def test_random_kernels_are_normalised_and_vary():
    g = torch.Generator().manual_seed(0)
    kernels = [blur.random_kernel(g) for _ in range(20)]
    for k in kernels:
        assert k.shape == (31, 31) and float(k.min()) >= 0 and abs(float(k.sum()) - 1) < 1e-5
    spreads = [float((k > 1e-3).sum()) for k in kernels]
    assert max(spreads) > 3 * min(spreads)


def test_benchmark_kernels_load_normalised(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((3, 3)) * 2)
    np.save(tmp_path / "even.npy", np.ones((4, 4)))
    (name, k), = blur.load_kernels(tmp_path)
    assert name == "a" and abs(float(k.sum()) - 1) < 1e-6


# ---- phone degradations and the enhancer --------------------------------------------------------

def test_phone_degradations_are_seeded_and_sometimes_identity():
    clean = torch.cat([_image(seed=i) for i in range(6)])
    a = phone.degrade(clean, torch.Generator().manual_seed(5))
    b = phone.degrade(clean, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == clean.shape
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(phone.degrade(clean, torch.Generator(), identity=1.0), clean)
    assert float((a - clean).abs().mean()) > 0.01


def test_enhance_pairs_degrade_only_plain_photos():
    clean = _image()
    other = _image(seed=9)
    batch = torch.cat([torch.cat([clean, clean], 1), torch.cat([other, clean], 1)])
    g = torch.Generator().manual_seed(1)
    while True:                      # find a seed whose first draw is not the identity
        x, t = degrade.enhance_pair(batch, g)
        if not torch.equal(x[0], clean[0]):
            break
    assert torch.equal(x[1], other[0]) and torch.equal(t, torch.cat([clean, clean]))


def test_enhancer_starts_as_the_identity_globally():
    net = EnhanceNet(channels=(8, 16), blocks=1).requires_grad_(False)
    x = _image()
    params = net.analyse(x)
    assert params.shape == (1, 12 + 3 * 16) and torch.count_nonzero(params) == 0
    assert torch.allclose(net.global_transform(x, params), x, atol=1e-5)
    # a predicted gain on the curve brightens monotonically
    p = params.clone()
    p[:, 12:] = 1.0
    y = net.global_transform(x, p)
    assert float((y - x).min()) > -1e-6 and float(y.mean()) > float(x.mean())


def test_enhancer_statistics_are_what_auto_levels_reads():
    from ispcli.models.enhance import QUANTILES, STATS, image_stats

    ramp = torch.linspace(0, 1, 1001).view(1, 1, 1, -1).expand(1, 3, 2, 1001).clone()
    ramp[:, 0] *= 0.5                                         # a cast: red at half
    stats = image_stats(ramp)[0]
    assert stats.shape == (STATS,)
    luma = torch.linspace(0, 1, 1001) * (0.5 * 0.2126 + 0.7152 + 0.0722)
    torch.testing.assert_close(stats[:len(QUANTILES)], torch.quantile(luma, torch.tensor(QUANTILES)))
    torch.testing.assert_close(stats[len(QUANTILES):len(QUANTILES) + 3], torch.tensor([0.25, 0.5, 0.5]))
    torch.testing.assert_close(stats[-3:], torch.tensor([0.495, 0.99, 0.99]))


def test_enhancer_statistics_head_grows_onto_a_trained_one_without_changing_it():
    torch.manual_seed(0)
    plain = EnhanceNet(channels=(8, 16), blocks=1)
    torch.nn.init.normal_(plain.head[-1].weight, std=0.1)     # as if trained: not the identity
    grown = EnhanceNet(channels=(8, 16), blocks=1, stats_width=16)
    grown.grow_from(plain.state_dict())
    x = _image()
    with torch.no_grad():
        assert torch.equal(grown.analyse(x), plain.analyse(x)) and torch.equal(grown(x), plain(x))
        torch.nn.init.normal_(grown.stats_head[-1].weight, std=0.1)
        assert not torch.allclose(grown.analyse(x), plain.analyse(x))
        # darker copy, other statistics, other parameters: the head reads exposure
        assert not torch.allclose(grown.analyse(x * 0.3) - plain.analyse(x * 0.3), grown.analyse(x) - plain.analyse(x))


def test_the_auto_head_blends_in_classical_auto_enhance_with_a_weight_it_predicts():
    from ispcli.isp import autoenhance

    torch.manual_seed(0)
    plain = EnhanceNet(channels=(8, 16), blocks=1, stats_width=16)
    torch.nn.init.normal_(plain.head[-1].weight, std=0.1)
    grown = EnhanceNet(channels=(8, 16), blocks=1, stats_width=16, auto_width=16)
    grown.grow_from(plain.state_dict())
    x = _image() * 0.4                                        # underexposed: auto levels has work to do
    with torch.no_grad():
        params = grown.analyse(x)
        own = plain.analyse(x)
        assert params.shape == (1, grown.n_params) and grown.n_params == own.shape[1] + len(autoenhance.PARAMS) + 1
        # the auto parameters are the whole image's, as the baseline measures them
        torch.testing.assert_close(params[:, own.shape[1]:-1], autoenhance.analyse(x))
        torch.testing.assert_close(params[:, :own.shape[1]], own)
        # a new head starts with an even blend of the two
        assert float(params[0, -1]) == 0.0
        auto, mine = autoenhance.auto_enhance(x), plain.global_transform(x, own)
        torch.testing.assert_close(grown.global_transform(x, params), (auto + mine) / 2)
        trust, ignore = params.clone(), params.clone()
        trust[:, -1], ignore[:, -1] = 30.0, -30.0
        torch.testing.assert_close(grown.global_transform(x, trust), auto)
        torch.testing.assert_close(grown.global_transform(x, ignore), mine)
        # the weight is the head's: trained apart from the rest (`--part auto`)
        torch.nn.init.normal_(grown.auto_head[-1].weight, std=0.5)
        assert not torch.equal(grown.analyse(x)[:, -1], params[:, -1])
    assert set(n for n, _ in grown.named_parameters() if n.startswith(grown.PARTS["auto"])) == \
        set(n for n, _ in grown.auto_head.named_parameters(prefix="auto_head"))


# ---- paired data ----------------------------------------------------------------------------------

def _pairs(tmp_path, n=8, size=(48, 64), odd=None):
    low, high = tmp_path / "low", tmp_path / "high"
    low.mkdir()
    high.mkdir()
    for i in range(n):
        img = (natural_image(*size, seed=i) * 255).astype(np.uint8)
        Image.fromarray(img // 4).save(low / f"{i}.png")
        Image.fromarray(img).save(high / f"{i}.png")
    if odd:
        Image.fromarray(np.zeros((*size, 3), np.uint8)).save(low / odd)
    return low, high


def test_held_out_pairs_are_spread_and_excluded(tmp_path):
    low, high = _pairs(tmp_path)
    names = data.pair_names(low, high)
    assert names == [f"{i}.png" for i in range(8)]
    assert data.held_out(names, 2) == ["0.png", "4.png"]
    arrays, used, held = data.load_pairs([(low, high)], 32, hold_out=2)
    assert held == ["0.png", "4.png"] and len(arrays) == 6 and "0.png" not in used
    assert arrays[0].shape == (48, 64, 6)


def test_pairs_without_a_partner_are_refused(tmp_path):
    low, high = _pairs(tmp_path, odd="stray.png")
    with pytest.raises(data.DataError, match="stray.png"):
        data.pair_names(low, high)


def test_train_enhance_on_pairs_records_what_it_held_out(tmp_path):
    low, high = _pairs(tmp_path, n=8)
    r = run_cli("train", "enhance", "--pairs", str(low), str(high), "--hold-out", "2", "--out", "e",
                "--run-dir", str(tmp_path / "run"), "--weights-dir", str(tmp_path / "w"), "--steps", "2",
                "--channels", "8,16", "--blocks", "1", "--patch", "32", "--batch", "2", "--threads", "1", "-q",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads((tmp_path / "w" / "manifest.json").read_text())["models"]
    assert entry["training"]["pairs_held_out"] == ["0.png", "4.png"]
    assert entry["training"]["loss"] == "dped" and entry["arch"] == "enhance-net"


@pytest.mark.parametrize("problem", ["pairs-for-denoise", "mismatch", "no-data"])
def test_bad_training_pairs_are_one_clear_line(tmp_path, problem):
    low, high = _pairs(tmp_path, odd="stray.png" if problem == "mismatch" else None)
    task = "denoise" if problem == "pairs-for-denoise" else "enhance"
    args = [] if problem == "no-data" else ["--pairs", str(low), str(high)]
    r = run_cli("train", task, *args, "--out", "e", "--run-dir", str(tmp_path / "run"), "--weights-dir",
                str(tmp_path / "w"), "--steps", "2", "--patch", "32", "--batch", "2", "-q", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    expected = {"pairs-for-denoise": "clean images only", "mismatch": "stray.png", "no-data": "--pairs"}
    assert expected[problem] in lines[0]
    assert not (tmp_path / "w").exists()
