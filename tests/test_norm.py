"""One pass normalised by another's batch statistics (how SSL-SaN embeds its negative clips)."""

import copy

import torch

from vssl.models.norm import recorded_statistics, recording_statistics


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.BatchNorm2d(4)
    )
    for bn in (net[1], net[3]):
        torch.nn.init.uniform_(bn.weight, 0.5, 2.0)
        torch.nn.init.uniform_(bn.bias, -1.0, 1.0)
    return net.train()


def test_the_second_pass_is_normalised_by_the_first_and_changes_nothing():
    net, plain = _net(), _net()
    x = torch.randn(8, 1, 6, 6, requires_grad=True)
    y = torch.randn(3, 1, 6, 6) * 5 + 2  # another distribution: its own statistics would differ
    stats = {}
    with recording_statistics(net, stats):
        out_x = net(x)
    assert torch.equal(out_x, plain(x))  # recording changes nothing in the recorded pass
    buffers = copy.deepcopy(dict(net.named_buffers()))
    with recorded_statistics(net, stats):
        out_y = net(y)
    assert all(torch.equal(buffers[n], b) for n, b in net.named_buffers())  # no running statistic moved
    # the same computation by hand: each layer normalises y's activations by x's batch statistics at that layer
    h_x, h_y = net[0](x), net[0](y)
    mean, var = h_x.mean((0, 2, 3)), h_x.var((0, 2, 3), unbiased=False)

    def norm(h, m, v, bn):
        c = (slice(None), None, None)  # a per-channel vector against [N, C, H, W]
        return (h - m[c]) / (v[c] + bn.eps).sqrt() * bn.weight[c] + bn.bias[c]

    g_x, g_y = torch.relu(norm(h_x, mean, var, net[1])), torch.relu(norm(h_y, mean, var, net[1]))
    expected = norm(g_y, g_x.mean((0, 2, 3)), g_x.var((0, 2, 3), unbiased=False), net[3])
    tol = 1e-5 * (1 + expected.abs().max())  # float32 rounding of a few multiply-adds per element
    assert (out_y - expected).abs().max() <= tol
    out_y.sum().backward()
    assert x.grad is None or not x.grad.any()  # the statistics are constants: nothing flows into x's pass
    assert net[0].weight.grad is not None  # ... while the weights do learn from y
    assert type(net[1]).forward is torch.nn.BatchNorm2d.forward and "forward" not in vars(net[1])  # restored


def test_layers_in_eval_mode_record_nothing_and_keep_their_running_statistics():
    net = _net().eval()
    stats = {}
    x, y = torch.randn(4, 1, 6, 6), torch.randn(2, 1, 6, 6)
    with recording_statistics(net, stats):
        net(x)
    assert stats == {}
    with recorded_statistics(net, stats):
        assert torch.equal(net(y), _net().eval()(y))


def test_float64_passes_keep_their_precision():
    net = _net().double()
    stats = {}
    with recording_statistics(net, stats):
        net(torch.randn(4, 1, 6, 6, dtype=torch.float64))
    with recorded_statistics(net, stats):
        assert net(torch.randn(2, 1, 6, 6, dtype=torch.float64)).dtype == torch.float64
    assert all(mean.dtype == var.dtype == torch.float64 for mean, var in stats.values())
