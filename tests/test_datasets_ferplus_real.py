"""The real FER+ label files (tests/data/ferplus/, MIT): the counts every protocol gives on each layout.

Papers quote 25,045 train / 3,191 valid / 3,137 test (majority vote, 8 classes), which FER+'s own
label.csv files give. fer2013new.csv's votes differ for 1,602 images, so a CSV build that takes
its votes from there gives 25,057 / 3,152; with the label.csv files beside the CSV it gives the
quoted counts. The folder layout (FER+'s generate_training_data.py output) always reads label.csv.
"""

from __future__ import annotations

from collections import Counter

import pytest
from fixtures_scaled import FOLDERS, ferplus_csv, ferplus_folders, real_fer2013new, real_label_csvs

from lldif_bench.datasets import ADAPTERS
from lldif_bench.datasets.ferplus_labels import PROTOCOLS, REAL_COUNTS, label_fer2013_rows, parse_votes

CSV_FER2013NEW = REAL_COUNTS[("csv", "fer2013new.csv")]
CSV_LABEL_CSV = REAL_COUNTS[("csv", "label.csv")]
FOLDERS_LAYOUT = REAL_COUNTS[("images", "label.csv")]


@pytest.fixture(scope="module")
def votes():
    _, rows = real_fer2013new()
    new_rows = [(r[0], r[1].strip(), parse_votes(r[2:])) for r in rows]
    by_usage = {usage: {r[0]: parse_votes(r[2:]) for r in real_label_csvs()[folder]}
                for usage, folder in FOLDERS.items()}
    return new_rows, by_usage


def split_counts(labelled) -> tuple[int, int]:
    c = Counter(lab.split for lab, _ in labelled if not lab.excluded)
    return c["train"], c["test"]


def test_facts_of_the_real_files(votes):
    new_rows, by_usage = votes
    assert len(new_rows) == 35_887
    assert Counter(u for u, _, _ in new_rows) == {"Training": 28_709, "PublicTest": 3_589, "PrivateTest": 3_589}
    assert sum(1 for _, name, _ in new_rows if not name) == 173
    names = Counter(name for _, name, _ in new_rows if name)
    assert sorted(n for n, k in names.items() if k > 1) == ["fer0006953.png", "fer0008403.png", "fer0011785.png",
                                                              "fer0033120.png"]
    assert {u: len(v) for u, v in by_usage.items()} == {"Training": 28_558, "PublicTest": 3_579, "PrivateTest": 3_573}
    last = {name: i for i, (_, name, _) in enumerate(new_rows) if name}
    differ = sum(1 for i, (u, name, v) in enumerate(new_rows) if name and last[name] == i and by_usage[u][name] != v)
    assert differ == 1_602


@pytest.mark.parametrize("source", ["fer2013new", "label-csv"])
@pytest.mark.parametrize("protocol, include_valid", sorted(CSV_FER2013NEW))
def test_csv_layout_counts(votes, protocol, include_valid, source):
    new_rows, by_usage = votes
    rows = [(0, usage) for usage, _, _ in new_rows]  # the FER2013 label does not change these counts
    labelled = label_fer2013_rows(rows, new_rows, PROTOCOLS.get(protocol), include_valid,
                                  by_usage if source == "label-csv" else None)
    expected = (CSV_LABEL_CSV if source == "label-csv" else CSV_FER2013NEW)[(protocol, include_valid)]
    assert split_counts(labelled) == expected


@pytest.fixture(scope="module")
def folders_layout(tmp_path_factory):
    return ferplus_folders(tmp_path_factory.mktemp("ferplus"), 35_710)


@pytest.mark.parametrize("protocol, include_valid", sorted(FOLDERS_LAYOUT))
def test_folder_layout_counts(folders_layout, protocol, include_valid):
    ds = ADAPTERS.get("ferplus")(folders_layout, protocol=protocol, include_valid=include_valid)
    recs = ds.records()
    assert ds.layout == "images" and ds.describe()["votes_from"] == "label.csv"
    assert (sum(r.split == "train" for r in recs), sum(r.split == "test" for r in recs)) == \
        FOLDERS_LAYOUT[(protocol, include_valid)]
    assert len(ds.build_records()) == 35_710 and ds.skipped == []
    assert ds.describe()["counts_on_the_real_files"] == dict(zip(("train", "test"), FOLDERS_LAYOUT[(protocol, include_valid)]))


def test_csv_adapter_takes_label_csv_votes_when_they_are_beside_it(tmp_path, votes):
    """The adapter on a real-row CSV (a prefix of each Usage block) agrees with the pure function;
    with label.csv beside it, the majority protocol reads them (auto) unless told otherwise."""
    root = ferplus_csv(tmp_path, 3_000, with_label_csv=True)
    auto = ADAPTERS.get("ferplus")(root, protocol="ferplus_majority8")
    own = ADAPTERS.get("ferplus")(root, protocol="ferplus_majority8", votes="fer2013new")
    assert auto.describe()["votes_from"] == "label.csv" and own.describe()["votes_from"] == "fer2013new.csv"
    assert own.options["votes"] == "fer2013new" and "votes" not in auto.options
    got_auto = {r.relpath: r.label for r in auto.records()}
    got_own = {r.relpath: r.label for r in own.records()}
    assert got_auto != got_own  # the two files' votes differ on some of these rows
    new_rows = own._new_rows()
    rows = [(0, u) for u, _, _ in new_rows]
    _, by_usage = votes
    for got, source in ((got_auto, by_usage), (got_own, None)):
        expected = {f"fer2013.csv#{i}": lab.label for i, (lab, _) in
                    enumerate(label_fer2013_rows(rows, new_rows, PROTOCOLS.get("ferplus_majority8"), False, source))
                    if not lab.excluded}
        assert got == expected


def test_label_csv_votes_need_the_files(tmp_path):
    root = ferplus_csv(tmp_path, 200)
    with pytest.raises(Exception, match="label.csv"):
        ADAPTERS.get("ferplus")(root, protocol="ferplus_majority8", votes="label-csv")
    assert ADAPTERS.get("ferplus")(root, protocol="ferplus_majority8").describe()["votes_from"] == "fer2013new.csv"


def test_help_text_states_the_counts_each_layout_gives():
    from click.testing import CliRunner

    from lldif_bench.cli.main import main

    text = CliRunner().invoke(main, ["make-dataset", "ferplus", "--help"]).output
    for table in REAL_COUNTS.values():
        for train, test in table.values():
            assert f"{train:,} / {test:,}" in text
    assert "1,602" in text and "--votes" in text
