"""cnnlib: convolutional networks from the ground up, in numpy.

Every layer is a forward/backward pair written by hand and checked against numerical gradients.
The course notebooks in ``notebooks/`` derive each one; this package is the single source of truth
the later notebooks, the trainer and the drawing widget all use.
"""

__version__ = "0.1.0"
