"""Learning-rate schedules that torch does not ship."""

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def noam_schedule(optimizer: Optimizer, warmup_steps: int = 1000, d_model: int = 64) -> LambdaLR:
    """The Transformer ("Noam") rule, lr = d_model^-0.5 * min(s^-0.5, s * warmup^-1.5),
    stepped per optimizer step (s = step + 1), as the SE-Res2Net anti-spoofing recipe uses.

    The optimizer's own ``lr`` is ignored: the factor returned is the absolute rate divided
    by it, so the curve is the paper's whatever ``optimizer.lr`` says.
    """
    if warmup_steps < 1:
        raise ValueError(f"scheduler.warmup_steps must be >= 1, got {warmup_steps}")
    base_lrs = [group["lr"] for group in optimizer.param_groups]

    def factor_for(base_lr: float):
        def factor(step: int) -> float:
            s = step + 1
            return d_model**-0.5 * min(s**-0.5, s * warmup_steps**-1.5) / base_lr

        return factor

    return LambdaLR(optimizer, [factor_for(lr) for lr in base_lrs])
