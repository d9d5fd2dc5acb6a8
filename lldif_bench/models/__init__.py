"""Model families implemented inside the package (the paper's own method lives in :mod:`.lldif`)."""
