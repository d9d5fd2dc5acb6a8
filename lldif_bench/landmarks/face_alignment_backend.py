"""``face-alignment``: Adrian Bulat's 2D-FAN (the design card's extractor), with its S3FD detector.

The library downloads its weights into torch hub's ``checkpoints`` folder at first use. We check for
the files *before* constructing anything, so an offline machine gets an immediate error naming the
files, their URLs and the folder (instead of a hang on a network timeout). File names and URLs are
read from the installed package, so they follow its version.

Whole-crop mode hands FAN the crop box directly (the library's ``folder`` detector stands in for
S3FD, so only the FAN file is needed). Detect mode runs S3FD and keeps its most confident face. FAN itself
runs batched over images; cropping and heatmap decoding use the library's own functions.
Confidence = mean over the 68 points of the heatmap peak (flip-averaged when ``flip_input``).
Images are contrast-stretched first like dlib's (``preprocess``; its benefit was measured with dlib
only, as FAN's weights are not available on the machines this was written on).
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lldif_bench.device import resolve_device
from lldif_bench.errors import UserError
from lldif_bench.landmarks.backends import BACKENDS, backend_factory, empty_result
from lldif_bench.landmarks.geometry import DEFAULT_INSET, as_rgb, crop_box
from lldif_bench.landmarks.preprocess import DEFAULT_PREPROCESS, PREPROCESS

log = logging.getLogger(__name__)

# Fallbacks if the installed package's URL tables move; the package's own values win.
_FAN_URL = "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar"
_S3FD_URL = "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth"


def checkpoints_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def weight_urls() -> dict[str, str]:
    """``{"fan": url, "s3fd": url}`` as the installed face_alignment will fetch them."""
    urls = {"fan": _FAN_URL, "s3fd": _S3FD_URL}
    try:
        from face_alignment import api
        from face_alignment.detection.sfd import sfd_detector

        urls["fan"] = api.models_urls.get("2DFAN-4", _FAN_URL)
        urls["s3fd"] = sfd_detector.models_urls.get("s3fd", _S3FD_URL)
    except (ImportError, AttributeError) as err:  # pragma: no cover - depends on the installed version
        log.debug("face_alignment URL tables not found (%s); using built-in names", err)
    return urls


def required_files(whole_crop: bool) -> list[tuple[Path, str]]:
    """``(path, url)`` of every weight file FAN needs in this mode."""
    urls = weight_urls()
    wanted = ["fan"] if whole_crop else ["fan", "s3fd"]
    return [(checkpoints_dir() / os.path.basename(urls[k]), urls[k]) for k in wanted]


def missing_weights_message(missing: list[tuple[Path, str]]) -> str:
    lines = [f"  {path.name}: download {url}" for path, url in missing]
    return ("face-alignment's weights are not in torch hub's cache (lldif-bench never downloads at run "
            "time, so offline machines fail here instead of hanging):\n" + "\n".join(lines)
            + f"\n  and put the file(s) in {checkpoints_dir()} (set TORCH_HOME to move that folder). "
              "Or use the offline dlib backend (pip install 'lldif-bench[dlib]').")


def availability(whole_crop: bool = False) -> tuple[bool, str]:
    if importlib.util.find_spec("face_alignment") is None:
        return False, "face_alignment is not installed (pip install face-alignment)"
    missing = [(p, u) for p, u in required_files(whole_crop) if not p.is_file()]
    if missing:
        return False, "missing weights " + ", ".join(p.name for p, _ in missing) + f" in {checkpoints_dir()}"
    return True, "weights found in " + str(checkpoints_dir())


class FaceAlignmentBackend:
    """2D-FAN landmarks (face-alignment); weights from torch hub's cache, never fetched here."""

    name = "face-alignment"

    def __init__(self, *, device: str = "auto", whole_crop: bool = False, search_dirs: Sequence[Path] = (),
                 batch_size: int = 16, flip_input: bool = True, inset: float = DEFAULT_INSET,
                 preprocess: str = DEFAULT_PREPROCESS) -> None:
        missing = [(p, u) for p, u in required_files(whole_crop) if not p.is_file()]
        if missing:
            raise UserError(missing_weights_message(missing))
        import face_alignment

        self.device = str(resolve_device(device))
        self.batch_size = batch_size
        self.flip_input = flip_input
        self.inset = inset
        self.whole_crop_mode = whole_crop
        self.preprocess = preprocess
        self.prepare = PREPROCESS.get(preprocess)
        kwargs = {"device": self.device, "flip_input": flip_input,
                      "face_detector": "folder" if whole_crop else "sfd"}
        if "compile" in inspect.signature(face_alignment.FaceAlignment.__init__).parameters:
            kwargs["compile"] = False  # torch.compile needs a compiler toolchain and minutes of warm-up
        try:
            self.fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, **kwargs)
        except (RuntimeError, OSError, KeyError, EOFError) as err:
            names = ", ".join(p.name for p, _ in required_files(whole_crop))
            raise UserError(f"face-alignment could not load its weights ({names} in {checkpoints_dir()}): "
                            f"{err}. Delete the file(s) and put fresh copies there.") from err

    @property
    def settings(self) -> dict:
        return {"batch_size": self.batch_size, "flip_input": self.flip_input, "inset": self.inset,
                "preprocess": self.preprocess, "device": self.device}

    # -- face boxes ---------------------------------------------------------------------------
    def _box(self, image: np.ndarray, whole_crop: bool) -> tuple[np.ndarray | None, float]:
        h, w = image.shape[:2]
        if whole_crop:
            return crop_box(h, w, self.inset), 1.0
        if self.whole_crop_mode:
            raise UserError("this face-alignment backend was built for whole-crop mode (no face detector)")
        faces = self.fa.face_detector.detect_from_image(image.copy())
        if len(faces) == 0:
            return None, 0.0
        faces = np.asarray(faces, dtype=np.float64)
        best = faces[int(np.argmax(faces[:, 4]))] if faces.shape[1] > 4 else faces[0]
        return best[:4], float(best[4]) if best.shape[0] > 4 else 1.0

    # -- detect -------------------------------------------------------------------------------
    @torch.no_grad()
    def detect(self, images: list[np.ndarray], whole_crop: bool,
               keys: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        from face_alignment.utils import CENTER_Y_OFFSET, crop, flip, get_preds_fromhm

        points, confidence, status = empty_result(len(images))
        jobs = []  # (index, center, scale, crop CHW float32)
        ref_scale = self.fa.face_detector.reference_scale
        for i, raw in enumerate(images):
            image = self.prepare(as_rgb(raw))
            box, _score = self._box(image, whole_crop)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            center = np.array([x1 - (x1 - x0) / 2.0, y1 - (y1 - y0) / 2.0])
            center[1] -= (y1 - y0) * CENTER_Y_OFFSET
            scale = (x1 - x0 + y1 - y0) / ref_scale
            jobs.append((i, center, scale,
                         crop(image, center, scale).transpose((2, 0, 1)).astype(np.float32) / 255.0))
        net = self.fa.face_alignment_net
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start:start + self.batch_size]
            inp = torch.from_numpy(np.stack([j[3] for j in chunk])).to(self.fa.device, dtype=self.fa.dtype)
            out = net(inp)
            out = (out[-1] if isinstance(out, list) else out).detach()
            if self.flip_input:
                flipped = net(flip(inp))
                out = out + flip((flipped[-1] if isinstance(flipped, list) else flipped).detach(), is_label=True)
            out = out.to(device="cpu", dtype=torch.float32).numpy()
            for k, (i, center, scale, _) in enumerate(chunk):
                _, pts_img, scores = get_preds_fromhm(out[k:k + 1], center, scale)
                points[i] = np.asarray(pts_img, dtype=np.float32).reshape(68, 2)
                peak = float(np.asarray(scores).mean()) / (2.0 if self.flip_input else 1.0)
                confidence[i] = float(np.clip(peak, 0.0, 1.0))
                status[i] = "whole-crop" if whole_crop else "detected"
        return points, confidence, status


BACKENDS.add("face-alignment", backend_factory(FaceAlignmentBackend, availability),
             help="2D-FAN (face-alignment); weights from torch hub's cache")
