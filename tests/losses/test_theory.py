"""Paper 002's theory as numbers: table 1, Props. 2/3/5 checked by fitting free logits, the
Bregman divergences of figure 1, the train/test KL of figure 2, and the ``embedlab theory`` CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from embedlab.cli.main import main
from embedlab.losses import ns, ns_freq, sans, sce, sce_bc, sce_ls
from embedlab.losses.kl import dataset_kl
from embedlab.losses.theory import (
    OBJECTIVE_LOSSES,
    bregman,
    figure1,
    objective_distribution,
    psi_ns,
    psi_sce,
    sans_fixed_point,
    t_xy,
)

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors: a second intra-op thread only adds synchronization, which costs seconds
    per fit when the cores are shared with other work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- objective distributions (table 1)

PD3 = torch.tensor([0.5, 0.3, 0.2], dtype=F64)
PN3 = torch.tensor([0.2, 0.3, 0.5], dtype=F64)


def test_hand_computed_rows() -> None:
    # p_d/p_n = [2.5, 1, 0.4], sum 3.9: T = 3.9 p_n = [0.78, 1.17, 1.95]
    torch.testing.assert_close(t_xy(PD3, PN3), torch.tensor([0.78, 1.17, 1.95], dtype=F64))
    eq9 = torch.tensor([25 / 39, 10 / 39, 4 / 39], dtype=F64)
    ls = torch.tensor([0.45, 0.31, 0.24], dtype=F64)  # 0.7 p_d + 0.3 / 3
    expected = {"ns_uni": PD3, "sce": PD3, "ns_freq": eq9, "sce_bc": eq9, "sans": ls, "sce_ls": ls}
    for loss, want in expected.items():
        got = objective_distribution(loss, PD3, p_n=PN3, lam=0.3)
        torch.testing.assert_close(got, want, msg=loss)


def test_table1_t_inverse_pd_is_already_normalized() -> None:
    torch.manual_seed(0)
    p_d = torch.softmax(torch.randn(4, 6, dtype=F64), -1)
    p_n = torch.softmax(torch.randn(4, 6, dtype=F64), -1)
    q = p_d / t_xy(p_d, p_n)  # table 1 as written, no renormalization
    torch.testing.assert_close(q.sum(-1), torch.ones(4, dtype=F64))
    torch.testing.assert_close(objective_distribution("ns_freq", p_d, p_n=p_n), q)


def test_prop5_uniform_noise() -> None:
    torch.manual_seed(1)
    p_d = torch.softmax(torch.randn(3, 7, dtype=F64), -1)
    uniform = torch.full((7,), 1 / 7, dtype=F64)
    torch.testing.assert_close(t_xy(p_d, uniform), torch.ones(3, 7, dtype=F64))
    for loss in ("ns_freq", "sce_bc"):
        torch.testing.assert_close(objective_distribution(loss, p_d, p_n=uniform), p_d)


def test_per_query_noise_and_shared_noise_agree() -> None:
    p_d = torch.stack([PD3, PN3])  # (2, 3)
    shared = objective_distribution("ns_freq", p_d, p_n=PN3)
    per_query = objective_distribution("ns_freq", p_d, p_n=PN3.expand(2, 3))
    torch.testing.assert_close(shared, per_query)
    torch.testing.assert_close(shared[0], torch.tensor([25 / 39, 10 / 39, 4 / 39], dtype=F64))


def test_sans_fixed_point_limits() -> None:
    torch.testing.assert_close(sans_fixed_point(PD3, alpha=0.0), PD3)  # eq. 11
    flat = sans_fixed_point(PD3, alpha=1e6)  # eq. 12
    torch.testing.assert_close(flat, torch.full((3,), 1 / 3, dtype=F64), atol=1e-5, rtol=0)
    half = PD3.sqrt() / PD3.sqrt().sum()
    torch.testing.assert_close(sans_fixed_point(PD3, alpha=1.0), half)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "nce", "p_d": PD3}, "unknown loss"),
        ({"loss": "sce", "p_d": torch.ones(2, 2, 2) / 2}, "shape"),
        ({"loss": "sce", "p_d": torch.tensor([0.5, 0.4])}, "sum to 1"),
        ({"loss": "sce", "p_d": torch.tensor([1.5, -0.5])}, "negative"),
        ({"loss": "ns_freq", "p_d": PD3}, "needs a noise"),
        ({"loss": "ns_freq", "p_d": PD3, "p_n": torch.tensor([0.0, 0.5, 0.5])}, "positive"),
        ({"loss": "sce_bc", "p_d": PD3, "p_n": torch.tensor([0.5, 0.5])}, "shape"),
        ({"loss": "sce_ls", "p_d": PD3, "lam": 1.5}, "lam"),
    ],
)
def test_objective_distribution_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        objective_distribution(**kwargs)


# ------------------------------------------------------------------ Bregman divergence (figure 1)

GRID = torch.linspace(0.01, 0.99, 99, dtype=F64)


@pytest.mark.parametrize("psi", [psi_sce, psi_ns], ids=["sce", "ns"])
def test_bregman_zero_on_diagonal_positive_elsewhere(psi) -> None:
    torch.testing.assert_close(bregman(psi, GRID, GRID), torch.zeros_like(GRID))
    d = bregman(psi, GRID.unsqueeze(1), GRID.unsqueeze(0))  # (99, 99)
    off = ~torch.eye(len(GRID), dtype=torch.bool)
    assert (d[off] > 0).all()


@pytest.mark.parametrize("psi", [psi_sce, psi_ns], ids=["sce", "ns"])
def test_analytic_derivative_matches_central_difference(psi) -> None:
    h = 1e-6
    numeric = (psi(GRID + h) - psi(GRID - h)) / (2 * h)
    torch.testing.assert_close(psi.grad(GRID), numeric, rtol=1e-6, atol=1e-8)


def test_psi_sce_is_the_two_label_negative_entropy() -> None:
    # footnote 3: sum_i z_i log z_i over (z, 1 - z); its Bregman divergence is the binary KL
    z = torch.stack([GRID, 1 - GRID], -1)
    torch.testing.assert_close(psi_sce(GRID), (z * z.log()).sum(-1))
    kl = 0.5 * torch.log(0.5 / GRID) + 0.5 * torch.log(0.5 / (1 - GRID))
    torch.testing.assert_close(bregman(psi_sce, 0.5, GRID), kl)


def test_figure1_sce_above_ns() -> None:
    """Fig. 1: d_sce(0.5, p) > d_ns(0.5, p) for p != 0.5; holds since Ψ''_sce = 1/(z(1-z)) >
    1/(z(1+z)) = Ψ''_ns on (0, 1)."""
    p = GRID[(GRID - 0.5).abs() > 1e-9]
    assert (bregman(psi_sce, 0.5, p) > bregman(psi_ns, 0.5, p)).all()
    assert bregman(psi_ns, 0.5, torch.tensor(0.5)).item() == 0.0


def test_figure1_writes_png(tmp_path: Path) -> None:
    out = figure1(tmp_path / "img" / "fig1.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------- propositions by fitting free logits (one per (x, y))

# n(x, y): X = 3 queries, Y = 5 candidates; p_d(y|x) = n / n_x, all distinct within a row
COUNTS = torch.tensor([[7, 5, 4, 3, 1], [1, 2, 3, 4, 10], [2, 9, 1, 5, 3]], dtype=F64)
P_D = COUNTS / COUNTS.sum(1, keepdim=True)  # (3, 5)
P_N = torch.tensor([0.1, 0.15, 0.2, 0.25, 0.3], dtype=F64)  # non-uniform noise, shared
_PAIR = torch.arange(15).repeat_interleave(COUNTS.flatten().long())  # (60,) one row per pair of D
X_OF, Y_OF = _PAIR // 5, _PAIR % 5  # (60,) each
TOL = 1e-3  # max |softmax(learned) - objective| and relative error of exp(f)


def _fit(loss: Callable[[torch.Tensor], torch.Tensor], steps: int = 1500) -> torch.Tensor:
    """Adam on free logits θ (3, 5), float64, full batch, lr 0.1 decayed ×0.997 per step, until
    every gradient is below 1e-9 (also keeps Adam's moments out of slow subnormal floats)."""
    theta = torch.zeros(3, 5, dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.1)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.997)
    for _ in range(steps):
        opt.zero_grad()
        loss(theta).backward()
        assert theta.grad is not None
        if theta.grad.abs().max() < 1e-9:
            break
        opt.step()
        sched.step()
    return theta.detach()


