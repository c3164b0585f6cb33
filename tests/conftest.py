"""Suite-wide test settings.

One torch thread per test process: the suite runs under pytest-xdist with one worker per core,
and intra-op threads on top of that oversubscribe a small machine badly.
"""

import torch

torch.set_num_threads(1)
