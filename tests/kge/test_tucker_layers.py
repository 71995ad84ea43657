"""TuckER's own layers (``model.tucker``): batch norm and the three dropouts of Balazevic et
al.'s code, against the plain trilinear product."""

from __future__ import annotations

import pytest
import torch

from embedlab.errors import UserError
from embedlab.kge.config import TuckerConfig, build_config
from embedlab.kge.interactions.tucker import TuckER


def _naive(core: torch.Tensor, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ijk,bi,bj->bk", core, h, r)


def test_the_per_query_core_path_equals_the_trilinear_product_in_eval_mode() -> None:
    torch.manual_seed(0)
    layers = TuckerConfig(batch_norm=True, input_dropout=0.3, hidden_dropout1=0.4,
                          hidden_dropout2=0.5)  # fmt: skip
    model = TuckER(dim=6, relation_dim=4, layers=layers).double().eval()
    h, r = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    # fresh batch norm in eval mode: x / sqrt(1 + eps) with running mean 0, variance 1
    scale = (1 + model.bn0.eps) ** -0.5 * (1 + model.bn1.eps) ** -0.5
    torch.testing.assert_close(model.query(h, r), _naive(model.core, h, r) * scale)
    plain = TuckER(dim=6, relation_dim=4).double()
    plain.core.data.copy_(model.core.data)
    torch.testing.assert_close(plain.query(h, r), _naive(model.core, h, r))


def test_training_mode_normalizes_with_batch_statistics_and_drops_out() -> None:
    torch.manual_seed(0)
    model = TuckER(dim=8, relation_dim=8, layers=TuckerConfig(batch_norm=True)).train()
    h, r = 3 + 2 * torch.randn(64, 8), torch.randn(64, 8)
    x = model.bn0(h)
    assert x.mean(0).abs().max() < 1e-5 and (x.var(0, unbiased=False) - 1).abs().max() < 1e-3
    dropping = TuckER(dim=8, relation_dim=8, layers=TuckerConfig(hidden_dropout2=0.5)).train()
    q = dropping.query(h, r)
    assert (q == 0).float().mean() > 0.3  # about half the query coordinates are dropped
    dropping.eval()
    assert torch.equal(dropping.query(h, r), dropping.query(h, r))


def test_tucker_layers_are_refused_for_other_models() -> None:
    with pytest.raises((UserError, ValueError), match="model.tucker"):
        build_config(overrides=["dataset=nations", "model.name=distmult",
                                "model.tucker.batch_norm=true"])  # fmt: skip
    config = build_config(overrides=["dataset=nations", "model.name=tucker",
                                     "model.tucker.batch_norm=true"])  # fmt: skip
    assert config.model.tucker.batch_norm
