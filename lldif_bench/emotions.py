"""The canonical emotion classes: RAF-DB's 7 basic expressions in RAF-DB's order, plus contempt.

Every dataset adapter maps its native labels onto these indices, so tables, confusion matrices and
LA-CLIP text prompts agree across datasets. The RAF-DB label file uses 1-based numbers
(1 Surprise … 7 Neutral); canonical indices are 0-based.
"""

from __future__ import annotations

CANONICAL = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
CONTEMPT = "contempt"  # FER+ has an 8th class; it takes canonical index 7
CANONICAL_8 = CANONICAL + (CONTEMPT,)

# Spellings seen in folder names and label files, mapped to the canonical name.
ALIASES = {
    "surprise": "surprise", "surprised": "surprise", "su": "surprise",
    "fear": "fear", "afraid": "fear", "fearful": "fear", "af": "fear",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust",
    "happiness": "happiness", "happy": "happiness", "joy": "happiness", "ha": "happiness",
    "sadness": "sadness", "sad": "sadness", "sa": "sadness",
    "anger": "anger", "angry": "anger", "an": "anger",
    "neutral": "neutral", "ne": "neutral", "calm": "neutral",
    "contempt": "contempt",
}


def canonical_index(name: str) -> int:
    """Index of an emotion name or alias (case-insensitive) in :data:`CANONICAL_8`."""
    key = name.strip().lower()
    if key not in ALIASES:
        raise ValueError(
            f"unknown emotion name {name!r}; known names: {', '.join(sorted(ALIASES))}"
        )
    return CANONICAL_8.index(ALIASES[key])


def rafdb_label_to_index(label: int) -> int:
    """RAF-DB's 1-based label (1 Surprise … 7 Neutral) to the canonical 0-based index."""
    if not 1 <= int(label) <= 7:
        raise ValueError(f"RAF-DB labels are 1..7, got {label}")
    return int(label) - 1
