"""Continual learning (DFWF vs fine-tuning): `python -m spoof_lightning.continual experiment=...`.

See conf/continual.yaml and spoof_lightning/lit/continual.py; e.g.
``python -m spoof_lightning.continual experiment=dfwf_demo`` writes the EER matrices,
average EER and forgetting to ``logs/runs/<run_name>/v<N>/continual.{json,md}``.
"""

import hydra
from omegaconf import DictConfig

from spoof_lightning.cli import user_errors_reported
from spoof_lightning.lit.continual import format_markdown, run_continual


@hydra.main(version_base="1.3", config_path="../conf", config_name="continual")
def main(cfg: DictConfig) -> float:
    with user_errors_reported():
        results = run_continual(cfg)
    print(format_markdown(results))
    print(f"run directory {results['run_dir']}")
    # What a sweeper minimises: the average EER of DFWF after the last experience.
    return results["regimes"]["dfwf"]["average_eer_percent"]


if __name__ == "__main__":
    main()
