"""pytest set-up for the notebooks under nbval: the environment of the kernels nbval starts.

The kernels inherit this process's environment, and tools/run_notebooks.py executes the stored
baselines with the same settings, so a baseline and its check run alike:

- PYTHONHASHSEED=0: a notebook whose output depended on string-hash order would then differ under
  both, every run, instead of passing one and failing the other at random.
- OPENBLAS_NUM_THREADS=1 (unless already set): small matrix products, as in a training loop, ran
  16 times slower with OpenBLAS's default threads on a busy 2-core machine (threads spin waiting
  for a core); with `-n 2` two notebooks already use both cores. Results do not depend on it.
"""

import os

os.environ["PYTHONHASHSEED"] = "0"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
