"""Cost of the evaluation metrics on corpus-sized score sets (synthetic scores): prints JSON.

    python bench/metrics_cost.py [--resamples 1000]

* the bootstrap 95% CI of the EER on ASVspoof 2019 LA eval sizes (7,355 bona fide,
  63,882 spoof), the default 1000 resamples;
* ``cm_metrics`` (EER, minDCF, actDCF, Cllr) on ASVspoof 5 eval sizes (680,774 trials);
* ``sasv_metrics`` (a-DCF, min t-DCF, accelerated t-EER) on 100k target, 100k non-target and
  200k spoof trials.
"""

import argparse
import json
import os
import platform
import time

import numpy as np

from spoof_lightning.metrics.asvspoof5 import cm_metrics, sasv_metrics
from spoof_lightning.metrics.bootstrap import eer_confidence_interval


def timed(function, *args, **kwargs) -> dict[str, float]:
    """Wall seconds and CPU seconds of this process (the latter barely depends on what else
    runs on a shared machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args, **kwargs)
    return {
        "wall_s": round(time.perf_counter() - wall, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    la19 = rng.normal(2, 1, 7355), rng.normal(0, 1, 63882)
    asv5 = rng.normal(1.5, 1, 138688), rng.normal(0, 1.2, 542086)
    n = (100_000, 100_000, 200_000)
    asv = [rng.normal(m, 1, k) for m, k in zip((3, -2, 1.5), n, strict=True)]
    cm = [rng.normal(m, 1.3, k) for m, k in zip((2, 2, -1), n, strict=True)]
    sasv = [a + c for a, c in zip(asv, cm, strict=True)]
    record = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "bootstrap_eer_ci_71237_trials": timed(
            eer_confidence_interval, *la19, n_resamples=args.resamples
        ),
        "bootstrap_resamples": args.resamples,
        "cm_metrics_680774_trials": timed(cm_metrics, *asv5),
        "sasv_metrics_400000_trials": timed(sasv_metrics, *asv, *cm, *sasv),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
