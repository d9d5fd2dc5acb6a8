"""Build the low-light copy of a dataset: ``make-dataset``'s library function.

``build_lowlight`` plans the items (``--limit``, ``--shard``), resumes from what a previous run of
the same settings finished (outputs verified by SHA-256), runs the decode → degrade → encode
pipeline, and finalises the copy: manifest.csv, label files, dataset-specific files (FER2013 CSV,
KDEF split list), anomalies.json and the dataset.json card. A sharded run writes
``manifest.part-I-of-N.csv``; :func:`merge_shards` finalises once every part is there.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lldif_bench import __version__
from lldif_bench.datasets.base import (
    ADAPTERS,
    WORK_DIR,
    Dataset,
    sha256_bytes,
    sha256_file,
    skip_code,
)
from lldif_bench.datasets.manifest import (
    EXCLUDED_ANOMALY,
    append_journal,
    make_row,
    read_journal,
    read_manifest,
    write_manifest,
)
from lldif_bench.datasets.pipeline import PIPELINES, BuildJob, strategy_for
from lldif_bench.datasets.record import Record
from lldif_bench.errors import UserError
from lldif_bench.imageio import atomic_write_bytes, read_at

log = logging.getLogger(__name__)

CARD = "dataset.json"
MANIFEST = "manifest.csv"
ANOMALIES = "anomalies.json"
SETTINGS = f"{WORK_DIR}/settings.json"


@dataclass
class BuildSummary:
    """What a build (or a resume) did."""

    out: Path
    total: int = 0  # items of this run's plan (after --limit/--shard), incl. parse-time skips
    written: int = 0  # outputs produced by this run
    reused: int = 0  # outputs of an earlier run, verified and kept
    ok: int = 0  # items with an output, in total
    skipped: dict[str, int] = field(default_factory=dict)  # reason code -> count
    seconds: float = 0.0
    complete: bool = False  # dataset.json written (False for a shard part)
    shard: tuple[int, int] | None = None

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        skipped = ", ".join(f"{n} {code}" for code, n in sorted(self.skipped.items())) or "none"
        where = f"shard {self.shard[0]}/{self.shard[1]} of " if self.shard else ""
        lines = [(f"{where}{self.out}: {self.ok} images ok ({self.written} written now, {self.reused} kept "
                 f"from an earlier run), skipped: {skipped}"),
                 f"time {self.seconds:.1f} s, {self.images_per_second:.0f} img/s"]
        if self.shard and not self.complete:
            lines.append("run `lldif-bench merge-manifests` on OUT once every shard has finished")
        return "\n".join(lines)


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"I/N"`` (1-based, 1 <= I <= N) to ``(I, N)``."""
    if shard is None or shard == "":
        return None
    if isinstance(shard, str):
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise UserError(f"--shard must look like I/N (e.g. 1/4), got {shard!r}") from None
    else:
        i, n = shard
    if not (n >= 1 and 1 <= i <= n):
        raise UserError(f"--shard I/N needs 1 <= I <= N, got {i}/{n}")
    return (i, n)


def _inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents


def _load_preset(preset):
    from degradations import load_preset

    return load_preset(preset) if isinstance(preset, (str, Path)) else preset


def _settings(dataset: Dataset, preset, seed: int, device_type: str, limit, image_format: str,
              jpeg_quality: int, shard) -> dict[str, Any]:
    """What the output bytes depend on; a resume must match it exactly."""
    return json.loads(json.dumps({
        "adapter": dataset.name, "options": dataset.options, "source": str(dataset.root.resolve()),
        "preset": preset.name, "preset_config": preset.to_dict(), "seed": int(seed),
        "device_type": device_type, "limit": limit, "image_format": image_format,
        "jpeg_quality": int(jpeg_quality), "shard_count": shard[1] if shard else 1,
        "package_version": __version__,
    }, sort_keys=True, default=str))


