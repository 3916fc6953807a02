"""Random generators: every random choice in cnnlib comes from one ``numpy.random.Generator``."""

import numpy as np

__all__ = ["as_generator"]


def as_generator(rng=None):
    """A numpy Generator from ``rng``: a Generator is used as it is (so one run shares one stream);
    None gives fresh entropy; an int or a SeedSequence seeds a new one reproducibly."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