def _ns_rows(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One row per observed pair of D: ``[f(x, y) | f(x, y_1..y_5)]`` (60, 6); column 0 is the
    positive, the 5 others are every candidate as a negative, so the negative weights give the
    expectation over ``y_i ~ p_n`` of eq. 6 exactly (eq. 18)."""
    scores = torch.cat([theta[X_OF, Y_OF].unsqueeze(1), theta[X_OF]], dim=1)  # (60, 6)
    positives = torch.zeros_like(scores, dtype=torch.bool)
    positives[:, 0] = True
    return scores, positives


def test_ns_uniform_props_2_and_5() -> None:
    """``ns`` (sum) weights each of the 5 negatives by 1 = v p_n with v = 5, p_n = 1/5: eq. 8
    gives exp(f) = p_d / (v p_n) = p_d, and softmax(f) = p_d (Prop. 5)."""
    theta = _fit(lambda t: ns(*_ns_rows(t), negative_reduction="sum"))
    torch.testing.assert_close(theta.exp(), P_D, rtol=TOL, atol=0)
    assert (torch.softmax(theta, -1) - P_D).abs().max() < TOL


def test_ns_frequency_noise_props_2_and_3() -> None:
    """``ns_freq`` (sum) weights negatives by v p_n(y) with v = 5: exp(f) = p_d / (5 p_n) (eq. 8)
    and softmax(f) = eq. 9 = table 1's NS w/ Freq row, which differs from p_d."""
    noise = torch.cat([torch.ones(1, dtype=F64), P_N]).expand(60, 6)  # column 0 is masked
    theta = _fit(lambda t: ns_freq(*_ns_rows(t), noise=noise, negative_reduction="sum"))
    torch.testing.assert_close(theta.exp(), P_D / (5 * P_N), rtol=TOL, atol=0)
    want = objective_distribution("ns_freq", P_D, p_n=P_N)
    assert (torch.softmax(theta, -1) - want).abs().max() < TOL
    assert (want - P_D).abs().max() > 0.05  # the check can tell eq. 9 from p_d


def test_sans_smooths_towards_uniform() -> None:
    """SANS (α = 1): the paper derives its objective only approximately (eq. 13, a mixture of
    p_d and uniform), so this checks the smoothing, not equality with a mixture: the learned
    distribution keeps p_d's order of candidates and is closer to uniform than p_d in total
    variation. It also equals the exact fixed point p_d^(1/(1+α)) of eqs. 10 + 14
    (:func:`sans_fixed_point`, our derivation, not the paper's)."""
    theta = _fit(
        lambda t: sans(*_ns_rows(t), adversarial_temperature=1.0, negative_reduction="sum")
    )
    learned = torch.softmax(theta, -1)
    uniform = torch.full_like(P_D, 0.2)
    tv_learned = 0.5 * (learned - uniform).abs().sum(-1)
    tv_pd = 0.5 * (P_D - uniform).abs().sum(-1)
    assert (tv_learned < tv_pd - 0.02).all()
    assert torch.equal(learned.argsort(-1), P_D.argsort(-1))
    assert (learned - sans_fixed_point(P_D, alpha=1.0)).abs().max() < TOL


def test_sce_soft_targets() -> None:
    """eq. 4 with (X, Y) soft targets: softmax(f) = p_d (table 1, SCE)."""
    theta = _fit(lambda t: sce(t, P_D))
    assert (torch.softmax(theta, -1) - P_D).abs().max() < TOL


def test_sce_label_smoothing() -> None:
    """eq. 17, λ = 0.3: softmax(f) = 0.7 p_d + 0.3/5 (table 1, SCE w/ LS)."""
    theta = _fit(lambda t: sce_ls(t, P_D, label_smoothing=0.3))
    want = objective_distribution("sce_ls", P_D, lam=0.3)
    assert (torch.softmax(theta, -1) - want).abs().max() < TOL


def test_sce_backward_correction() -> None:
    """eq. 15 over the pairs of D with weights T_{x,y}^{-1} from p_n: softmax(f) = table 1's
    SCE w/ BC row (= NS w/ Freq's)."""
    weights = 1.0 / t_xy(P_D, P_N)[X_OF, Y_OF]  # (60,)
    theta = _fit(lambda t: sce_bc(t[X_OF], Y_OF, weights=weights))
    want = objective_distribution("sce_bc", P_D, p_n=P_N)
    assert (torch.softmax(theta, -1) - want).abs().max() < TOL


def test_cli_objective_single_row(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["theory", "objective", "--loss", "sce_ls", "--p-d", "0.7,0.2,0.1", "--lam", "0.3"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["p_d     0.7000  0.2000  0.1000", "sce_ls  0.5900  0.2400  0.1700"]


def test_cli_objective_all_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["theory", "objective", "--loss", "all", "--p-d", ".5,.3,.2", "--p-n", ".2,.3,.5"])
        == 0
    )
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert set(rows) == {"p_d", "p_n", *OBJECTIVE_LOSSES}
    assert rows["ns_freq"] == ["0.6410", "0.2564", "0.1026"]


@pytest.mark.parametrize(
    "argv",
    [
        ["theory", "objective", "--loss", "nce", "--p-d", "0.5,0.5"],
        ["theory", "objective", "--p-d", "0.5,abc"],
        ["theory", "objective", "--p-d", "0.5,0.4"],
        ["theory", "objective", "--p-d", "0.5,0.5", "--p-n", "1,0"],
        ["theory", "objective", "--p-d", "0.5,0.5", "--lam", "2"],
        ["theory", "kl", "--dataset", "no-such-dataset"],
    ],
)
def test_cli_user_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


def test_cli_bregman_and_kl(
    tiny_kg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["theory", "bregman", "--out", str(tmp_path / "f1.png")]) == 0
    assert (tmp_path / "f1.png").is_file()
    capsys.readouterr()
    argv = ["theory", "kl", "--dataset", str(tiny_kg), "--json", "--out", str(tmp_path / "f2.png")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    (record,) = json.loads(captured.out)
    assert record["kl"] == pytest.approx(dataset_kl(str(tiny_kg)).kl)
    assert "wrote" in captured.err and (tmp_path / "f2.png").is_file()
