"""Dataset adapters on exact-layout fixtures: parsing, label maps, protocols, bad input (no build)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from fixtures_datasets import (
    damage,
    make_fer,
    make_ferplus_images,
    make_folder,
    make_kdef,
    make_rafdb,
    write,
)

from lldif_bench.datasets import ADAPTERS, open_dataset
from lldif_bench.emotions import CANONICAL, CANONICAL_8
from lldif_bench.errors import UserError
from lldif_bench.imageio import ImageDecodeError


def split_counts(records):
    return dict(Counter(r.split for r in records))


# -- RAF-DB -------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", [
    {}, {"newline": "\r\n"}, {"final_newline": True}, {"label_name": "list_partition_label.txt"},
    {"folder": "raf-basic", "newline": "\r\n", "final_newline": True}])
def test_rafdb_label_file_variants(tmp_path, variant):
    root = make_rafdb(tmp_path, original=False, **variant)
    for src in (root, tmp_path):  # basic/ itself or its parent
        ds = ADAPTERS.get("rafdb")(src)
        recs = ds.records()
        assert split_counts(recs) == {"train": 14, "test": 7}
        assert sorted(Counter(r.label for r in recs if r.split == "train").values()) == [2] * 7
        assert {r.label for r in recs} == set(range(7))
        assert all(r.relpath.startswith("Image/aligned/") and r.relpath.endswith("_aligned.jpg") for r in recs)
        assert recs[0].native_label == "1" and recs[0].label == 0
        assert ds.class_names == list(CANONICAL) and ds.skipped == []


def test_rafdb_load_and_original_images(tmp_path):
    make_rafdb(tmp_path)
    ds = ADAPTERS.get("rafdb")(tmp_path, images="original")
    rec = ds.records()[0]
    assert rec.relpath == "Image/original/train_00001.jpg"
    img = ds.load(rec)
    assert img.dtype == np.uint8 and img.shape == (150, 120, 3)
    assert any(rel.startswith("Annotation/") for _, rel in ds.label_files())


def test_rafdb_bad_lines_and_missing_files_are_skipped(tmp_path):
    root = make_rafdb(tmp_path, original=False)
    label = root / "EmoLabel" / "list_patition_label.txt"
    label.write_text(label.read_text() + "\ntrain_99999.jpg\ntest_0008.jpg 9\nbogus_1.jpg 3\n")
    damage(root / "Image" / "aligned" / "test_0003_aligned.jpg", "delete")
    ds = ADAPTERS.get("rafdb")(root)
    assert len(ds.records()) == 20
    reasons = [r.split(":")[0] for _, r in ds.skipped]
    assert Counter(reasons) == {"malformed-label": 3, "missing-file": 1}
    assert any("test_0003_aligned.jpg" in key for key, _ in ds.skipped)


def test_rafdb_wrong_src_and_all_missing(tmp_path):
    with pytest.raises(UserError, match="list_patition_label.txt"):
        ADAPTERS.get("rafdb")(tmp_path)
    root = make_rafdb(tmp_path, original=False)
    for p in (root / "Image" / "aligned").iterdir():
        p.unlink()
    with pytest.raises(UserError, match="train_00001_aligned.jpg.*Unzip"):
        ADAPTERS.get("rafdb")(root).records()


def test_load_raises_decode_error(tmp_path):
    root = make_rafdb(tmp_path, original=False)
    ds = ADAPTERS.get("rafdb")(root)
    rec = ds.records()[0]
    damage(root / rec.relpath, "garbage")
    with pytest.raises(ImageDecodeError):
        ds.load(rec)


# -- FER2013 / FERPlus --------------------------------------------------------------------------
def fer(tmp_path, protocol="ferplus_lldif", **kw):
    make_fer(tmp_path, **{k: v for k, v in kw.items() if k in ("icml", "header_2016", "label_csv", "crlf")})
    return ADAPTERS.get("ferplus")(tmp_path, protocol=protocol,
                                   **{k: v for k, v in kw.items() if k == "include_valid"})


def test_ferplus_lldif_protocol_uses_every_row(tmp_path):
    ds = fer(tmp_path)
    recs = ds.records()
    assert split_counts(recs) == {"train": 7, "test": 14}
    assert ds.class_names == list(CANONICAL_8)
    by_row = {r.extra["row"]: r for r in recs}
    assert by_row[1].native_label == "fer2013:disgust"  # NF row, no emotion votes: FER2013 label
    assert by_row[2].native_label == "neutral"  # 3,3,2 tie -> first FER+ column
    assert CANONICAL_8[by_row[3].label] == "contempt"
    assert CANONICAL_8[by_row[0].label] == "anger"  # FER2013 0 = angry, FER+ votes agree
    img = ds.load(by_row[5])
    assert img.shape == (48, 48, 1) and img.dtype == np.uint8
    assert recs[0].relpath == "fer2013.csv#0"


@pytest.mark.parametrize("protocol,include_valid,expected", [
    ("ferplus_majority8", False, {"train": 4, "test": 7}),
    ("ferplus_majority8", True, {"train": 11, "test": 7}),
    ("ferplus_majority7", False, {"train": 3, "test": 7}),
    ("fer2013_orig7", False, {"train": 7, "test": 14}),
])
def test_ferplus_protocol_counts(tmp_path, protocol, include_valid, expected):
    ds = fer(tmp_path, protocol, include_valid=include_valid)
    assert split_counts(ds.records()) == expected
    assert len(ds.build_records()) == 21  # the copy still holds every row
    unused = {r.extra["row"]: r.native_label for r in ds.build_records() if r.split == "unused"}
    if protocol.startswith("ferplus_majority"):
        assert unused[1] == "no-image-name" and unused[2] == "no-majority" and unused[4] == "duplicate-name"
    if protocol == "ferplus_majority7":
        assert unused[3] == "contempt-dropped" and ds.class_names == list(CANONICAL)


def test_ferplus_header_variants_agree(tmp_path):
    base = fer(tmp_path / "a").records()
    icml = fer(tmp_path / "b", icml=True, crlf=True).records()
    old = fer(tmp_path / "c", header_2016=True).records()
    assert [(r.label, r.split) for r in base] == [(r.label, r.split) for r in icml] == \
        [(r.label, r.split) for r in old]


def test_ferplus_majority_prefers_label_csv_votes(tmp_path):
    without = {r.extra["row"]: r for r in fer(tmp_path / "a", "ferplus_majority8").records()}
    with_lc = {r.extra["row"]: r for r in fer(tmp_path / "b", "ferplus_majority8", label_csv=True).records()}
    assert CANONICAL_8[without[0].label] == "anger" and CANONICAL_8[with_lc[0].label] == "happiness"


def test_ferplus_script_folder_layout(tmp_path):
    root = make_ferplus_images(tmp_path)
    pngs = sorted(p.name for p in (root / "data").rglob("*.png"))
    assert len(pngs) == 19  # empty name skipped, the repeated name written once
    ds = ADAPTERS.get("ferplus")(root, protocol="ferplus_majority8")
    assert split_counts(ds.records()) == {"train": 4, "test": 7}
    ds = ADAPTERS.get("ferplus")(root)
    assert split_counts(ds.records()) == {"train": 5, "test": 14}
    assert ds.load(ds.records()[0]).shape == (48, 48, 1)
    with pytest.raises(UserError, match="fer2013.csv"):
        ADAPTERS.get("ferplus")(root, protocol="fer2013_orig7")


def test_ferplus_refuses_unlabelled_and_wrong_src(tmp_path):
    write(tmp_path / "test.csv", b"pixels\n1 2 3\n")
    with pytest.raises(UserError, match="no labels"):
        ADAPTERS.get("ferplus")(tmp_path)
    with pytest.raises(UserError, match="fer2013.csv"):
        ADAPTERS.get("ferplus")(tmp_path / "..")
    make_fer(tmp_path / "x")
    (tmp_path / "x" / "FERPlus" / "fer2013new.csv").unlink()
    with pytest.raises(UserError, match="fer2013new.csv"):
        ADAPTERS.get("ferplus")(tmp_path / "x")
    assert len(ADAPTERS.get("ferplus")(tmp_path / "x", protocol="fer2013_orig7").records()) == 21


def test_ferplus_malformed_rows_are_skipped(tmp_path):
    make_fer(tmp_path)
    csv_path = tmp_path / "fer2013" / "fer2013.csv"
    lines = csv_path.read_text().splitlines()
    lines[3] = "2,1 2 3,Training"  # too few pixels
    lines[5] = "x,Training"  # wrong field count
    csv_path.write_text("\n".join(lines) + "\n")
    ds = ADAPTERS.get("ferplus")(tmp_path)
    assert len(ds.records()) == 19
    assert [k for k, _ in ds.skipped] == ["fer2013.csv#2", "fer2013.csv#4"]
    assert all(r.startswith("malformed-label") for _, r in ds.skipped)


# -- KDEF ---------------------------------------------------------------------------------------
def test_kdef_layout_labels_and_anomalies(tmp_path):
    root = make_kdef(tmp_path)
    for src in (root, root / "KDEF", tmp_path):
        ds = ADAPTERS.get("kdef")(src)
        recs = ds.records()
        assert len(recs) == 140 and ds.skipped == []
        assert {r.subject for r in recs} == {"F01", "M02"}
    renamed = [a for a in ds.anomalies if a["kind"] == "renamed"]
    assert renamed == [{"relpath": "KDEF/AM02/AM02V.JPG", "kind": "renamed",
                        "detail": "unparseable name assigned to the only free slot SAHL"}]
    rec = next(r for r in recs if r.relpath == "KDEF/AM02/AM02V.JPG")
    assert (rec.native_label, rec.angle, CANONICAL[rec.label]) == ("SA", "HL", "sadness")
    mapping = {r.native_label: CANONICAL[r.label] for r in recs}
    assert mapping == {"SU": "surprise", "AF": "fear", "DI": "disgust", "HA": "happiness", "SA": "sadness",
                       "AN": "anger", "NE": "neutral"}
    black = next(r for r in recs if r.relpath.endswith("BF01NEHL.JPG"))
    assert any(f.startswith("near-black") for f in ds.image_flags(black, ds.load(black)))
    assert ds.load(recs[0]).shape == (76, 56, 3)


def test_kdef_protocols(tmp_path):
    root = make_kdef(tmp_path)
    person = ADAPTERS.get("kdef")(root).records()
    side = {}
    for r in person:
        side.setdefault(r.subject, set()).add(r.split)
    assert all(len(s) == 1 for s in side.values())  # A and B series of a person never separated
    assert split_counts(person) == {"train": 70, "test": 70}
    rand = ADAPTERS.get("kdef")(root, protocol="kdef_random80").records()
    assert split_counts(rand) == {"train": 112, "test": 28}
    assert set(Counter(r.label for r in rand if r.split == "test").values()) == {4}
    angle = ADAPTERS.get("kdef")(root, protocol="kdef_angleS").records()
    assert {r.angle for r in angle if r.split == "test"} == {"S"} and split_counts(angle)["test"] == 28
    other = ADAPTERS.get("kdef")(root, protocol="kdef_random80", split_seed=1).records()
    assert [r.split for r in other] != [r.split for r in rand]


def test_kdef_duplicate_slot_is_an_error(tmp_path):
    root = make_kdef(tmp_path, duplicate=True)
    with pytest.raises(UserError, match="two files for HAFR"):
        ADAPTERS.get("kdef")(root).records()


def test_kdef_wrong_src(tmp_path):
    with pytest.raises(UserError, match="AF01AFS.JPG"):
        ADAPTERS.get("kdef")(tmp_path)


# -- ImageFolder --------------------------------------------------------------------------------
def test_folder_aliases_case_insensitive(tmp_path):
    root = make_folder(tmp_path)
    write(root / "train" / "Happy" / "notes.txt", b"hello")
    ds = ADAPTERS.get("folder")(root)
    recs = ds.records()
    assert split_counts(recs) == {"train": 14, "test": 7}
    assert {r.native_label: CANONICAL[r.label] for r in recs} == {
        "Happy": "happiness", "sad": "sadness", "ANGRY": "anger", "surprise": "surprise", "Fear": "fear",
        "disgust": "disgust", "neutral": "neutral"}
    assert ds.skipped == [("train/Happy/notes.txt", ("not-an-image: train/Happy/notes.txt: file name is not an "
                                                    "image type"))]


def test_folder_numeric_classes_need_names(tmp_path):
    root = tmp_path / "num"
    img = (np.ones((8, 8, 3)) * 100).astype(np.uint8)
    from lldif_bench.imageio import write_image
    for split in ("train", "test"):
        for c in range(2):
            write_image(root / split / str(c) / "a.png", img)
    with pytest.raises(UserError, match="--class-names"):
        ADAPTERS.get("folder")(root).records()
    ds = ADAPTERS.get("folder")(root, class_names="neutral,happy")
    assert {CANONICAL[r.label] for r in ds.records()} == {"neutral", "happiness"}
    write_image(root / "train" / "bored" / "a.png", img)
    with pytest.raises(UserError, match="not an emotion"):
        ADAPTERS.get("folder")(root, class_names="neutral,happy").records()


# -- detection ----------------------------------------------------------------------------------
def test_open_dataset_detects_layouts(tmp_path):
    assert open_dataset(make_rafdb(tmp_path / "r", original=False)).name == "rafdb"
    assert open_dataset(tmp_path / "r").name == "rafdb"
    make_fer(tmp_path / "f")
    assert open_dataset(tmp_path / "f").name == "ferplus"
    assert open_dataset(make_ferplus_images(tmp_path / "fi")).name == "ferplus"
    assert open_dataset(make_kdef(tmp_path / "k")).name == "kdef"
    assert open_dataset(make_folder(tmp_path / "d")).name == "folder"
    make_rafdb(tmp_path / "syn", folder="clear", original=False)
    assert open_dataset(tmp_path / "syn").name == "rafdb"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="rafdb: basic/EmoLabel"):
        open_dataset(tmp_path / "empty")


# -- RAF-DB as the common mirrors ship it: DATASET/{train,test}/{1..7}/ ---------------------------
def test_rafdb_mirror_folders_1_to_7(tmp_path):
    from fixtures_scaled import rafdb_folders

    root = rafdb_folders(tmp_path, 70)
    ds = ADAPTERS.get("rafdb")(root)
    recs = ds.records()
    assert ds.layout == "folders" and len(recs) == 70 and ds.skipped == []
    # folder k holds RAF-DB label k: 1 surprise … 7 neutral (canonical index k - 1)
    assert all(r.label == int(r.native_label) - 1 for r in recs)
    assert {r.relpath.split("/")[1] for r in recs if r.label == CANONICAL.index("neutral")} == {"7"}
    assert split_counts(recs) == {"train": 56, "test": 14}
    card = ds.describe()
    assert card["label_scheme"] == "rafdb" and card["folder_to_class"]["7"] == "neutral"
    assert open_dataset(root).name == "rafdb"  # detected as RAF-DB, not as an unnamed image folder
    # the generic adapter: 7 names are read as folders 0..6 (a clear error), a scheme name works
    with pytest.raises(UserError, match="--class-names rafdb"):
        ADAPTERS.get("folder")(root, class_names="surprise,fear,disgust,happiness,sadness,anger,neutral").records()
    folder = ADAPTERS.get("folder")(root, class_names="rafdb")
    assert [(r.relpath, r.label) for r in folder.records()] == [(r.relpath, r.label) for r in recs]
    assert folder.options["class_names"] == "rafdb" and folder.describe()["label_scheme"] == "rafdb"
    with pytest.raises(UserError, match="label scheme"):
        ADAPTERS.get("folder")(root, class_names="nosuchscheme")


@pytest.mark.parametrize("scheme, folder, emotion", [("fer2013", "0", "anger"), ("affectnet", "7", "contempt"),
                                                    ("affectnet", "00", "neutral")])
def test_folder_label_schemes(tmp_path, scheme, folder, emotion):
    from lldif_bench.imageio import write_image

    write_image(tmp_path / "d" / "train" / folder / "a.png", np.full((8, 8, 3), 90, np.uint8))
    (rec,) = ADAPTERS.get("folder")(tmp_path / "d", class_names=scheme).records()
    assert CANONICAL_8[rec.label] == emotion
