"""What every test shares: one intra-op thread per process.

The models under test are small; on the few shared cores the suite runs on, a second torch
thread per process only contends with the other processes (training subprocesses, loader
workers, the test itself): in-process runs are 2-3x faster with one. Set before torch is
imported, so that the commands the tests start inherit it (a user's OMP_NUM_THREADS wins).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
