"""Dataset adapters (RAF-DB, FER2013/FERPlus, KDEF, ImageFolder) and the low-light copy builder.

>>> from lldif_bench.datasets import ADAPTERS, open_dataset
>>> ds = ADAPTERS.get("rafdb")(Path("/data/RAF-DB/basic"))   # doctest: +SKIP
>>> ds = open_dataset("/data/LL-RAF-DB")                      # doctest: +SKIP
"""

from lldif_bench.datasets import ferplus, folder, kdef, rafdb  # noqa: F401  (register the adapters)
from lldif_bench.datasets.base import ADAPTERS, Dataset
from lldif_bench.datasets.detect import open_dataset
from lldif_bench.datasets.record import Record

__all__ = ["ADAPTERS", "Dataset", "Record", "open_dataset"]