def _prepare_out(out: Path, settings: dict, overwrite: bool) -> dict | None:
    """Create OUT or check it belongs to a build with these settings; returns the finished card of
    a complete earlier build (or None)."""
    card_path, settings_path = out / CARD, out / SETTINGS
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        previous = None
        if settings_path.is_file():
            previous = json.loads(settings_path.read_text())
        elif card_path.is_file():
            previous = json.loads(card_path.read_text()).get("settings")
        if previous is None:
            raise UserError(f"--out {out} is not empty and was not made by make-dataset; choose an empty "
                            f"or new folder (--overwrite only replaces folders that make-dataset made)")
        if previous != settings:
            if not overwrite:
                diff = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
                raise UserError(f"--out {out} holds a build made with different settings ({', '.join(diff)}); "
                                f"use the same settings to resume, another --out, or --overwrite to replace it")
            log.warning("--overwrite: removing the earlier build in %s", out)
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if not settings_path.is_file():
        atomic_write_bytes(settings_path, json.dumps(settings, indent=1, sort_keys=True).encode())
    if card_path.is_file():
        card = json.loads(card_path.read_text())
        return card if card.get("settings") == settings else None
    return None


def _plan(dataset: Dataset, limit: int | None, shard) -> tuple[list[tuple[int, Record]], list[tuple[str, str]]]:
    """(index, record) of this run's items and the parse-time skips it reports (shard 1 only)."""
    items = dataset.build_records()
    if limit is not None:
        items = items[: max(0, int(limit))]
    planned = list(enumerate(items))
    skips = list(dataset.skipped)
    if shard:
        i, n = shard
        planned = [(k, r) for k, r in planned if k % n == i - 1]
        skips = skips if i == 1 else []
    return planned, skips


def _verified(rows: list[dict], out: Path, file_of: dict[str, str | tuple[str, int, int]],
              card: dict | None) -> dict[int, dict]:
    """Rows of an earlier run whose outputs are intact (ok rows) — kept; everything else is redone.

    ``file_of`` maps an item key to the file the build writes for it. Rows that live inside a
    finished dataset-level file (FER2013 CSV rows) are intact when that file's hash still matches."""
    virtual_ok = False
    if card is not None:
        files = card.get("files", {})
        virtual_ok = bool(files) and all((out / rel).is_file() and sha256_file(out / rel) == sha
                                         for rel, sha in files.items())
    kept = {}
    for row in rows:
        if row["status"] != "ok" or row["key"] not in file_of:
            continue
        if card is not None and "#" in row["output"]:
            if virtual_ok:
                kept[int(row["index"])] = row
            continue
        target = file_of[row["key"]]
        if isinstance(target, tuple):  # a slot of a shared work file (see Dataset.output_slot)
            data = read_at(out / target[0], target[1], target[2])
            if data is not None and sha256_bytes(data) == row["dst_sha256"]:
                kept[int(row["index"])] = row
            continue
        path = out / target
        if path.is_file() and sha256_file(path) == row["dst_sha256"]:
            kept[int(row["index"])] = row
    return kept


def _journal_name(shard) -> str:
    return f"{WORK_DIR}/journal-{shard[0]}-of-{shard[1]}.jsonl" if shard else f"{WORK_DIR}/journal.jsonl"


def _part_name(shard) -> str:
    return f"manifest.part-{shard[0]}-of-{shard[1]}.csv"


