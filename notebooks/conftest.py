"""pytest set-up for the notebooks under nbval.

The kernels nbval starts inherit this process's environment. tools/run_notebooks.py executes the
stored baselines with PYTHONHASHSEED=0, so nbval's kernels get the same value: a notebook whose
output depended on string-hash order would then differ every run under both, not pass one and
fail the other at random.
"""

import os

os.environ["PYTHONHASHSEED"] = "0"
