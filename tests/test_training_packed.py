"""The packed uint8 memmap cache: contents, reuse, invalidation, landmarks, skips, atomicity."""

from __future__ import annotations

import io

import numpy as np
import pytest

from lldif_bench.datasets.packed import open_packed, pack_dataset
from lldif_bench.datasets.record import Record
from lldif_bench.imageio import ImageDecodeError


class FakeDataset:
    """The adapter API the packer uses: root, records(), load(record), class_names."""

    class_names = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")

    def __init__(self, root, n=6, broken=()):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.broken = set(broken)
        self.loads = 0
        self.items = [Record(f"img/{i}.png", i % 7, "train" if i < n - 2 else "test") for i in range(n)]

    def records(self):
        return list(self.items)

    def load(self, record):
        self.loads += 1
        i = int(record.relpath.split("/")[1].split(".")[0])
        if i in self.broken:
            raise ImageDecodeError(f"{record.relpath}: truncated JPEG")
        if i % 2:  # grey, 20×10 (H×W)
            return np.full((20, 10, 1), 10 * i, dtype=np.uint8)
        img = np.zeros((30, 30, 3), dtype=np.uint8)
        img[..., 0] = 10 * i
        img[..., 2] = 200
        return img


def test_pack_contents_and_reuse(tmp_path):
    ds = FakeDataset(tmp_path / "ds")
    packed = pack_dataset(ds, 16, workers=2, progress=False)
    assert packed.path == tmp_path / "ds" / ".cache" / "packed-16"
    assert packed.images.shape == (6, 16, 16, 3) and packed.images.dtype == np.uint8
    assert isinstance(packed.images, np.memmap)
    assert (packed.images[1] == 10).all()                       # grey replicated to 3 channels
    assert (packed.images[2, ..., 0] == 20).all() and (packed.images[2, ..., 2] == 200).all()
    assert packed.labels.tolist() == [0, 1, 2, 3, 4, 5]
    assert packed.split_indices("train").tolist() == [0, 1, 2, 3] and packed.split_indices("test").tolist() == [4, 5]
    assert packed.landmarks is None and ds.loads == 6
    # a second run reuses the pack without decoding anything
    again = pack_dataset(ds, 16, progress=False)
    assert ds.loads == 6 and np.array_equal(np.asarray(again.images), np.asarray(packed.images))
    # another size is another pack; leftovers of the atomic write are gone
    pack_dataset(ds, 24, progress=False)
    assert ds.loads == 12
    assert sorted(p.name for p in (tmp_path / "ds" / ".cache").iterdir() if not p.name.endswith(".lock")) == \
        ["packed-16", "packed-24"]


def test_pack_is_rebuilt_when_the_records_change(tmp_path):
    ds = FakeDataset(tmp_path / "ds")
    pack_dataset(ds, 16, progress=False)
    ds.items[0] = Record("img/0.png", 6, "train")                  # a relabel
    packed = pack_dataset(ds, 16, progress=False)
    assert ds.loads == 12 and packed.labels[0] == 6
    ds.items = ds.items[:5]                                       # an item removed
    assert len(pack_dataset(ds, 16, progress=False).labels) == 5


def test_unreadable_images_are_counted_skips(tmp_path, caplog):
    ds = FakeDataset(tmp_path / "ds", broken={3})
    packed = pack_dataset(ds, 16, progress=False)
    assert packed.valid.tolist() == [True, True, True, False, True, True]
    assert 3 not in packed.split_indices("train")
    assert packed.meta["skipped"] == {"ImageDecodeError": 1}
    assert "skipped 1 of 6" in caplog.text


def test_landmarks_are_scaled_to_the_packed_size(tmp_path):
    ds = FakeDataset(tmp_path / "ds")
    pts = np.zeros((6, 68, 2), np.float32)
    pts[:, :, 0], pts[:, :, 1] = 5.0, 10.0
    pts[4] = np.nan                                               # an unreadable row
    buf = io.BytesIO()
    np.savez(buf, relpath=np.array([r.relpath for r in ds.items[:5]]), points=pts[:5],
             confidence=np.ones(5, np.float32), status=np.array(["detected"] * 5))
    (ds.root / "landmarks.npz").write_bytes(buf.getvalue())       # item 5 is absent from the file
    packed = pack_dataset(ds, 40, progress=False)
    lm = packed.landmarks
    assert lm.shape == (6, 68, 2)
    assert np.allclose(lm[0, :, 0], 5 * 40 / 30) and np.allclose(lm[0, :, 1], 10 * 40 / 30)  # 30×30 colour
    assert np.allclose(lm[1, :, 0], 5 * 40 / 10) and np.allclose(lm[1, :, 1], 10 * 40 / 20)  # 20×10 grey
    assert np.isfinite(lm).all() and packed.meta["landmarks"]["filled_with_canonical_shape"] == 2
    # a changed landmark file invalidates the pack
    buf2 = io.BytesIO()
    np.savez(buf2, relpath=np.array([r.relpath for r in ds.items]), points=np.ones((6, 68, 2), np.float32))
    (ds.root / "landmarks.npz").write_bytes(buf2.getvalue())
    assert pack_dataset(ds, 40, progress=False).meta["landmarks"]["filled_with_canonical_shape"] == 0


def test_cache_dir_and_unreadable_pack(tmp_path):
    ds = FakeDataset(tmp_path / "ds")
    packed = pack_dataset(ds, 16, cache_dir=tmp_path / "elsewhere", progress=False)
    assert packed.path == tmp_path / "elsewhere" / "packed-16" and not (ds.root / ".cache").exists()
    (packed.path / "labels.npy").write_bytes(b"junk")
    from lldif_bench.errors import UserError

    with pytest.raises(UserError, match="delete the folder"):
        open_packed(packed.path)