def build_lowlight(dataset: Dataset, out: Path, *, preset="paper", seed: int = 0, device: str = "auto",
                   batch_size: int = 64, workers: int = 2, limit: int | None = None,
                   image_format: str = "same", jpeg_quality: int = 95, shard=None, overwrite: bool = False,
                   strict: bool = False, command_line: str = "", landmarks: str = "none",
                   pipeline: str | None = None, progress: bool = True) -> BuildSummary:
    """Write the low-light copy of ``dataset`` under ``out``; see the module docstring.

    ``workers``: processes (0 or 1 on the CPU: this process). ``pipeline``: where the work runs (a
    :data:`~lldif_bench.datasets.pipeline.PIPELINES` name; None = ``chained`` on the CPU, ``staged``
    on an accelerator). Neither changes a byte of the output. ``progress``: False hides the bars."""
    from lldif_bench.device import resolve_device

    start = time.perf_counter()
    out = Path(out).resolve()
    src = dataset.root.resolve()
    if _inside(out, src) or _inside(src, out):
        raise UserError(f"--out {out} and the source {src} must not contain each other "
                        f"(the source is never written to)")
    if image_format not in ("same", "png", "jpg"):
        raise UserError(f"--image-format must be same, png or jpg, got {image_format!r}")
    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    shard = parse_shard(shard)
    if pipeline is not None:
        PIPELINES.get(pipeline)  # an unknown name fails before any work
    check_landmarks(landmarks)
    preset = _load_preset(preset)
    try:
        dev = resolve_device(device)
    except RuntimeError as err:  # e.g. --device cuda without CUDA
        raise UserError(str(err)) from None
    dataset.records()  # parse labels now: a wrong layout fails before OUT is touched
    settings = _settings(dataset, preset, seed, dev.type, limit, image_format, jpeg_quality, shard)
    card = _prepare_out(out, settings, overwrite)
    planned, parse_skips = _plan(dataset, limit, shard)

    earlier = read_manifest(out / MANIFEST) if card is not None and (out / MANIFEST).is_file() else []
    earlier += read_journal(out / _journal_name(shard))
    file_of = {r.relpath: dataset.output_slot(r) or dataset.output_relpath(r, image_format) for _, r in planned}
    kept = _verified(earlier, out, file_of, card)
    todo = [(k, r) for k, r in planned if k not in kept]
    summary = BuildSummary(out=out, shard=shard, reused=len(kept))
    if card is not None and not todo:
        rows = [r for r in earlier if int(r["index"]) in kept or r["status"] != "ok"]
        summary.total = len(rows)
        summary.ok = sum(r["status"] == "ok" for r in rows)
        summary.skipped = dict(Counter(skip_code(r["status"][8:]) for r in rows if r["status"] != "ok"))
        summary.complete = True
        shutil.rmtree(out / WORK_DIR, ignore_errors=True)  # nothing to redo: leave the copy as it was
        if not (out / "landmarks.npz").is_file():
            run_landmarks(out, landmarks, dev.type, batch_size, dataset, progress)
        summary.seconds = time.perf_counter() - start
        return _check_strict(summary, strict)

    journal_path = out / _journal_name(shard)
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    new_rows: list[dict] = []
    with open(journal_path, "a", encoding="utf-8") as journal:
        # kept rows of a finished build come from manifest.csv: carry them into the journal
        carry = [r for r in kept.values() if card is not None]
        if carry:
            append_journal(journal, carry)
        n_plan = len(dataset.build_records()[: limit])
        skip_rows = [make_row({"index": n_plan + j, "key": key, "source": key.split(":")[0],
                               "status": f"skipped:{skip_code(reason)}", "detail": reason}, None)
                     for j, (key, reason) in enumerate(parse_skips)]
        append_journal(journal, skip_rows)
        new_rows = _run_pipeline(dataset, out, todo, preset, seed, dev, batch_size, workers, image_format,
                                 jpeg_quality, journal, pipeline, progress)
    rows = list(kept.values()) + skip_rows + new_rows
    summary.written = sum(r["status"] == "ok" for r in new_rows)
    summary.total = len(rows)
    summary.ok = sum(r["status"] == "ok" for r in rows)
    summary.skipped = dict(Counter(r["status"][len("skipped:"):] for r in rows if r["status"] != "ok"))
    if shard and shard[1] > 1:
        write_manifest(out / _part_name(shard), rows)
    else:
        finalize(out, dataset, rows, settings, command_line, landmarks)
        summary.complete = True
        run_landmarks(out, landmarks, dev.type, batch_size, dataset, progress)
    summary.seconds = time.perf_counter() - start
    return _check_strict(summary, strict)


def _check_strict(summary: BuildSummary, strict: bool) -> BuildSummary:
    """--strict fails on any skip except the ones the user asked for (excluded anomalies)."""
    unwanted = {code: n for code, n in summary.skipped.items() if code != EXCLUDED_ANOMALY}
    if strict and unwanted:
        reasons = ", ".join(f"{n} {code}" for code, n in sorted(unwanted.items()))
        raise UserError(f"--strict: {sum(unwanted.values())} items were skipped ({reasons}); "
                        f"see {summary.out / MANIFEST if summary.complete else summary.out}")
    return summary


def _run_pipeline(dataset: Dataset, out: Path, todo: list[tuple[int, Record]], preset, seed: int, dev,
                  batch_size: int, workers: int, image_format: str, jpeg_quality: int, journal,
                  pipeline: str | None = None, progress: bool = True) -> list[dict]:
    """Run the items through the pipeline (``pipeline``: a :data:`PIPELINES` name, None = by device);
    every finished row is journaled at once. Returns the rows."""
    from tqdm import tqdm

    if not todo:  # everything was kept: no pool to start
        return []
    job = BuildJob(dataset=dataset, preset=preset, seed=seed, out=out, image_format=image_format,
                   jpeg_quality=jpeg_quality, batch_size=batch_size, device=str(dev))
    rows: list[dict] = []
    bar = tqdm(total=len(todo), unit="img", desc=f"make-dataset {dataset.name}", disable=None if progress else True,
               dynamic_ncols=True)

    def emit(new: list[dict]) -> None:
        rows.extend(new)
        append_journal(journal, new)
        bar.update(len(new))

    try:
        PIPELINES.get(pipeline or strategy_for(dev.type))(job, todo, workers, emit)
    finally:
        bar.close()
    return rows


