"""Score audio with a trained checkpoint: `spoof-lightning eval ckpt=<path> [data=... split=test]`
(or `python eval.py ...`, the same).

Writes score files (2019 CM, 2021 submission, CSV with metadata), metrics.json, a DET
curve and a score histogram to output_dir, and prints a table; see conf/eval.yaml and
spoof_lightning/evaluation.py. Exit codes: 0 done, 2 a user error (one paragraph on stderr),
128 + N stopped by signal N (143 SIGTERM, 138 SIGUSR1, 140 SIGUSR2) with nothing written.
"""

from omegaconf import DictConfig

from spoof_lightning.cli import hydra_app, user_errors_reported
from spoof_lightning.evaluation import evaluate
from spoof_lightning.outputs import format_report
from spoof_lightning.preemption import Preempted, exit_preempted, handling_signals


@hydra_app("eval")
def main(cfg: DictConfig) -> None:
    try:
        with handling_signals(), user_errors_reported():
            report = evaluate(cfg)
    except Preempted as stop:
        exit_preempted(stop)
    print(format_report(report))


if __name__ == "__main__":
    main()
