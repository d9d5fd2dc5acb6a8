"""Apply a preset to loose image files and folders (the library side of ``lldif-bench degrade``).

Each output keeps its path relative to the folder given (a file given directly keeps its name).
An image's parameters are sampled from ``(seed, relative path)``, so reruns and different batch
sizes give byte-identical files. Undecodable images are skipped and counted with the reason.
The run writes ``degrade-run.json`` (preset, seed, counts) and ``degrade-manifest.jsonl`` (one row
per written image: source, output, parameters, output SHA-256) into the output folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from degradations.pipeline import degrade_batch_uint8
from degradations.presets import Preset
from lldif_bench.errors import UserError
from lldif_bench.imageio import (
    ImageDecodeError,
    atomic_write_bytes,
    decode_image,
    encode_image,
    image_format_of,
    is_image_name,
    read_image,
)

log = logging.getLogger("degradations")

IMAGE_FORMATS = ("same", "png", "jpg")
RUN_FILE = "degrade-run.json"
MANIFEST_FILE = "degrade-manifest.jsonl"
DEFAULT_JPEG_QUALITY = 95


@dataclass(frozen=True)
class Job:
    src: Path
    rel: str  # posix path relative to the folder given (the sampling key)
    dst_rel: str
    fmt: str


@dataclass
class DegradeReport:
    written: int = 0
    skipped: Counter = field(default_factory=Counter)
    skipped_files: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: Path | str, reason: str) -> None:
        self.skipped[reason.split(":")[0]] += 1
        self.skipped_files.append((str(path), reason))
        log.warning("skipped %s: %s", path, reason)


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def output_format(src: Path, image_format: str) -> str:
    return image_format_of(src) if image_format == "same" else image_format


def plan_jobs(inputs: Iterable[Path], out: Path, image_format: str = "same") -> list[Job]:
    """Expand files/folders into jobs; refuses an output folder inside an input folder, missing
    inputs and two inputs that would write the same output file."""
    if image_format not in IMAGE_FORMATS:
        raise UserError(f"--image-format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    out_r = out.resolve()
    jobs: list[Job] = []
    for given in inputs:
        given = Path(given)
        if not given.exists():
            raise UserError(f"input {given} does not exist")
        g = given.resolve()
        if g.is_dir():
            if _inside(out_r, g):
                raise UserError(f"--out {out} lies inside the input folder {given}; choose an output "
                                "folder outside it (the source is never modified)")
            files = sorted(p for p in g.rglob("*") if p.is_file() and is_image_name(p.name)
                           and not _inside(p.resolve(), out_r))
            if not files:
                log.warning("no image files (jpg, png, ...) under %s", given)
            pairs = [(p, p.relative_to(g).as_posix()) for p in files]
        else:
            pairs = [(g, g.name)]
        for src, rel in pairs:
            fmt = output_format(src, image_format)
            dst_rel = rel if image_format == "same" else str(Path(rel).with_suffix("." + fmt).as_posix())
            jobs.append(Job(src, rel, dst_rel, fmt))
    seen: dict[str, Path] = {}
    for job in jobs:
        if (out_r / job.dst_rel).resolve() == job.src.resolve():
            raise UserError(f"output {out / job.dst_rel} would overwrite its source; choose another --out")
        if job.dst_rel in seen:
            raise UserError(f"{seen[job.dst_rel]} and {job.src} would both be written to "
                            f"{out / job.dst_rel}; degrade them in separate runs or folders")
        seen[job.dst_rel] = job.src
    return jobs


def encode_output(img: np.ndarray, fmt: str, params: dict, preset: Preset) -> bytes:
    """Encode one degraded image; JPEG quality from the parameters (default 95)."""
    quality = params.get("jpeg_quality")
    return encode_degraded(img, fmt, int(quality or DEFAULT_JPEG_QUALITY),
                           recompress=bool(preset.jpeg_recompress and quality))


def encode_degraded(img: np.ndarray, fmt: str, quality: int, *, recompress: bool = False) -> bytes:
    """Encode in ``fmt``; with ``recompress`` a lossless output (PNG) still carries the artefacts of
    one JPEG round trip at ``quality`` (the ``realistic`` preset's camera JPEG)."""
    if fmt == "jpg":
        return encode_image(img, "jpg", jpeg_quality=quality)
    if recompress:
        img = jpeg_round_trip(img, quality)
    return encode_image(img, fmt)


def jpeg_round_trip(img: np.ndarray, quality: int) -> np.ndarray:
    """The pixels after one JPEG encode/decode at ``quality`` (what ``recompress`` keeps)."""
    return decode_image(encode_image(img, "jpg", jpeg_quality=quality))


def degrade_files(inputs: Iterable[Path], out: Path, preset: Preset, *, seed: int = 0,
                  image_format: str = "same", device: torch.device | str = "cpu",
                  batch_size: int = 32, chunk: int = 512, progress: bool = False) -> DegradeReport:
    """Degrade every image under ``inputs`` into ``out``; returns counts (written / skipped)."""
    from tqdm import tqdm

    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    jobs = plan_jobs(inputs, out, image_format)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the output folder {out}: {err.strerror or err}") from None
    report = DegradeReport()
    rows: list[dict] = []
    device = torch.device(device)
    bar = tqdm(total=len(jobs), unit="img", disable=not progress, desc="degrade")
    for start in range(0, len(jobs), chunk):
        groups: dict[tuple, list[tuple[Job, np.ndarray]]] = defaultdict(list)
        for job in jobs[start:start + chunk]:
            try:
                img = read_image(job.src)
            except ImageDecodeError as err:
                report.skip(job.src, f"not decodable: {err}")
                bar.update(1)
                continue
            except OSError as err:
                report.skip(job.src, f"unreadable: {err}")
                bar.update(1)
                continue
            groups[img.shape].append((job, img))
        for items in groups.values():
            for b in range(0, len(items), batch_size):
                part = items[b:b + batch_size]
                params = [preset.sample(seed, job.rel) for job, _ in part]
                batch = torch.from_numpy(np.stack([img for _, img in part])).permute(0, 3, 1, 2)
                result = degrade_batch_uint8(batch.to(device), params, preset=preset)
                result = result.permute(0, 2, 3, 1).contiguous().cpu().numpy()
                for (job, _), img, p in zip(part, result, params):
                    try:
                        data = encode_output(img, job.fmt, p, preset)
                    except (ValueError, ImageDecodeError) as err:
                        report.skip(job.src, f"cannot encode as {job.fmt}: {err}")
                        continue
                    try:
                        atomic_write_bytes(out / job.dst_rel, data)
                    except OSError as err:
                        report.skip(job.src, f"cannot write: {err.strerror or err}")
                        continue
                    report.written += 1
                    rows.append({"src": str(job.src), "key": job.rel, "dst": job.dst_rel,
                                 "dst_sha256": hashlib.sha256(data).hexdigest(), "params": p})
                bar.update(len(part))
    bar.close()
    rows.sort(key=lambda r: r["dst"])
    atomic_write_bytes(out / MANIFEST_FILE, "".join(json.dumps(r, sort_keys=True) + "\n"
                                                   for r in rows).encode())
    run = {"preset": preset.to_dict(), "seed": int(seed), "image_format": image_format,
           "written": report.written, "skipped": dict(report.skipped),
           "skipped_files": [list(x) for x in report.skipped_files]}
    atomic_write_bytes(out / RUN_FILE, (json.dumps(run, indent=2, sort_keys=True) + "\n").encode())
    return report
