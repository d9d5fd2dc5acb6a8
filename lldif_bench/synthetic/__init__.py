"""Built-in synthetic FER dataset: procedurally rendered faces in the 7 basic expressions.

``generate_synthetic(out_root, num_images, size, seed, revision=...)`` writes a RAF-DB "basic"-layout
dataset with ground-truth 68-point landmarks. The pieces: ``expressions`` (expressions as action
units), ``face_model`` (shape + units + pose → landmarks and curves), ``appearance`` and
``backgrounds`` (label-independent identity colours, styles, scenes), ``fine_cues`` and
``revision4`` (revision 4's creases and expression table), ``revisions`` (the registry of generator
revisions), ``render`` (rasterisation), ``writer`` (files).
"""

from lldif_bench.synthetic.expressions import ActionUnits, sample_action_units
from lldif_bench.synthetic.render import (
           FaceSpec,
           RenderedFace,
           render_face,
           sample_face_spec,
)
from lldif_bench.synthetic.writer import class_counts, generate_synthetic, split_plan

__all__ = ["ActionUnits", "FaceSpec", "RenderedFace", "class_counts", "generate_synthetic",
           "render_face", "sample_action_units", "sample_face_spec", "split_plan"]
