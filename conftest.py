"""Settings for every test run, the docstring examples of ``maesn_sb3`` and ``wrappers`` included."""

import torch

# The tests train tiny networks on tiny batches: one thread avoids oversubscribing the 2-core
# machines (several times faster when other processes compete for the cores).
torch.set_num_threads(1)
