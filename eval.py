"""Score audio with a trained checkpoint: `python eval.py ckpt=<path> [data=... split=test]`.

Writes <split>_scores.txt and <split>_metrics.json (and plots) to output_dir; see conf/eval.yaml.
"""

import hydra
from omegaconf import DictConfig

from spoof_lightning.evaluation import evaluate, format_report


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    print(format_report(evaluate(cfg)))


if __name__ == "__main__":
    main()
