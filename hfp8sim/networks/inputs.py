"""Real inputs that need no network access: English prose shipped with CPython, photos shipped with packages.

- Sentences come from ``pydoc_data.topics`` (the text of ``help()``, part of the standard library): every topic
  in name order, cut into paragraphs at blank lines; indented paragraphs (code, grammar) are skipped; the rest
  has its whitespace collapsed and is split after ``.``, ``!`` or ``?``; a sentence is kept when it is 40-200
  characters long, starts with a capital letter and ends with sentence punctuation, and is kept once.  The
  text, hence the pool, can change between CPython releases; the selection for a seed is fixed for a given one.
- Photos come from scikit-image (``skimage.data``) and scikit-learn (``load_sample_images``, which needs
  Pillow to decode its JPEGs); both are installed by ``hfp8sim fetch-models``.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from ..errors import NetworkInputError
from .packages import require

MIN_SENTENCE_CHARS = 40
MAX_SENTENCE_CHARS = 200
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")

# The photos real_photos() offers: five from scikit-image, then scikit-learn's two.
PHOTO_NAMES = ("chelsea", "coffee", "rocket", "motorcycle_left", "astronaut", "china", "flower")


@functools.cache
def all_real_sentences() -> tuple[str, ...]:
    """The whole pool of sentences :func:`real_sentences` draws from, in document order."""
    from pydoc_data.topics import topics

    seen: set[str] = set()
    pool = []
    paragraphs = (p for name in sorted(topics) for p in _PARAGRAPH_BREAK.split(topics[name]))
    for paragraph in paragraphs:
        if paragraph[:1].isspace():
            continue
        for sentence in _SENTENCE_END.split(" ".join(paragraph.split())):
            if (MIN_SENTENCE_CHARS <= len(sentence) <= MAX_SENTENCE_CHARS and sentence[0].isupper()
                    and sentence[-1] in ".!?" and sentence not in seen):
                seen.add(sentence)
                pool.append(sentence)
    return tuple(pool)


def real_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct English sentences of 40-200 characters from CPython's pydoc topics, chosen by ``seed``."""
    pool = all_real_sentences()
    if not 1 <= n <= len(pool):
        raise NetworkInputError(f"real_sentences: n must be between 1 and {len(pool)} (the sentences in "
                                f"pydoc_data.topics), got {n}")
    chosen = np.random.default_rng(seed).choice(len(pool), size=n, replace=False)
    return [pool[i] for i in chosen]


def real_photos(names: tuple[str, ...] | list[str] | None = None) -> dict[str, np.ndarray]:
    """Photos as ``{name: HxWx3 uint8 RGB array}`` (all of :data:`PHOTO_NAMES` by default)."""
    names = PHOTO_NAMES if names is None else tuple(names)
    unknown = [name for name in names if name not in PHOTO_NAMES]
    if unknown:
        raise NetworkInputError(f"unknown photo {unknown[0]!r}; known: {', '.join(PHOTO_NAMES)}")
    photos: dict[str, np.ndarray] = {}
    if any(name not in ("china", "flower") for name in names):
        require("scikit-image")
        import skimage.data

        loaders = {
            "chelsea": skimage.data.chelsea, "coffee": skimage.data.coffee, "rocket": skimage.data.rocket,
            "astronaut": skimage.data.astronaut,
            "motorcycle_left": lambda: skimage.data.stereo_motorcycle()[0],
        }
        photos.update({name: loaders[name]() for name in names if name in loaders})
    if "china" in names or "flower" in names:
        require("scikit-learn")
        require("pillow")  # load_sample_images decodes its JPEGs with Pillow
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        for file_name, image in zip(bunch.filenames, bunch.images):
            name = file_name.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".jpg")
            if name in names:
                photos[name] = image
    return {name: np.ascontiguousarray(photos[name], dtype=np.uint8) for name in names}
