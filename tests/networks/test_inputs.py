"""Real sentences from CPython's pydoc topics and real photos from scikit-image / scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.errors import ModelPackageError, NetworkInputError
from hfp8sim.networks import all_real_sentences, packages, real_photos, real_sentences

PHOTO_SHAPES = {
    "chelsea": (300, 451, 3), "coffee": (400, 600, 3), "rocket": (427, 640, 3), "motorcycle_left": (500, 741, 3),
    "astronaut": (512, 512, 3), "china": (427, 640, 3), "flower": (427, 640, 3),
}


def test_sentences_are_deterministic_distinct_and_sentence_shaped():
    chosen = real_sentences(50, seed=3)
    assert chosen == real_sentences(50, seed=3)
    assert chosen != real_sentences(50, seed=4)
    assert len(set(chosen)) == 50
    for sentence in chosen:
        assert 40 <= len(sentence) <= 200
        assert sentence[0].isupper() and sentence[-1] in ".!?"
        assert "  " not in sentence and "\n" not in sentence
    pool = all_real_sentences()
    assert len(pool) > 1000 and set(chosen) <= set(pool)


def test_too_many_sentences_is_a_clear_error():
    with pytest.raises(NetworkInputError, match=r"n must be between 1 and \d+ \(the sentences in pydoc_data.topics\)"):
        real_sentences(10**6)


def test_photos_are_rgb_uint8(photos):
    assert {name: image.shape for name, image in photos.items()} == PHOTO_SHAPES
    for image in photos.values():
        assert image.dtype == np.uint8 and image.std() > 20  # real pictures, not blank arrays
    only = real_photos(["flower"])
    assert list(only) == ["flower"]
    np.testing.assert_array_equal(only["flower"], photos["flower"])


def test_unknown_photo_name():
    with pytest.raises(NetworkInputError, match="unknown photo 'lena'; known: chelsea, coffee"):
        real_photos(["lena"])


def test_missing_photo_package_names_the_fix(monkeypatch):
    real_version = packages.installed_version
    monkeypatch.setattr(packages, "installed_version",
                        lambda p: None if p.name == "scikit-learn" else real_version(p))
    with pytest.raises(ModelPackageError, match=r"scikit-learn>=1.3 .* is not installed; run `hfp8sim fetch-models`"):
        real_photos(["china"])
    assert list(real_photos(["coffee"])) == ["coffee"]  # scikit-image photos do not need scikit-learn
