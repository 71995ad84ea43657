"""The LSTM LM: loss against a hand-computed LSTM + cross-entropy, perplexity against a
whole-sequence oracle, tied tables, the SSE softmax table, config checks."""

from __future__ import annotations

import math

import pytest
import torch

from embedlab.config.io import build_typed_config
from embedlab.errors import UserError
from embedlab.lm.config import LmConfig
from embedlab.lm.data import batchify
from embedlab.lm.model import LstmLm
from embedlab.lm.objective import evaluate_stream, window_loss

V = 7


def tiny(*overrides: str, vocab: int = V, seed: int = 0) -> LstmLm:
    base = ["model.embedding_dim=3", "model.hidden=4", "model.layers=2", "model.init_scale=0.5"]
    config = build_typed_config(LmConfig, overrides=base + list(overrides))
    torch.manual_seed(seed)
    return LstmLm(vocab_size=vocab, config=config)


def manual_logits(model: LstmLm, inputs: torch.Tensor) -> torch.Tensor:
    """The LSTM written out gate by gate (torch's order i, f, g, o), float64, zero state."""
    lstm = model.lstm
    x = model.token_embedding.weight.double()[inputs]  # (B, T, E)
    batch, steps = inputs.shape
    for layer in range(lstm.num_layers):
        w_ih = getattr(lstm, f"weight_ih_l{layer}").double()
        w_hh = getattr(lstm, f"weight_hh_l{layer}").double()
        bias = (getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")).double()
        h = torch.zeros(batch, lstm.hidden_size, dtype=torch.float64)
        c = torch.zeros_like(h)
        outputs = []
        for t in range(steps):
            gates = x[:, t] @ w_ih.T + h @ w_hh.T + bias  # (B, 4H)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        x = torch.stack(outputs, dim=1)  # (B, T, H)
    table = model.output_layer().weight.double()
    return x @ table.T + model.bias.double()  # (B, T, V)


@pytest.mark.parametrize("tied", [False, True])
def test_window_loss_equals_hand_computed_cross_entropy(tied: bool) -> None:
    over = ["model.tie_weights=true", "model.embedding_dim=4"] if tied else []
    model = tiny(*over)
    g = torch.Generator().manual_seed(1)
    inputs = torch.randint(0, V, (3, 5), generator=g)
    targets = torch.randint(0, V, (3, 5), generator=g)
    logits = manual_logits(model, inputs)
    nll = 0.0
    for b in range(3):
        for t in range(5):
            row = logits[b, t].tolist()
            log_z = math.log(sum(math.exp(v) for v in row))
            nll += log_z - row[int(targets[b, t])]
    step = window_loss(model, inputs, targets, None)
    # summed over time, averaged over the batch (Zaremba's scale); no penalty configured
    assert float(step.loss.detach()) == pytest.approx(nll / 3, rel=1e-5)
    assert step.nll_sum == pytest.approx(nll, rel=1e-5)
    assert step.tokens == 15
    assert step.state[0].shape == (2, 3, 4)


def test_penalties_of_both_tables_are_added() -> None:
    reg = "embedding.regularize.kind=lp"
    model = tiny(f"token_{reg}", "token_embedding.regularize.weight=0.5",
                 f"output_{reg}", "output_embedding.regularize.weight=0.25")  # fmt: skip
    inputs, targets = torch.tensor([[1, 2]]), torch.tensor([[2, 3]])
    plain = window_loss(tiny(), inputs, targets, None).loss
    both = window_loss(model, inputs, targets, None).loss
    tok, out = model.token_embedding.weight, model.output_layer().weight
    expected = 0.5 / 2 * tok.pow(2).sum() + 0.25 / 2 * out.pow(2).sum()
    assert float((both - plain).detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_gradient_reaches_every_parameter() -> None:
    model = tiny()
    inputs = torch.arange(V).reshape(1, V)
    window_loss(model, inputs, inputs.roll(-1, 1), None).loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("bptt", [1, 4, 50])
def test_perplexity_is_exp_mean_nll_over_the_whole_split(bptt: int) -> None:
    model = tiny("model.dropout=0.5", "token_embedding.sse.kind=se", "token_embedding.sse.p=0.5")
    ids = torch.randint(0, V, (103,), generator=torch.Generator().manual_seed(2))
    data = batchify(ids, 3)  # (3, 34)
    got = evaluate_stream(model, data, bptt)
    assert model.training  # the mode is restored
    model.eval()  # oracle: each row read whole, from a zero state, no dropout, no SSE
    total = 0.0
    with torch.no_grad():
        for row in data:
            logits, _ = model(row[None, :-1])
            log_p = torch.log_softmax(logits.double(), dim=-1)[0]
            total -= float(log_p.gather(1, row[1:, None]).sum())
    count = 3 * 33
    assert got["tokens"] == count
    assert got["loss"] == pytest.approx(total / count, rel=1e-6)
    assert got["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-6)


def test_tied_tables_are_one_parameter() -> None:
    model = tiny("model.tie_weights=true", "model.embedding_dim=4")
    assert model.output_layer() is model.token_embedding
    names = [n for n, _ in model.named_parameters()]
    assert sum("weight" in n and "lstm" not in n for n in names) == 1


def test_output_sse_replaces_softmax_rows_in_training_only() -> None:
    model = tiny("output_embedding.sse.kind=se", "output_embedding.sse.p=1.0")
    table = model.output_layer().weight
    torch.manual_seed(0)
    trained = model.output_table()
    assert trained.shape == table.shape
    assert not torch.equal(trained, table)  # p = 1: every row replaced by another
    rows = {tuple(r) for r in table.tolist()}
    assert all(tuple(r) in rows for r in trained.tolist())  # ... by rows of the same table
    model.eval()
    assert torch.equal(model.output_table(), table)


def test_config_rejects_untieable_widths_and_unknown_keys() -> None:
    with pytest.raises(UserError, match="embedding_dim"):
        build_typed_config(LmConfig, overrides=["model.tie_weights=true", "model.hidden=300"])
    with pytest.raises(UserError, match="output_embedding"):
        build_typed_config(
            LmConfig, overrides=["model.tie_weights=true", "output_embedding.dropout=0.1"]
        )
    with pytest.raises(UserError, match=r"train\.bogus: unknown key"):
        build_typed_config(LmConfig, overrides=["train.bogus=1"])
    # a table override keeps the LM's U(-0.1, 0.1) init (not EmbeddingConfig's Xavier default)
    sse = build_typed_config(LmConfig, overrides=["token_embedding.sse.kind=se"])
    assert sse.token_embedding.init == LmConfig().token_embedding.init
    scaled = build_typed_config(LmConfig, overrides=["output_embedding.init.scale=0.05"])
    assert (scaled.output_embedding.init.name, scaled.output_embedding.init.scale) == (
        "uniform",
        0.05,
    )
    defaults = LmConfig()
    assert (defaults.model.hidden, defaults.train.bptt, defaults.train.max_epochs) == (200, 20, 13)
    assert defaults.token_embedding.init.name == "uniform"
    assert defaults.token_embedding.init.scale == 0.1
