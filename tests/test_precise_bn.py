"""Precise BatchNorm: running statistics = the plain average over training-composed batches; nothing else moves."""

import pytest
import torch
from torch import nn

from vssl.train.precise_bn import precise_batchnorm


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2), nn.BatchNorm1d(2))


def test_statistics_are_the_average_over_the_batches_and_nothing_else_changes():
    net = _net().train()
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(8, 3, generator=g) * (i + 1) + i for i in range(5)]
    for x in batches[:2]:  # stale statistics from "training"
        net(x * 3)
    frozen = net[4].eval()  # a frozen layer keeps its statistics
    before = {k: v.clone() for k, v in net.state_dict().items()}
    drift = []

    def forward(x: torch.Tensor) -> None:
        net(x)
        net[3].weight.add_(1.0)  # a side effect of the forward (e.g. a momentum step) is undone
        drift.append(1)

    assert precise_batchnorm(net, forward, batches) == 5
    with torch.no_grad():
        hidden = [x @ before["0.weight"].T + before["0.bias"] for x in batches]
    expected_mean = torch.stack([h.mean(0) for h in hidden]).mean(0)
    expected_var = torch.stack([h.var(0, unbiased=True) for h in hidden]).mean(0)
    torch.testing.assert_close(net[1].running_mean, expected_mean)
    torch.testing.assert_close(net[1].running_var, expected_var)
    assert net[1].momentum == 0.1 and frozen.momentum == 0.1
    after = net.state_dict()
    for key, value in before.items():
        if key.startswith("1.running") or key == "1.num_batches_tracked":
            continue
        assert torch.equal(after[key], value), key
    assert len(drift) == 5


def test_nothing_to_do_and_no_batches():
    plain = nn.Linear(2, 2)
    assert precise_batchnorm(plain, plain, [torch.zeros(1, 2)]) == 0
    net = _net().train()
    with pytest.raises(ValueError, match="no batch"):
        precise_batchnorm(net, net, [])
