"""MUNIT's flood ("climate") variant: masked cycle loss, semantic consistency through a loaded
segmenter, sim-to-real content adaptation, and a short learning run on the synthetic flood set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pixmorph.config import read_yaml
from pixmorph.data.flood import FloodDataset, prepare_mask
from pixmorph.data.images import list_images, read_image, to_tensor
from pixmorph.data.load_options import LoadOptions
from pixmorph.data.synth_flood import write_flood
from pixmorph.data.transforms import Augment
from pixmorph.errors import ConfigError, DataError
from pixmorph.losses.munit import domain_confusion, masked_l1, semantic_consistency
from pixmorph.methods.munit import MUNIT
from pixmorph.methods.settings import build_config
from pixmorph.nets.segmenter import load_segmenter
from pixmorph.nets.segnet import SegNet
from pixmorph.training.trainer import build_method, make_loader, seed_everything

CPU = torch.device("cpu")
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flood")
    write_flood(root, n=24, size=32, seed=0, test_fraction=1 / 3, sim_fraction=0.5)
    return root


@pytest.fixture(scope="module")
def segmenter_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SegNet scripted to a TorchScript file, as a segmentation run exports one."""
    torch.manual_seed(0)
    net = SegNet(in_ch=3, n_classes=4, width=4, depth=1)
    # batch-norm statistics of images in [-1, 1], so labels vary from pixel to pixel
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # a plain average over the batches below
    with torch.no_grad():
        for _ in range(4):
            net(torch.rand(4, 3, 16, 16) * 2 - 1)
    net.eval()
    path = tmp_path_factory.mktemp("seg") / "segmenter.pt"
    torch.jit.script(net).save(str(path))
    return path


def tree(root: Path, out: Path, crop: int = 32, batch: int = 4, **model) -> dict:
    """The climate weights at tiny size."""
    weights = {"gan_w": 3.0, "recon_x_w": 2.0, "recon_c_w": 2.0, "recon_s_w": 1.0}
    return {
        "method": "munit",
        "out": str(out),
        "data": {"root": str(root), "crop_size": crop, "load_size": 32},
        "train": {
            "batch_size": batch,
            "seed": 0,
            "precision": "fp32",
            "compile": False,
            "lr": 1e-3,
        },  # fmt: skip
        "model": {**MUNIT.tiny_settings["model"], "style_dim": 16, **weights, **model},
    }


def test_masked_pixels_get_exactly_zero_cycle_gradient():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    cycled = (torch.rand(2, 3, 8, 8) * 2 - 1).requires_grad_(True)
    mask = (torch.rand(2, 1, 8, 8) > 0.5).float()
    loss = masked_l1(cycled, x, mask)
    loss.backward()
    inside = mask.expand_as(x).bool()
    assert torch.all(cycled.grad[inside] == 0)
    assert torch.all(cycled.grad[~inside] != 0)  # every kept pixel pulls
    expected = ((x - cycled.detach()) * (1 - mask)).abs().mean()  # the definition
    assert loss.item() == pytest.approx(expected.item())


def test_masks_resize_by_nearest_and_follow_crop_and_flip():
    mask = torch.zeros(1, 20, 30)
    mask[:, 7:13, 11:19] = 1.0
    opt = LoadOptions(load_size=40, crop_size=32)
    aug = Augment(0.3, 0.8, True)
    out = prepare_mask(mask, (20, 30), opt, aug)
    assert out.shape == (1, 32, 32)
    assert set(out.unique().tolist()) <= {0.0, 1.0}  # nearest: no blended edge values
    # the same resize by nearest, crop and flip done by hand
    big = torch.nn.functional.interpolate(mask[None], size=(40, 40), mode="nearest")[0]
    x0, y0 = round(0.3 * 8), round(0.8 * 8)
    assert torch.equal(out, big[:, y0 : y0 + 32, x0 : x0 + 32].flip(-1))


def test_unmatched_mask_names_the_image(flood: Path, tmp_path: Path):
    masks = tmp_path / "masks"
    masks.mkdir()
    first = sorted((flood / "maskA").glob("*.png"))[0]
    for p in (flood / "maskA").glob("*.png"):  # the first mask under another stem
        (masks / (p.name if p != first else "other.png")).write_bytes(p.read_bytes())
    victim = sorted((flood / "trainA").glob("*.png"))[0]
    with pytest.raises(DataError, match=victim.name):
        FloodDataset(flood / "trainA", flood / "trainB", masks)


