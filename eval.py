"""Score audio with a trained checkpoint: `python eval.py ckpt=<path> [data=... split=test]`.

Writes score files (2019 CM, 2021 submission, CSV with metadata), metrics.json, a DET
curve and a score histogram to output_dir, and prints a table; see conf/eval.yaml and
spoof_lightning/evaluation.py.
"""

import hydra
from omegaconf import DictConfig

from spoof_lightning.cli import user_errors_reported
from spoof_lightning.evaluation import evaluate
from spoof_lightning.outputs import format_report


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    with user_errors_reported():
        report = evaluate(cfg)
    print(format_report(report))


if __name__ == "__main__":
    main()