def counts_by_split(rows: list[dict], class_names: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "test"):
        c = Counter(r["class_name"] for r in rows if r.get("split") == split and r["status"] == "ok")
        counts[split] = {name: c.get(name, 0) for name in class_names}
    return counts


def finalize(out: Path, dataset: Dataset, rows: list[dict], settings: dict, command_line: str,
             landmarks: str = "none") -> dict:
    """Write manifest.csv, label files, dataset-specific files, anomalies.json and dataset.json,
    then remove the work files. Returns the card."""
    rows = sorted(rows, key=lambda r: int(r["index"]))
    write_manifest(out / MANIFEST, rows)
    dataset.copy_label_files(out)
    files = dataset.finalize_copy(out, rows)
    anomalies = _anomaly_report(dataset, rows)
    atomic_write_bytes(out / ANOMALIES, json.dumps(anomalies, indent=1, sort_keys=True).encode())
    labelled = [r for r in dataset.records()]
    source_counts: dict[str, dict[str, int]] = {}
    for split in ("train", "test"):
        c = Counter(dataset.class_names[r.label] for r in labelled if r.split == split)
        source_counts[split] = {name: c.get(name, 0) for name in dataset.class_names}
    counts = counts_by_split(rows, dataset.class_names)
    card = {
        "format": "lldif-bench dataset card", "card_version": 1, "lowlight": True,
        "adapter": dataset.name, "options": dataset.options, "source": str(dataset.root.resolve()),
        "dataset": dataset.describe(), "class_names": dataset.class_names,
        "native_class_names": dataset.native_class_names,
        "counts": counts, "totals": {s: sum(c.values()) for s, c in counts.items()},
        "source_counts": source_counts,
        "unused": sum(r.get("split") == "unused" and r["status"] == "ok" for r in rows),
        "skipped": dict(sorted(Counter(r["status"][len("skipped:"):] for r in rows
                                       if r["status"] != "ok").items())),
        "preset": settings["preset"], "preset_config": settings["preset_config"], "seed": settings["seed"],
        "image_format": settings["image_format"], "jpeg_quality": settings["jpeg_quality"],
        "limit": settings["limit"], "landmarks": landmarks, "package_version": __version__,
        "degradation_kernels": _degradation_kernels(settings["device_type"]),
        "command_line": command_line, "files": files, "settings": settings,
    }
    atomic_write_bytes(out / CARD, json.dumps(card, indent=1, sort_keys=True).encode())
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    for part in out.glob("manifest.part-*-of-*.csv"):
        part.unlink()
    return card


def _degradation_kernels(device_type: str) -> dict[str, str]:
    """Which kernel ran each op of the degradation (:mod:`degradations.kernels`): the CPU's picks
    (OpenCV's version with them), or torch for every op on another device."""
    from degradations.kernels import OPS, cpu_kernels

    if device_type == "cpu":
        return {"device_type": "cpu", **cpu_kernels()}
    return {"device_type": device_type, **{op: "torch" for op in OPS}}


def _anomaly_report(dataset: Dataset, rows: list[dict]) -> list[dict]:
    """anomalies.json: what the adapter flagged while parsing, images flagged while decoding, and
    (only when some were excluded) ``excluded`` on each entry, excluded images included."""
    excluded = {r["key"]: r["detail"] for r in rows if r["status"] == f"skipped:{EXCLUDED_ANOMALY}"}
    report = list(dataset.anomalies) + [
        {"relpath": r["key"], "kind": "image", "detail": json.loads(r["flags"])} for r in rows if r.get("flags")]
    if not excluded:
        return report
    listed = {a["relpath"] for a in report}
    report += [{"relpath": key, "kind": "image", "detail": [detail]} for key, detail in excluded.items()
               if key not in listed]
    return [{**a, "excluded": a["relpath"] in excluded} for a in report]


