"""Train a countermeasure: `spoof-lightning train [group=choice ...] [key=value ...]` (or
`python train.py ...`, the same).

See conf/train.yaml for the defaults (the built-in demo corpus) and README.md for recipes.
Exit codes: 0 done, 2 a user error (one paragraph on stderr), 128 + N stopped by signal N
after saving last.ckpt (143 SIGTERM, 138 SIGUSR1, 140 SIGUSR2; resume=true continues).
"""

from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig

from spoof_lightning.cli import hydra_app, user_errors_reported
from spoof_lightning.preemption import Preempted, exit_preempted
from spoof_lightning.training import format_summary, train


@hydra_app("train")
def main(cfg: DictConfig) -> float:
    try:
        with user_errors_reported():
            summary = train(cfg)
    except Preempted as stop:
        exit_preempted(stop)
    if rank_zero_only.rank == 0:
        print(format_summary(summary))
    # The value a hyper-parameter sweeper minimises (NaN marks a failed trial).
    return summary.get("best_val_eer_percent", float("nan"))


if __name__ == "__main__":
    main()
