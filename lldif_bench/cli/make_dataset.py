"""``lldif-bench make-dataset {rafdb,ferplus,kdef,folder}``: build the low-light copy of a dataset.

Thin wrapper: parse, open the adapter from the registry, call
:func:`lldif_bench.datasets.build.build_lowlight`, print its summary.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from lldif_bench.cli import make_synthetic
from lldif_bench.cli.common import device_option, no_progress_option, resolved, seed_option
from lldif_bench.datasets import ADAPTERS
from lldif_bench.datasets.build import build_lowlight
from lldif_bench.datasets.ferplus_labels import PROTOCOLS as FER_PROTOCOLS
from lldif_bench.datasets.ferplus_labels import VOTE_SOURCES
from lldif_bench.datasets.folder import LABEL_SCHEMES
from lldif_bench.datasets.kdef import ANOMALY_KINDS as KDEF_ANOMALIES
from lldif_bench.datasets.kdef import PROTOCOLS as KDEF_PROTOCOLS


@click.group("make-dataset")
def command() -> None:
    """Build a low-light copy of a licensed FER dataset (same layout, plus manifest.csv and dataset.json).

    \b
    Examples:
      lldif-bench make-dataset rafdb   --src /data/RAF-DB/basic --out /data/LL-RAF-DB
      lldif-bench make-dataset ferplus --src /data/fer --out /data/LL-FERPlus --protocol ferplus_lldif
      lldif-bench make-dataset kdef    --src /data/KDEF_and_AKDEF --out /data/LL-KDEF
      lldif-bench make-dataset folder  --src /data/affectnet_folders --out /data/LL-AffectNet

    Running the same command again resumes an interrupted build; --shard I/N with
    `lldif-bench merge-manifests` splits one build over N machines.
    """


def shared_options(f):
    """Options every adapter subcommand takes (issue 8, item 2)."""
    options = [
        click.option("--src", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
                     help="The dataset as unpacked (never written to)."),
        click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
                     help="Folder for the low-light copy (new, empty, or an earlier build to resume)."),
        click.option("--preset", default="paper", show_default=True,
                     help="Degradation preset: built-in name (paper, realistic, …) or a .yaml/.json/.xmp file."),
        seed_option,
        device_option,
        click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True,
                     help="Images per degradation batch on the device."),
        click.option("--workers", type=click.IntRange(0), default=2, show_default=True,
                     help="Worker processes. CPU: each decodes, degrades and encodes its own chunks "
                          "(0 or 1: this process). GPU: they decode and encode while this process "
                          "degrades batches on the device (0: this process)."),
        click.option("--limit", type=click.IntRange(0), default=None, help="Only the first N items."),
        click.option("--image-format", type=click.Choice(["same", "png", "jpg"]), default="same",
                     show_default=True, help="Output format; 'same' keeps each file's format."),
        click.option("--jpeg-quality", type=click.IntRange(1, 100), default=95, show_default=True,
                     help="JPEG quality when the preset does not sample one."),
        click.option("--landmarks", default="none", show_default=True,
                     help="Landmark backend to run on the copy, or 'none'."),
        click.option("--overwrite", is_flag=True, help="Replace an earlier build in OUT made with other settings."),
        click.option("--strict", is_flag=True,
                     help="Exit non-zero if any item was skipped (excluded KDEF anomalies excepted)."),
        click.option("--shard", default=None, metavar="I/N",
                     help="Build only part I of N (1-based); join the parts with merge-manifests."),
        no_progress_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _command_line(ctx: click.Context) -> str:
    parts = [ctx.command_path]
    for name, value in sorted(ctx.params.items()):
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        parts += [flag] if value is True else [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _build(ctx: click.Context, adapter: str, adapter_options: dict, src: Path, out: Path, preset: str,
           seed, device, batch_size, workers, limit, image_format, jpeg_quality, landmarks, overwrite,
           strict, shard, no_progress) -> None:
    dataset = ADAPTERS.get(adapter)(src, **adapter_options)
    summary = build_lowlight(
        dataset, out, preset=preset, seed=resolved(ctx, "seed", seed), device=resolved(ctx, "device", device),
        batch_size=batch_size, workers=workers, limit=limit, image_format=image_format,
        jpeg_quality=jpeg_quality, shard=shard, overwrite=overwrite, strict=strict,
        command_line=_command_line(ctx), landmarks=landmarks, progress=not no_progress)
    click.echo(summary.format())


@command.command("rafdb")
@shared_options
@click.option("--images", type=click.Choice(["aligned", "original"]), default="aligned", show_default=True,
              help="Image/aligned (100x100 faces, what every baseline uses) or Image/original.")
@click.pass_context
def rafdb(ctx, images, **kw):
    """RAF-DB basic: --src is basic/ (or raf-basic/, or the folder holding it).

    Also reads RAF-DB as the common mirrors ship it, DATASET/{train,test}/{1..7}/*.jpg with RAF-DB's
    1-based labels as folder names (1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger,
    7 neutral); dataset.json records layout "folders" and label scheme "rafdb".
    """
    _build(ctx, "rafdb", {"images": images}, **kw)


@command.command("ferplus")
@shared_options
@click.option("--protocol", type=click.Choice(FER_PROTOCOLS.names()), default="ferplus_lldif",
              show_default=True, help="Labels and split; recorded in dataset.json.")
@click.option("--include-valid", is_flag=True, help="Majority protocols: train on FER2013Valid too.")
@click.option("--votes", type=click.Choice(VOTE_SOURCES), default="auto", show_default=True,
              help="CSV layout: where the FER+ votes come from. auto = FER+'s label.csv files when they "
                   "are beside the CSV (data/FER2013*/label.csv or FERPlus/data/…) for the majority "
                   "protocols, else fer2013new.csv. The PNG folders always use their label.csv.")
