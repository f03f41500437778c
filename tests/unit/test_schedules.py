import pytest
import torch

from spoof_lightning.schedules import noam_schedule


def _rates(steps: int, warmup: int = 10, d_model: int = 64) -> list[float]:
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    scheduler = noam_schedule(optimizer, warmup_steps=warmup, d_model=d_model)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_noam_warms_up_linearly_then_decays_as_inverse_sqrt():
    rates = _rates(40, warmup=10)
    peak = 64**-0.5 * 10**-0.5
    assert rates[0] == pytest.approx(peak / 10)  # step 1 of 10
    assert rates[9] == pytest.approx(peak)  # the peak at the end of the warm-up
    assert rates[39] == pytest.approx(64**-0.5 * 40**-0.5)
    assert max(rates) == pytest.approx(peak)


def test_bad_warmup_names_the_key():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="scheduler.warmup_steps"):
        noam_schedule(optimizer, warmup_steps=0)
