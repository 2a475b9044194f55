"""Images for neural art: the bundled photographs' splits, random crops, and the drawn styles."""

import numpy as np
import pytest
import torch
from PIL import Image

from l2o.data import art_images
from l2o.data.idx import DataError


def fake_photos(tmp_path):
    rng = np.random.default_rng(0)
    files = {}
    for i, name in enumerate(art_images.FILES):
        path = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (60 + 10 * i, 80, 3), dtype=np.uint8)).save(path)
        files[name] = path
    return files


def test_splits_are_disjoint_photographs_and_crops_come_from_them(tmp_path):
    assert not set.intersection(*(set(v) for v in art_images.SPLITS.values()))
    assert set().union(*art_images.SPLITS.values()) == set(art_images.FILES)
    files = fake_photos(tmp_path)
    test = art_images.photos("test", files)
    assert [tuple(p.shape) for p in test] == [(3, 90, 80), (3, 100, 80)]  # rocket, retina (generated here)
    a, b = art_images.crops(test, 6, 32, seed=3), art_images.crops(test, 6, 32, seed=3)
    assert a.shape == (6, 3, 32, 32) and torch.equal(a, b) and 0 <= float(a.min()) and float(a.max()) <= 1
    assert not torch.equal(a, art_images.crops(test, 6, 32, seed=4))
    with pytest.raises(DataError, match="ship in the scikit-image and scikit-learn wheels"):
        art_images.photos("train", {k: v for k, v in files.items() if k != "china"})


def test_photo_files_lists_only_what_is_on_disk():
    found = art_images.photo_files()
    assert set(found) <= set(art_images.FILES) and all(p.is_file() for p in found.values())


def test_drawn_styles_are_fixed_by_their_seed():
    for name in art_images.STYLES:
        s = art_images.style_image(name, 48, seed=1)
        assert s.shape == (3, 48, 48) and 0 <= float(s.min()) and float(s.max()) <= 1 and float(s.std()) > 0.1
        assert torch.equal(s, art_images.style_image(name, 48, seed=1))
        assert not torch.equal(s, art_images.style_image(name, 48, seed=2))
    glass = art_images.style_image("stained-glass", 64)
    assert float((glass.sum(0) == 0).float().mean()) > 0.02  # the dark leading between panes
    with pytest.raises(ValueError, match="unknown style 'scream'"):
        art_images.style_image("scream", 32)


def test_the_registered_art_family_draws_its_content_from_the_photographs(tmp_path, monkeypatch):
    from l2o.tasks import make_family
    from l2o.tasks.art import POOL

    files = fake_photos(tmp_path)
    monkeypatch.setattr(art_images, "photo_files", lambda: files)
    fam = make_family("art", size=32, style="swirls")
    assert not fam.contents  # each split is cropped when first sampled
    assert {k: tuple(fam.contents[k].shape) for k in POOL} == {k: (n, 3, 32, 32) for k, n in POOL.items()}
    assert torch.equal(fam.style, art_images.style_image("swirls", 32)) and fam.config()["style"] == "swirls"
    task = fam.sample("test", 0, 2)
    assert task.loss(task.init_params()).shape == (2,)
    monkeypatch.setattr(art_images, "photo_files", lambda: {})
    with pytest.raises(DataError, match="pip install scikit-image scikit-learn"):
        make_family("art", size=32)
