"""Generic model tests over every model: score paths agree, the fused training loss equals the
plain one, gradients reach every parameter."""

from __future__ import annotations

import pytest
import torch

from embedlab.datasets.kg import load_kg
from embedlab.evaluation.kge_eval import known_answers
from embedlab.kge.config import build_config
from embedlab.kge.interactions import INTERACTIONS
from embedlab.kge.model import KgeModel
from embedlab.kge.one_vs_all import OneVsAllTask
from embedlab.losses import sce, sce_bc, sce_ls

NAMES = sorted(INTERACTIONS)


def _model(name: str, **extra: object) -> KgeModel:
    torch.manual_seed(0)
    over = [f"model.name={name}", "model.dim=8"] + [f"{k}={v}" for k, v in extra.items()]
    return KgeModel(num_entities=9, num_relations=2, config=build_config(overrides=over))


@pytest.mark.parametrize("name", NAMES)
def test_score_tails_heads_and_triples_agree(name: str) -> None:
    model = _model(name).eval()
    h, r, t = torch.tensor([0, 3, 8]), torch.tensor([0, 1, 1]), torch.tensor([2, 2, 5])
    triples = torch.stack([h, r, t], 1)
    tails = model.score_tails(h, r)
    assert tails.shape == (3, 9)
    torch.testing.assert_close(tails[torch.arange(3), t], model.score_triples(triples))
    heads = model.score_heads(r, t)  # reciprocal: (t, r + R, h)
    inverse = torch.stack([t, r + 2, h], 1)
    torch.testing.assert_close(heads[torch.arange(3), h], model.score_triples(inverse))


@pytest.mark.parametrize("name", NAMES)
def test_score_candidates_equals_score_tails(name: str) -> None:
    model = _model(name).eval()
    s, r = torch.tensor([0, 3, 8, 1]), torch.tensor([0, 1, 3, 2])
    cand = torch.tensor([[1, 2, 2], [0, 8, 4], [5, 5, 6], [7, 1, 0]])
    torch.testing.assert_close(
        model.score_candidates(s, r, cand), model.score_tails(s, r).gather(1, cand)
    )


@pytest.mark.parametrize("loss", ["sce", "sce_ls", "sce_bc"])
@pytest.mark.parametrize("name", NAMES)
def test_fused_training_loss_equals_plain_and_reaches_parameters(name: str, loss: str) -> None:
    ds = load_kg("nations")
    cfg = build_config(
        overrides=[f"model.name={name}", "model.dim=8", "dataset=nations", f"loss.name={loss}"]
    )
    torch.manual_seed(0)
    model = KgeModel(num_entities=ds.num_entities, num_relations=ds.num_relations, config=cfg)
    task = OneVsAllTask(
        model=model, dataset=ds, known=known_answers(ds.all_triples(), ds.num_relations), config=cfg
    )
    batch = ds.splits["train"][:16]
    fused, rows = task.loss(batch)
    assert rows == 32
    fused_grads = torch.autograd.grad(fused, list(model.parameters()))
    q = torch.cat(
        [batch, torch.stack([batch[:, 2], batch[:, 1] + ds.num_relations, batch[:, 0]], 1)]
    )
    scores = model.score_tails(q[:, 0], q[:, 1])
    if loss == "sce":
        plain = sce(scores, q[:, 2]) / 16
    elif loss == "sce_ls":
        plain = sce_ls(scores, q[:, 2], label_smoothing=cfg.loss.label_smoothing) / 16
    else:
        w = task.frequencies.backward_correction_weights(q[:, 0], q[:, 1], q[:, 2])
        assert not torch.allclose(w, torch.ones_like(w))
        plain = sce_bc(scores, q[:, 2], weights=w) / 16
    plain_grads = torch.autograd.grad(plain, list(model.parameters()))
    assert fused.item() == pytest.approx(plain.item(), rel=1e-5)
    for fg, pg in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(fg, pg, rtol=1e-4, atol=1e-6)
        assert fg.abs().sum() > 0


def test_odd_complex_dim_is_a_user_error() -> None:
    from embedlab.errors import UserError

    with pytest.raises(UserError, match="even"):
        KgeModel(num_entities=3, num_relations=1, config=build_config(overrides=["model.dim=7"]))
    with pytest.raises(UserError, match="even"):
        _model("rotate", **{"model.dim": 7})
