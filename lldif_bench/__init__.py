"""lldif-bench: low-light facial-expression-recognition dataset synthesis and benchmarks."""

__version__ = "0.1.0"