@click.pass_context
def ferplus(ctx, protocol, include_valid, votes, **kw):
    """FER2013 fer2013.csv + FERPlus fer2013new.csv, or FER+'s data/FER2013*/label.csv PNG folders.

    \b
    Train / test images each protocol gives on the real files (+valid: --include-valid):
                         CSV, votes from     CSV, votes from     PNG folders
                         fer2013new.csv      label.csv           (label.csv)
      ferplus_lldif      28,709 / 7,178      28,709 / 7,178      28,556 / 7,152
      ferplus_majority8  25,057 / 3,152      25,045 / 3,137      25,045 / 3,137
        +valid           28,256 / 3,152      28,236 / 3,137      28,236 / 3,137
      ferplus_majority7  24,938 / 3,136      24,925 / 3,122      24,925 / 3,122
        +valid           28,124 / 3,136      28,100 / 3,122      28,100 / 3,122
      fer2013_orig7      28,709 / 7,178      28,709 / 7,178      (needs fer2013.csv)

    \b
    ferplus_lldif      every FER2013 row (the paper's 28,709/7,178), FER+ plurality, 8 classes;
                       the folders lack the 173 unnamed rows and 2 zero-vote images
    ferplus_majority8  FER+ majority vote, 8 classes: the counts papers quote (25,045/3,137) come
                       from FER+'s label.csv files; fer2013new.csv's votes differ for 1,602 images
    ferplus_majority7  the same without contempt
    fer2013_orig7      the original FER2013 labels
    """
    _build(ctx, "ferplus", {"protocol": protocol, "include_valid": include_valid, "votes": votes}, **kw)


@command.command("kdef")
@shared_options
@click.option("--protocol", type=click.Choice(KDEF_PROTOCOLS.names()), default="kdef_person80",
              show_default=True, help="Split protocol (person-independent 56/14 by default).")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Seed of the split (not of the degradation).")
@click.option("--split-file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Reuse a split list ('<relpath> train|test' per line).")
@click.option("--exclude-anomalies", default="none", show_default=True, metavar="KINDS",
              help=f"Leave flagged anomalies out of the copy: comma-separated kinds ({', '.join(KDEF_ANOMALIES)}), "
                   f"all, or none. Excluded items are listed in manifest.csv as skipped:excluded-anomaly "
                   f"(--strict allows them) and the choice is recorded in dataset.json.")
@click.pass_context
def kdef(ctx, protocol, split_seed, split_file, exclude_anomalies, **kw):
    """KDEF: --src is KDEF_and_AKDEF/ (or its KDEF/ folder). AKDEF is ignored."""
    opts = {"protocol": protocol, "split_seed": split_seed, "exclude_anomalies": exclude_anomalies}
    if split_file:
        opts["split_file"] = str(split_file.resolve())
    _build(ctx, "kdef", opts, **kw)


@command.command("folder")
@shared_options
@click.option("--class-names", default=None,
              help=f"Numeric class folders: a label scheme ({', '.join(LABEL_SCHEMES.names())}; rafdb = folders "
                   f"1..7 = surprise, fear, disgust, happiness, sadness, anger, neutral) or the comma-separated "
                   f"emotion of folder 0, 1, … (not needed for named folders). Recorded in dataset.json.")
@click.pass_context
def folder(ctx, class_names, **kw):
    """ImageFolder: --src holds train/<class>/* and test/<class>/* (val/valid also accepted)."""
    _build(ctx, "folder", {"class_names": class_names} if class_names else {}, **kw)


command.add_command(make_synthetic.command)
