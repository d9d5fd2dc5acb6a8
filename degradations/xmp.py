"""Read a Lightroom / Camera Raw ``.xmp`` preset or sidecar into fixed degradation parameters.

Parsed with ``defusedxml`` (no DTDs, no entity expansion, no external references). Settings are
read from every ``rdf:Description``, as attributes or as child elements (RDF allows both); numbers
may carry a leading ``+``. Mapping (process version 2012 and later, ``crs:ProcessVersion`` >= 6.7):

=============================================  ==================================
``crs:Exposure2012``                           ``exposure_ev`` (-5..5)
``crs:Highlights2012`` / ``crs:Shadows2012``   ``highlights`` / ``shadows`` (-100..100)
``crs:IncrementalTemperature`` / ``...Tint``   ``d_temp`` / ``d_tint`` (-100..100; rendered files)
``crs:Temperature`` / ``crs:Tint``             ``temperature_k`` / ``tint`` (raw semantics)
``crs:WhiteBalance``                           As Shot -> no WB; Custom -> the values above;
                                               Auto or a named preset -> no WB, with a warning
=============================================  ==================================

Every other ``crs:`` setting is recorded (``ignored_tags``), never silently dropped; the warning
lists those whose value changes an image (:func:`is_neutral` tells: zero, ``False``, a linear tone
curve, a default such as ``PerspectiveScale=100``, or a detail slider whose master slider is off)
and counts the rest. Presentation metadata (name, UUID, ``Supports*`` flags, ...) is accepted quietly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as DET

from lldif_bench.errors import UserError

CRS = "http://ns.adobe.com/camera-raw-settings/1.0/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
MAX_XMP_BYTES = 8 * 1024 * 1024
MIN_PROCESS_VERSION = (6, 7)

# crs tag -> (our parameter, lowest, highest)
NUMERIC_TAGS = {
    "Exposure2012": ("exposure_ev", -5.0, 5.0),
    "Highlights2012": ("highlights", -100.0, 100.0),
    "Shadows2012": ("shadows", -100.0, 100.0),
    "IncrementalTemperature": ("d_temp", -100.0, 100.0),
    "IncrementalTint": ("d_tint", -100.0, 100.0),
    "Temperature": ("temperature_k", 2000.0, 50000.0),
    "Tint": ("tint", -150.0, 150.0),
}
HANDLED_TAGS = set(NUMERIC_TAGS) | {"WhiteBalance", "ProcessVersion"}
METADATA_TAGS = {
    "Version", "PresetType", "Name", "ShortName", "SortName", "UUID", "Group", "Cluster",
    "Description", "Copyright", "ContactInfo", "CameraModelRestriction", "HasSettings",
    "AlreadyApplied", "SupportsAmount", "SupportsAmount2", "SupportsColor", "SupportsMonochrome",
    "SupportsHighDynamicRange", "SupportsNormalDynamicRange", "SupportsSceneReferredProfiles",
    "SupportsOutputReferred", "RequiresRGBTables", "Keywords",
}


# ignored settings whose neutral value is not 0 / False
NEUTRAL_VALUES = {"ToneCurveName": "Linear", "ToneCurveName2012": "Linear", "PerspectiveScale": "100",
                  "CropRight": "1", "CropBottom": "1", "LensProfileSetup": "LensDefaults"}
# detail sliders that only act when their master setting is not neutral: prefix -> master
DEPENDS_ON = {
    "Sharpen": "Sharpness", "LuminanceNoiseReduction": "LuminanceSmoothing",
    "ColorNoiseReduction": "ColorNoiseReduction", "Grain": "GrainAmount",
    "PostCropVignette": "PostCropVignetteAmount", "VignetteMidpoint": "VignetteAmount",
    "DefringePurple": "DefringePurpleAmount", "DefringeGreen": "DefringeGreenAmount",
    "Crop": "HasCrop", "LensProfile": "LensProfileEnable", "LensManualDistortion": "LensProfileEnable",
}


def _plain_neutral(tag: str, value: str) -> bool:
    value = value.strip()
    if tag in NEUTRAL_VALUES and value == NEUTRAL_VALUES[tag]:
        return True
    if value in ("", "False", "false"):
        return True
    try:
        return float(value) == 0.0
    except ValueError:
        pass
    points = [p.split(",") for p in value.split(";")] if tag.startswith("ToneCurve") else []
    try:  # a tone curve whose points all lie on the diagonal
        return bool(points) and all(len(p) == 2 and float(p[0]) == float(p[1]) for p in points)
    except ValueError:
        return False


def is_neutral(tag: str, value: str, tags: dict[str, str]) -> bool:
    """True when an ignored setting leaves the image as it is (so a warning need not list it)."""
    if _plain_neutral(tag, value):
        return True
    for prefix, master in DEPENDS_ON.items():
        if tag.startswith(prefix) and tag != master:
            return _plain_neutral(master, tags.get(master, "0"))
    return False


@dataclass
class XmpSettings:
    """What an XMP file says, resolved to our parameters."""

    params: dict[str, float]
    wb_mode: str
    tags: dict[str, str]
    ignored_tags: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    name: str | None = None
    process_version: str | None = None
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"tags": dict(self.tags), "ignored_tags": dict(self.ignored_tags),
                "warnings": list(self.warnings), "process_version": self.process_version,
                "sha256": self.sha256, "name": self.name}


def _parse_tree(data: bytes, where: str) -> Element:
    if len(data) > MAX_XMP_BYTES:
        raise UserError(f"{where}: {len(data)} bytes is too large for an XMP preset "
                        f"(limit {MAX_XMP_BYTES})")
    try:
        return DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as err:
        raise UserError(f"{where}: refusing unsafe XML ({type(err).__name__}: DTDs, entities and "
                        "external references are not allowed in a preset)") from None
    except ParseError as err:
        raise UserError(f"{where}: not well-formed XML ({err})") from None


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def _element_value(el: Element) -> str:
    children = list(el)
    if not children:
        return (el.text or "").strip()
    items = [li for li in el.iter(f"{{{RDF}}}li")]
    if len(children) == 1 and _local(children[0].tag)[1] == "Alt" and items:
        return (items[0].text or "").strip()  # a language alternative: take the default
    if _local(children[0].tag)[1] == "Seq" and items and len(items) <= 64:  # e.g. tone curve points
        return "; ".join((li.text or "").strip() for li in items)
    return f"<{_local(children[0].tag)[1]} with {len(items)} items>"


def collect_crs_tags(root: Element) -> dict[str, str]:
    """Every ``crs:`` setting in every ``rdf:Description``, attributes and child elements."""
    tags: dict[str, str] = {}
    for desc in root.iter(f"{{{RDF}}}Description"):
        for key, value in desc.attrib.items():
            ns, name = _local(key)
            if ns == CRS:
                tags[name] = value.strip()
        for child in desc:
            ns, name = _local(child.tag)
            if ns == CRS:
                tags[name] = _element_value(child)
    return tags


def _number(tag: str, text: str, where: str) -> float:
    try:
        return float(text)  # accepts "+0.50"
    except ValueError:
        raise UserError(f"{where}: crs:{tag}={text!r} is not a number") from None


def _version(text: str, where: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        raise UserError(f"{where}: crs:ProcessVersion={text!r} is not a version number") from None


def parse_xmp(data: bytes, where: str = "<xmp>") -> XmpSettings:
    """Parse XMP bytes; UserError for unsafe/malformed XML, old process versions or bad values."""
    root = _parse_tree(data, where)
    tags = collect_crs_tags(root)
    if not tags:
        raise UserError(f"{where}: no Camera Raw settings (crs:* in rdf:Description) found; "
                        "is this a Lightroom preset or sidecar?")
    warnings: list[str] = []
    pv = tags.get("ProcessVersion")
    if pv is None:
        warnings.append("no crs:ProcessVersion; assuming process 2012 (6.7) semantics")
    elif _version(pv, where) < MIN_PROCESS_VERSION:
        raise UserError(f"{where}: crs:ProcessVersion={pv} predates process 2012 (6.7); its "
                        "Exposure/HighlightRecovery/FillLight sliders have different meanings. "
                        "Re-save the preset with a current process version in Lightroom.")
    values: dict[str, float] = {}
    for tag, (param, lo, hi) in NUMERIC_TAGS.items():
        if tag in tags:
            v = _number(tag, tags[tag], where)
            if not lo <= v <= hi:
                raise UserError(f"{where}: crs:{tag}={tags[tag]} is outside Lightroom's range "
                                f"[{lo:g}, {hi:g}]")
            values[param] = v
    wb = tags.get("WhiteBalance", "Custom")
    inc = {k: values.pop(k) for k in ("d_temp", "d_tint") if k in values}
    absolute = {k: values.pop(k) for k in ("temperature_k", "tint") if k in values}
    wb_mode = "none"
    if wb != "Custom":  # "As Shot" keeps the image's own white balance: wb_mode stays "none"
        if wb != "As Shot":
            warnings.append(f"crs:WhiteBalance={wb!r} needs the camera/scene; no white balance applied")
    elif inc:
        wb_mode = "incremental"
        values.update({"d_temp": inc.get("d_temp", 0.0), "d_tint": inc.get("d_tint", 0.0)})
        if absolute:
            warnings.append("both incremental and absolute white balance found; using the "
                            "incremental sliders (rendered-image semantics)")
    elif absolute:
        wb_mode = "absolute"
        from degradations.white_balance import REFERENCE_TEMPERATURE, REFERENCE_TINT

        values.update({"temperature_k": absolute.get("temperature_k", REFERENCE_TEMPERATURE),
                       "tint": absolute.get("tint", REFERENCE_TINT)})
    ignored = {k: v for k, v in tags.items() if k not in HANDLED_TAGS and k not in METADATA_TAGS}
    active = {k: v for k, v in ignored.items() if not is_neutral(k, v, tags)}
    if active:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(active.items()))
        rest = len(ignored) - len(active)
        warnings.append(f"ignored {len(active)} unsupported Lightroom setting(s) that change the image (only "
                        f"exposure, white balance, highlights and shadows are applied): {shown}"
                        + (f"; {rest} more at their neutral value" if rest else ""))
    return XmpSettings(params=values, wb_mode=wb_mode, tags=tags, ignored_tags=ignored,
                       warnings=warnings, name=tags.get("Name") or None, process_version=pv,
                       sha256=hashlib.sha256(data).hexdigest())
