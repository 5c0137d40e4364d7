"""Cross-modal retrieval with the max-pooled similarity (SSL-SaN reports it): recall@k both directions."""

from __future__ import annotations

import torch

KS = (1, 5, 10)


def recall_at_k(similarity: torch.Tensor, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """``similarity`` ``[N, N]`` (image i, audio j; the diagonal pairs belong together) ->
    ``image_to_audio_r@k`` and ``audio_to_image_r@k``: the fraction of queries whose partner ranks in the top k.
    Ties count against the query (a constant similarity scores recall k/N, not 1)."""
    sim = similarity.double()
    n = sim.shape[0]
    if sim.ndim != 2 or sim.shape[1] != n:
        raise ValueError(f"similarity must be square [N, N], got {list(sim.shape)}")
    diag = sim.diagonal()
    # rank of the partner = number of candidates scoring at least as high, minus the partner itself
    rank_i2a = (sim >= diag[:, None]).sum(1) - 1
    rank_a2i = (sim >= diag[None, :]).sum(0) - 1
    out = {}
    for k in ks:
        out[f"image_to_audio_r@{k}"] = float((rank_i2a < k).double().mean())
        out[f"audio_to_image_r@{k}"] = float((rank_a2i < k).double().mean())
    return out
