"""Datasets: digits, the IDX reader on files written here, the real Fashion-MNIST package, pydoc text, batching."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from hfp8sim.errors import DatasetError, Hfp8SimError
from hfp8sim.training.data import (
    FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, FASHION_MNIST_ENV, FASHION_MNIST_FILES, epoch_permutation,
    evaluation_windows, load_digits, load_fashion_mnist, load_pydoc_text, minibatches, read_idx, text_windows,
)


def write_idx(path, array: np.ndarray, *, compress: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def write_tiny_fashion_mnist(folder, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)), "train_labels": np.arange(n_train) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28)), "test_labels": (np.arange(n_test) * 3) % 10,
    }
    for key, name in FASHION_MNIST_FILES.items():
        write_idx(folder / name, arrays[key])
    return arrays


# ---- digits ---------------------------------------------------------------------------------------------


def test_digits_shapes_classes_and_split():
    digits = load_digits()
    assert digits.train_images.shape == (1438, 1, 8, 8) and digits.test_images.shape == (359, 1, 8, 8)
    assert digits.train_images.dtype == np.float32 and digits.train_labels.dtype == np.int64
    assert digits.classes == tuple("0123456789") and digits.image_shape == (1, 8, 8)
    assert set(np.unique(digits.train_labels)) == set(range(10)) == set(np.unique(digits.test_labels))
    assert digits.train_images.min() == 0.0 and digits.train_images.max() == 1.0
    # the split is fixed: loading again (cache or not) gives the same test labels
    assert np.bincount(digits.test_labels).sum() == 359
    assert load_digits.__wrapped__().test_labels.tolist() == digits.test_labels.tolist()


# ---- IDX files and Fashion-MNIST -----------------------------------------------------------------------


def test_read_idx_parses_gz_and_plain_files(tmp_path):
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4) * 10
    write_idx(tmp_path / "images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "labels-idx1-ubyte", np.array([7, 2]), compress=False)
    parsed = read_idx(tmp_path / "images-idx3-ubyte.gz")
    assert parsed.dtype == np.uint8 and parsed.shape == (2, 3, 4)
    np.testing.assert_array_equal(parsed, images)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels-idx1-ubyte"), [7, 2])


@pytest.mark.parametrize("content, text", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
    (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x05\x00\x00\x00", "element type 0x0d is not supported"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", "header is truncated"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x06", "IDX shape (3,) needs 3 data bytes, the file has 2"),
])
def test_read_idx_rejects_bad_files_with_one_line(tmp_path, content, text):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as info:
        read_idx(path)
    assert text in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_read_idx_rejects_a_corrupt_gzip(tmp_path):
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DatasetError, match="cannot read the IDX file"):
        read_idx(path)


def test_fashion_mnist_reader_on_a_tiny_folder(tmp_path, monkeypatch):
    arrays = write_tiny_fashion_mnist(tmp_path)
    dataset = load_fashion_mnist(tmp_path)
    assert dataset.train_images.shape == (6, 1, 28, 28) and dataset.test_images.shape == (4, 1, 28, 28)
    np.testing.assert_array_equal(dataset.train_images[:, 0] * 255, arrays["train_images"])
    np.testing.assert_array_equal(dataset.test_labels, [0, 3, 6, 9])
    assert dataset.classes == FASHION_MNIST_CLASSES and len(dataset.classes) == 10
    # the environment variable points the loader at a folder too
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path))
    np.testing.assert_array_equal(load_fashion_mnist().train_labels, arrays["train_labels"])


def test_missing_package_is_one_line_naming_the_apt_get_command(tmp_path, monkeypatch):
    monkeypatch.delenv(FASHION_MNIST_ENV, raising=False)
    monkeypatch.setattr("hfp8sim.training.data.FASHION_MNIST_DIR", tmp_path / "not-installed")
    with pytest.raises(DatasetError) as info:
        load_fashion_mnist()
    message = str(info.value)
    assert isinstance(info.value, Hfp8SimError) and "\n" not in message
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert f"train-images-idx3-ubyte.gz not found in {tmp_path / 'not-installed'};" in message
    # an override folder that lacks the files says that the folder came from the override
    with pytest.raises(DatasetError, match=rf"\(folder set by argument or \${FASHION_MNIST_ENV}\)"):
        load_fashion_mnist(tmp_path)


def test_mismatched_images_and_labels_are_rejected(tmp_path):
    write_tiny_fashion_mnist(tmp_path)
    write_idx(tmp_path / FASHION_MNIST_FILES["test_labels"], np.array([1, 2, 3]))
    with pytest.raises(DatasetError, match="test images .* and labels .* do not match"):
        load_fashion_mnist(tmp_path)


def test_real_fashion_mnist_from_the_debian_package(monkeypatch):
    # .ci/run installs dataset-fashion-mnist with apt-get; this test reads the real files (no skip)
    monkeypatch.delenv(FASHION_MNIST_ENV, raising=False)
    dataset = load_fashion_mnist()
    assert dataset.train_images.shape == (60000, 1, 28, 28) and dataset.test_images.shape == (10000, 1, 28, 28)
    # Fashion-MNIST is balanced: 6000 training and 1000 test images of each of the 10 classes
    assert np.bincount(dataset.train_labels, minlength=10).tolist() == [6000] * 10
    assert np.bincount(dataset.test_labels, minlength=10).tolist() == [1000] * 10
    assert dataset.train_images.min() == 0.0 and dataset.train_images.max() == 1.0
    assert not dataset.train_images.flags.writeable
    assert str(FASHION_MNIST_DIR) == "/usr/share/datasets/fashion-mnist"


# ---- pydoc text -----------------------------------------------------------------------------------------


def test_pydoc_text_split_is_deterministic_and_disjoint():
    text = load_pydoc_text()
    again = load_pydoc_text.__wrapped__()
    assert text.train_topics == again.train_topics and text.validation_topics == again.validation_topics
    np.testing.assert_array_equal(text.validation, again.validation)
    assert not set(text.train_topics) & set(text.validation_topics)
    from pydoc_data.topics import topics

    assert set(text.train_topics) | set(text.validation_topics) == set(topics)
    total = len(text.train) + len(text.validation)
    assert total == sum(len(v) for v in topics.values())
    # the held-out part is at least 10% of the characters, and no more than one topic beyond it
    assert 0.1 <= len(text.validation) / total
    assert len(text.validation) - len(topics[text.validation_topics[0]]) < 0.1 * total
    assert text.decode(text.validation[:200]) == "".join(topics[t] for t in text.validation_topics)[:200]


def test_pydoc_text_vocabulary_and_round_trip():
    text = load_pydoc_text()
    assert list(text.vocabulary) == sorted(set(text.vocabulary))
    assert {"a", "Z", " ", "\n", "(", "_"} <= set(text.vocabulary)
    assert 60 < text.vocab_size < 200
    assert text.train.max() == text.vocab_size - 1 or text.validation.max() == text.vocab_size - 1
    ids = text.encode("def f(x):\n    return x")
    assert text.decode(ids) == "def f(x):\n    return x"
    with pytest.raises(DatasetError, match="not in the vocabulary"):
        text.encode("\u2603")


# ---- batching -------------------------------------------------------------------------------------------


def test_minibatches_cover_the_epoch_once_in_a_seeded_order():
    images = np.arange(10, dtype=np.float32)[:, None]
    labels = np.arange(10)
    batches = list(minibatches(images, labels, 4, seed=1, epoch=0))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    np.testing.assert_array_equal(seen, epoch_permutation(10, 1, 0))
    np.testing.assert_array_equal(np.concatenate([b[0][:, 0] for b in batches]), seen)
    again = np.concatenate([b[1] for b in minibatches(images, labels, 4, seed=1, epoch=0)])
    np.testing.assert_array_equal(seen, again)
    next_epoch = np.concatenate([b[1] for b in minibatches(images, labels, 4, seed=1, epoch=1)])
    assert not np.array_equal(seen, next_epoch)
    assert [len(b[1]) for b in minibatches(images, labels, 4, seed=1, epoch=0, drop_last=True)] == [4, 4]


def test_text_windows_are_shifted_by_one_and_seeded():
    ids = np.arange(100)
    x, y = next(text_windows(ids, 8, 5, seed=3, epoch=0, batches=1))
    assert x.shape == y.shape == (5, 8)
    np.testing.assert_array_equal(y, x + 1)
    x2, _ = next(text_windows(ids, 8, 5, seed=3, epoch=0, batches=1))
    np.testing.assert_array_equal(x, x2)
    inputs, targets = evaluation_windows(ids, 8)
    assert inputs.shape == (12, 8)
    np.testing.assert_array_equal(targets, inputs + 1)
    with pytest.raises(DatasetError, match="needs at least 101 characters"):
        next(text_windows(ids, 100, 1, seed=0, epoch=0, batches=1))
