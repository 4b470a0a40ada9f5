"""Training data that is on the machine, never downloaded at run time.

* :func:`load_digits`: scikit-learn's bundled 8x8 digits (1797 images, 10 classes), the fast test path.
* :func:`load_fashion_mnist`: Fashion-MNIST (60000 + 10000 28x28 images, 10 classes) from the Debian package
  ``dataset-fashion-mnist`` (IDX gz files in ``/usr/share/datasets/fashion-mnist/``).  Another folder can be
  given as an argument or in ``HFP8SIM_FASHION_MNIST_DIR``.  A missing package raises a one-line
  :class:`~hfp8sim.errors.DatasetError` naming the ``apt-get install`` command.
* :func:`load_pydoc_text`: character-level English text from ``pydoc_data.topics`` (Python's own help
  topics, shipped with every CPython), split into train and validation by whole topics.

Images come as float32 NCHW arrays in [0, 1] (the layout of ``networks.ops.conv2d``), labels as int64.
:func:`minibatches` and :func:`text_windows` draw batches from a permutation seeded by ``(seed, epoch)``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hfp8sim.errors import DatasetError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "HFP8SIM_FASHION_MNIST_DIR"
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
DIGITS_CLASSES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class ImageDataset:
    """An image classification task: NCHW float32 images in [0, 1], int64 labels, class names."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])


def _read_only(*arrays: np.ndarray) -> None:
    # loaders are cached: a caller that writes into an array would change every later load
    for array in arrays:
        array.setflags(write=False)