def merge_shards(out: Path, parts: list[Path] | None = None, command_line: str = "",
                 landmarks: str = "none", progress: bool = True) -> BuildSummary:
    """Join the shard parts of a build into one finished copy under ``out``.

    ``parts`` are other folders (other machines' OUTs) whose files are copied into ``out`` first."""
    start = time.perf_counter()
    check_landmarks(landmarks)
    out = Path(out).resolve()
    for part in parts or []:
        part = Path(part).resolve()
        if part == out:
            continue
        if not (part / SETTINGS).is_file():
            raise UserError(f"{part} is not a shard folder of make-dataset (no {SETTINGS})")
        for path in sorted(part.rglob("*")):
            if path.is_file():
                dst = out / path.relative_to(part)
                dst.parent.mkdir(parents=True, exist_ok=True)
                if dst.exists() and dst.name == "settings.json":
                    if json.loads(dst.read_text()) != json.loads(path.read_text()):
                        raise UserError(f"{part} was built with other settings than {out}")
                    continue
                if dst.exists() and dst.suffix == SLOT_SUFFIX:
                    _merge_slots(path, dst)
                    continue
                shutil.copy2(path, dst)
    if not (out / SETTINGS).is_file():
        raise UserError(f"{out} holds no unfinished sharded build (no {SETTINGS}); run make-dataset "
                        f"with --shard I/N and the same --out first")
    settings = json.loads((out / SETTINGS).read_text())
    n = settings["shard_count"]
    missing = [i for i in range(1, n + 1) if not (out / _part_name((i, n))).is_file()]
    if missing:
        raise UserError(f"cannot merge {out}: shard parts {', '.join(f'{i}/{n}' for i in missing)} are "
                        f"missing ({_part_name((missing[0], n))}); finish those shards first")
    rows = []
    for i in range(1, n + 1):
        rows += read_manifest(out / _part_name((i, n)))
    indices = [int(r["index"]) for r in rows]
    if len(set(indices)) != len(indices):
        raise UserError(f"shard parts in {out} overlap; were they built with the same --shard N?")
    dataset = ADAPTERS.get(settings["adapter"])(Path(settings["source"]), **settings["options"])
    dataset.records()
    finalize(out, dataset, rows, settings, command_line, landmarks)
    run_landmarks(out, landmarks, "cpu" if settings["device_type"] == "cpu" else "auto", 64, dataset, progress)
    summary = BuildSummary(out=out, total=len(rows), ok=sum(r["status"] == "ok" for r in rows),
                           skipped=dict(Counter(r["status"][8:] for r in rows if r["status"] != "ok")),
                           complete=True)
    summary.reused = summary.ok
    summary.seconds = time.perf_counter() - start
    return summary


SLOT_SUFFIX = ".u8"  # shared work files of Dataset.output_slot


def _merge_slots(part: Path, dst: Path) -> None:
    """Join another machine's shared work file into ours: shards write disjoint slots and leave
    the others as zeros (holes), so a bytewise OR keeps every shard's items."""
    import numpy as np

    a, b = np.fromfile(dst, dtype=np.uint8), np.fromfile(part, dtype=np.uint8)
    merged = np.zeros(max(a.size, b.size), np.uint8)
    merged[: a.size] |= a
    merged[: b.size] |= b
    atomic_write_bytes(dst, merged.tobytes())


def check_landmarks(landmarks: str) -> None:
    """Fail before any work if ``--landmarks`` names no usable backend."""
    if landmarks in (None, "", "none"):
        return
    try:
        from lldif_bench.landmarks import BACKENDS
    except ImportError:
        raise UserError(f"landmark backends are not available yet in this installation "
                        f"(lldif_bench.landmarks); use --landmarks none (asked for {landmarks!r})") from None
    if landmarks not in BACKENDS:
        raise UserError(f"unknown --landmarks backend {landmarks!r}; available: "
                        f"{', '.join(BACKENDS.names())}, or none")


def run_landmarks(out: Path, landmarks: str, device: str = "auto", batch_size: int = 64,
                  source_dataset: Dataset | None = None, progress: bool = True) -> None:
    """Detect landmarks on the finished low-light copy (``landmarks.npz`` beside it). The source
    dataset is passed as the clear counterpart (backends such as ``synthetic`` look beside it)."""
    if landmarks in (None, "", "none"):
        return
    from lldif_bench.datasets.detect import open_dataset
    from lldif_bench.landmarks import extract_landmarks_for_dataset

    extract_landmarks_for_dataset(out, open_dataset(out), landmarks, source="lowlight",
                                  clear_dataset=source_dataset, device=device, batch_size=batch_size,
                                  progress=progress)
