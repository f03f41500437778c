"""Hydra's submitit launchers, with requeued jobs that continue their own run directory.

submitit requeues a job that SLURM is about to stop (time limit, preemption: SIGUSR2) by
calling the launcher's ``checkpoint`` and submitting what it returns. The stock launcher
returns the job's original overrides, so the requeued job would start a new run; these add
``resume=<the job's run directory>`` (spoof_lightning.rundir.requeue_overrides). Used by
conf/hydra/launcher/slurm.yaml. Hydra finds plugins only in the ``hydra_plugins`` package.
"""

from typing import Any

from hydra.core.hydra_config import HydraConfig

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
        LocalLauncher,
        SlurmLauncher,
    )
except ImportError:  # the optional `cluster` extra is not installed
    LocalLauncher = SlurmLauncher = None


def _requeued(sweep_overrides: list[str]) -> list[str]:
    from spoof_lightning.rundir import requeue_overrides

    if not HydraConfig.initialized():  # not inside a running job: nothing to continue
        return sweep_overrides
    return requeue_overrides(sweep_overrides, HydraConfig.get().runtime.output_dir)


if SlurmLauncher is not None:

    class ResumingSlurmLauncher(SlurmLauncher):
        """SLURM jobs through submitit; a requeued job resumes its run directory."""

        def checkpoint(self, sweep_overrides: list[str], *args: Any, **kwargs: Any) -> Any:
            return super().checkpoint(_requeued(sweep_overrides), *args, **kwargs)

    class ResumingLocalLauncher(LocalLauncher):
        """Local submitit jobs (to try the SLURM path on one machine), requeued likewise."""

        def checkpoint(self, sweep_overrides: list[str], *args: Any, **kwargs: Any) -> Any:
            return super().checkpoint(_requeued(sweep_overrides), *args, **kwargs)