# ---- scikit-learn digits --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def load_digits(test_fraction: float = 0.2) -> ImageDataset:
    """sklearn's 8x8 digits, pixel values 0..16 scaled to [0, 1]; a fixed seeded split (seed 0)."""
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:  # scikit-learn is in the `models` extra
        raise DatasetError("digits: scikit-learn is not installed; install it with "
                           "`pip install 'hfp8sim[models]'`") from None
    bunch = sklearn_digits()
    images = (bunch.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    n_test = int(round(len(labels) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    dataset = ImageDataset("digits", images[train], labels[train], images[test], labels[test], DIGITS_CLASSES)
    _read_only(dataset.train_images, dataset.train_labels, dataset.test_images, dataset.test_labels)
    return dataset


# ---- IDX files (the MNIST family's format) --------------------------------------------------------------


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (gzip-compressed when its name ends in .gz) of unsigned bytes, as a uint8 array.

    Header: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions, then each
    dimension as a big-endian uint32; the data follow, row-major.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: cannot read the IDX file ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (it must start with two zero bytes)")
    if raw[2] != 0x08:
        raise DatasetError(f"{path}: IDX element type 0x{raw[2]:02x} is not supported; only 0x08 (unsigned byte)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DatasetError(f"{path}: IDX header is truncated or has no dimensions")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        raise DatasetError(f"{path}: IDX shape {shape} needs {expected} data bytes, the file has {len(raw) - header}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape).copy()


def fashion_mnist_dir(root: str | os.PathLike | None = None) -> Path:
    """Where Fashion-MNIST is read from: ``root``, else ``$HFP8SIM_FASHION_MNIST_DIR``, else the package's folder."""
    if root is not None:
        return Path(root)
    override = os.environ.get(FASHION_MNIST_ENV)
    return Path(override) if override else FASHION_MNIST_DIR


def load_fashion_mnist(root: str | os.PathLike | None = None) -> ImageDataset:
    """Fashion-MNIST's 60000 training and 10000 test images (1x28x28, [0, 1]) and labels."""
    folder = fashion_mnist_dir(root)
    missing = [name for name in FASHION_MNIST_FILES.values() if not (folder / name).is_file()]
    if missing:
        where = "" if folder == FASHION_MNIST_DIR else f" (folder set by argument or ${FASHION_MNIST_ENV})"
        raise DatasetError(f"Fashion-MNIST: {missing[0]} not found in {folder}{where}; install the Debian package "
                           f"with `apt-get install -y {FASHION_MNIST_PACKAGE}`")
    return _load_fashion_mnist_from(folder.resolve())


@lru_cache(maxsize=2)
def _load_fashion_mnist_from(folder: Path) -> ImageDataset:
    arrays = {key: read_idx(folder / name) for key, name in FASHION_MNIST_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(f"{folder}: Fashion-MNIST {split} images {images.shape} and labels {labels.shape} "
                               f"do not match (want N x H x W images and N labels)")
        if labels.size and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
            raise DatasetError(f"{folder}: Fashion-MNIST {split} label {int(labels.max())} is not a class 0..9")

    def images_of(split: str) -> np.ndarray:
        return (arrays[f"{split}_images"].astype(np.float32) / np.float32(255.0))[:, None, :, :]

    dataset = ImageDataset("fashion_mnist", images_of("train"), arrays["train_labels"].astype(np.int64),
                           images_of("test"), arrays["test_labels"].astype(np.int64), FASHION_MNIST_CLASSES)
    _read_only(dataset.train_images, dataset.train_labels, dataset.test_images, dataset.test_labels)
    return dataset


# ---- character text -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CharText:
    """Character-level text: a vocabulary (its characters, sorted) and train/validation as id arrays."""

    vocabulary: str
    train: np.ndarray
    validation: np.ndarray
    train_topics: tuple[str, ...]
    validation_topics: tuple[str, ...]

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def encode(self, text: str) -> np.ndarray:
        index = {ch: i for i, ch in enumerate(self.vocabulary)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise DatasetError(f"text: characters {''.join(unknown)!r} are not in the vocabulary")
        return np.array([index[ch] for ch in text], np.int64)

    def decode(self, ids) -> str:
        return "".join(self.vocabulary[int(i)] for i in np.asarray(ids).reshape(-1))


@lru_cache(maxsize=4)
def load_pydoc_text(validation_fraction: float = 0.1) -> CharText:
    """Python's help topics (``pydoc_data.topics``) as one text per topic, topics in sorted order; the last
    topics, at least ``validation_fraction`` of the characters, are held out for validation.

    Whole topics are held out (not a random sample of windows), so no validation sentence was seen in training.
    The vocabulary is every character of the corpus (about 100), so validation text has no unknown characters.
    """
    if not 0.0 < validation_fraction < 0.5:
        raise DatasetError(f"text: validation_fraction must be in (0, 0.5), got {validation_fraction!r}")
    from pydoc_data.topics import topics

    names = sorted(topics)
    total = sum(len(topics[name]) for name in names)
    held_out = 0
    split = len(names)
    while held_out < validation_fraction * total:
        split -= 1
        held_out += len(topics[names[split]])
    train_text = "".join(topics[name] for name in names[:split])
    validation_text = "".join(topics[name] for name in names[split:])
    vocabulary = "".join(sorted(set(train_text) | set(validation_text)))
    lookup = np.zeros(max(map(ord, vocabulary)) + 1, np.int64)
    lookup[[ord(ch) for ch in vocabulary]] = np.arange(len(vocabulary))

    def ids(text: str) -> np.ndarray:
        array = lookup[np.frombuffer(text.encode("utf-32-le"), np.uint32)]
        array.setflags(write=False)
        return array

    return CharText(vocabulary, ids(train_text), ids(validation_text), tuple(names[:split]), tuple(names[split:]))


# ---- batching -------------------------------------------------------------------------------------------


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of ``n`` examples in one epoch: the same for the same (seed, epoch), new each epoch."""
    return np.random.default_rng((int(seed), int(epoch))).permutation(n)


def minibatches(images: np.ndarray, labels: np.ndarray, batch_size: int, *, seed: int, epoch: int,
                drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(images, labels) batches of one epoch in a seeded random order; the last may be short unless dropped."""
    if len(images) != len(labels):
        raise DatasetError(f"minibatches: {len(images)} images but {len(labels)} labels")
    if batch_size < 1:
        raise DatasetError(f"minibatches: batch_size must be >= 1, got {batch_size}")
    order = epoch_permutation(len(labels), seed, epoch)
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    for start in range(0, stop, batch_size):
        chosen = order[start:start + batch_size]
        yield images[chosen], labels[chosen]


def text_windows(ids: np.ndarray, context: int, batch_size: int, *, seed: int, epoch: int,
                 batches: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``batches`` batches of (input, target) windows of ``context`` characters, target = input shifted by one;
    window starts drawn from a generator seeded by (seed, epoch)."""
    if context < 1 or len(ids) < context + 1:
        raise DatasetError(f"text_windows: context {context} needs at least {context + 1} characters, "
                           f"the text has {len(ids)}")
    rng = np.random.default_rng((int(seed), int(epoch)))
    offsets = np.arange(context + 1)
    for _ in range(batches):
        starts = rng.integers(0, len(ids) - context, size=batch_size)
        windows = ids[starts[:, None] + offsets]
        yield windows[:, :-1], windows[:, 1:]


def evaluation_windows(ids: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole text cut into consecutive non-overlapping windows (for validation loss/perplexity)."""
    count = (len(ids) - 1) // context
    if count < 1:
        raise DatasetError(f"evaluation_windows: context {context} is longer than the text ({len(ids)} characters)")
    inputs = ids[:count * context].reshape(count, context)
    targets = ids[1:count * context + 1].reshape(count, context)
    return inputs, targets