def test_semantic_term_is_zero_for_identical_images_and_grows_with_changes(segmenter_file: Path):
    seg = load_segmenter(segmenter_file)
    assert not any(p.requires_grad for p in seg.parameters())
    torch.manual_seed(1)
    src = torch.rand(2, 3, 16, 16) * 2 - 1
    other = torch.rand(2, 3, 16, 16) * 2 - 1
    no_mask = torch.zeros(2, 1, 16, 16)
    with torch.no_grad():
        logits_src = seg(src)
    assert semantic_consistency(seg(src), logits_src, no_mask).item() == 0.0
    losses = []
    for cols in (4, 8, 16):  # ever more of the image replaced: more labels change
        fake = src.clone()
        fake[..., :cols] = other[..., :cols]
        losses.append(semantic_consistency(seg(fake), logits_src, no_mask).item())
    assert 0 < losses[0] < losses[1] < losses[2], losses
    # gradients reach the translated image through the loaded network, none inside the mask
    fake = other.clone().requires_grad_(True)
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., :, 8:] = 1.0
    semantic_consistency(seg(fake), logits_src, mask).backward()
    assert fake.grad[..., :4].abs().sum() > 0


def test_onnx_segmenter_is_converted_or_refused_clearly(tmp_path: Path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ConfigError, match="onnx2torch"):
        load_segmenter(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_segmenter(tmp_path / "missing.pt")


def test_adaptation_trains_the_classifier_and_reaches_the_content_encoder(
    flood: Path, tmp_path: Path
):
    """One step: the classifier has its own optimizer and moves; the encoder gets the term."""
    cfg = build_config(tree(flood, tmp_path / "run", batch=2, adv_w=6.0, cls_dim=8))
    seed_everything(0)
    method = build_method(cfg, CPU)
    assert set(method.optimizers()) == {"g", "d", "c"}
    batch = next(iter(make_loader(method.make_dataset(cfg, True), cfg, 0, CPU)))
    assert batch["sim"].shape == batch["a"].shape
    before = [p.detach().clone() for p in method.cls.parameters()]
    out = method.train_step(batch, 1)
    assert 0.0 <= out["cls_acc"] <= 1.0 and out["adv_content"] >= 0.0
    assert any(not torch.equal(p, q) for p, q in zip(before, method.cls.parameters(), strict=True))
    # the confusion term's gradient reaches the content encoder and not the classifier
    method.gen_a.zero_grad()
    c_real = method.gen_a.enc_content(batch["a"])
    c_sim = method.gen_a.enc_content(batch["sim"])
    domain_confusion(method.cls(c_real), method.cls(c_sim)).backward()
    grads = [p.grad for p in method.gen_a.enc_content.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0


def test_flood_recipe_parses_with_the_climate_weights(segmenter_file: Path):
    t = read_yaml(CONFIGS / "flood.yaml")
    t["model"]["segmenter"] = str(segmenter_file)
    m = build_config(t).model
    assert (m.gan_w, m.recon_x_w, m.recon_c_w, m.recon_s_w) == (3, 2, 2, 1)
    assert (m.recon_x_cyc_w, m.semantic_w, m.adv_w, m.style_dim) == (12, 4, 6, 16)
    assert m.masked_cycle


def _load(root: Path, folder: str) -> torch.Tensor:
    return torch.stack([to_tensor(read_image(p)) for p in list_images(root / folder)])


def _flood_run(flood: Path, out: Path, steps: int, **model) -> tuple[float, float]:
    """(L1 outside the mask against testA, mean-colour gap to testB inside it) after training."""
    cfg = build_config(tree(flood, out, **model))
    seed_everything(0)
    method = build_method(cfg, CPU)
    loader = make_loader(method.make_dataset(cfg, True), cfg, 0, CPU)
    batches = iter(loader)
    for step in range(1, steps + 1):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        method.train_step(batch, step)
    return _scores(flood, method)


def _scores(flood: Path, method: MUNIT) -> tuple[float, float]:
    test_a, test_b = _load(flood, "testA"), _load(flood, "testB")
    mask = (_load(flood, "testmaskA")[:, :1] > 0).float()  # (N, 1, H, W)
    fake = method.translate(test_a, "AtoB")
    keep = 1 - mask
    preserve = ((fake - test_a).abs() * keep).sum() / (3 * keep.sum())

    def colour(x: torch.Tensor) -> torch.Tensor:
        return (x * mask).sum((0, 2, 3)) / mask.sum()  # (3,) mean colour inside the mask

    return preserve.item(), (colour(fake) - colour(test_b)).abs().mean().item()


@pytest.mark.slow
def test_masked_cycle_run_floods_the_masked_region(flood: Path, tmp_path: Path):
    """30 steps with the masked cycle term: the water region's colour moves towards testB's."""
    cfg = build_config(tree(flood, tmp_path / "init"))
    seed_everything(0)
    _, gap_start = _scores(flood, build_method(cfg, CPU))
    # Preservation outside the mask against a run without the cycle term did not show a
    # stable margin at this size (0.58 vs 0.54 L1 here; other seeds the other way round).
    # test_masked_cycle_preserves_the_scene_outside_the_mask does, at 16 px and batch 2.
    _, gap_on = _flood_run(flood, tmp_path / "on", 30, recon_x_cyc_w=12.0, masked_cycle=True)
    assert gap_on < 0.75 * gap_start, (gap_on, gap_start)  # the water region moved towards B


def test_adaptation_step_runs_under_bf16_autocast(flood: Path, tmp_path: Path):
    """The classifier sees bf16 content codes under autocast (it once ran outside: dtype error)."""
    t = tree(flood, tmp_path / "run", batch=2, adv_w=6.0, cls_dim=8)
    t["train"]["precision"] = "bf16"
    cfg = build_config(t)
    seed_everything(0)
    method = build_method(cfg, CPU)
    batch = next(iter(make_loader(method.make_dataset(cfg, True), cfg, 0, CPU)))
    out = method.train_step(batch, 1)
    assert torch.isfinite(torch.tensor(out["adv_content"])) and out["adv_content"] >= 0.0
    assert 0.0 <= out["cls_acc"] <= 1.0


# --- issue 14's learning tests: 16 px, width 8, batch 2, lr 1e-3, 160 steps per run ---


@pytest.fixture(scope="module")
def flood16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flood16")
    write_flood(root, n=24, size=16, seed=0, test_fraction=1 / 3, sim_fraction=0.5)
    return root


@pytest.fixture
def one_thread():
    """One intra-op thread: the measured values below were taken so (reduction order differs
    with the thread count), and steps this small are faster without a thread pool."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train16(root: Path, out: Path, seed: int, steps: int, **model) -> MUNIT:
    """A 16-px MUNIT trained `steps` steps at batch 2; one discriminator scale of 2 layers."""
    small = {"dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "num_scales": 1, "dis_layers": 2}
    cfg = build_config({
        "method": "munit",
        "out": str(out),
        "data": {"root": str(root), "crop_size": 16, "load_size": 16},
        "train": {"batch_size": 2, "seed": seed, "precision": "fp32", "compile": False, "lr": 1e-3},
        "model": {**small, "style_dim": 8, **model},
    })  # fmt: skip
    seed_everything(seed)
    method = build_method(cfg, CPU)
    loader = make_loader(method.make_dataset(cfg, True), cfg, 0, CPU)
    step = 0
    while step < steps:
        for batch in loader:
            step += 1
            method.train_step(batch, step)
            if step == steps:
                break
    return method


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_masked_cycle_preserves_the_scene_outside_the_mask(flood16: Path, tmp_path: Path):
    """Masked cycle (recon_x_cyc_w 12) against the same run with no cycle term (weight 0)."""
    test_a = _load(flood16, "testA")
    keep = 1 - (_load(flood16, "testmaskA")[:, :1] > 0).float()  # (N, 1, H, W), 1 = stays dry

    def outside_l1(method: MUNIT) -> float:
        fake = method.translate(test_a, "AtoB")
        return (((fake - test_a).abs() * keep).sum() / (3 * keep.sum())).item()

    on = outside_l1(_train16(flood16, tmp_path / "on", 0, 160, recon_x_cyc_w=12.0,
                             masked_cycle=True))  # fmt: skip
    off = outside_l1(_train16(flood16, tmp_path / "off", 0, 160))
    # Measured L1 outside the mask, on / off, seeds 0-4: 0.36/0.58, 0.52/0.59, 0.47/0.75,
    # 0.25/0.27, 0.49/0.60: ahead on every seed, by 0.015 at the least (seed 3; at weight 30
    # too). At batch 4 and 100 steps the order flipped with the seed (0.58 vs 0.45).
    assert on < off - 0.01, (on, off)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_adaptation_pushes_the_classifier_towards_chance(flood16: Path, tmp_path: Path):
    """adv_w 30 against adv_w 1e-6 (the classifier trains alike, the encoder ignores it)."""
    held = tmp_path / "held"  # other scenes: real dry streets and simulated ones
    write_flood(held, n=16, size=16, seed=1, test_fraction=0.0, sim_fraction=1.0)
    real, sim = _load(held, "trainA"), _load(held, "simA")

    def accuracy(method: MUNIT) -> float:
        with torch.no_grad():
            logit_real = method.cls(method.gen_a.enc_content(real))
            logit_sim = method.cls(method.gen_a.enc_content(sim))
        right = (logit_real > 0).sum() + (logit_sim <= 0).sum()
        return right.item() / (logit_real.numel() + logit_sim.numel())

    adv = accuracy(_train16(flood16, tmp_path / "adv", 0, 160, adv_w=30.0, cls_dim=8))
    free = accuracy(_train16(flood16, tmp_path / "free", 0, 160, adv_w=1e-6, cls_dim=8))
    # Measured held-out accuracy, adv_w 30 / 1e-6, seeds 0-4: 0.66/0.94, 0.56/0.94, 0.53/0.84,
    # 0.59/0.84, 0.56/0.84 (chance 0.5): the classifier learns the codes apart when left alone,
    # and the encoder's confusion term keeps it near chance.
    assert free > 0.8, free
    assert adv < 0.75 and adv < free - 0.15, (adv, free)
