"""MF recommendations and fold-in against brute force: an argsort of the model's predicted
ratings without the rated items (read from the rating files), numpy least squares, and an ALS
half-step of the trained model."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from embedlab.config.io import build_typed_config
from embedlab.errors import UserError
from embedlab.recsys.als import als_half_step
from embedlab.recsys.config import MfConfig
from embedlab.recsys.recommend import FoldedUser, MfPredictor
from embedlab.recsys.run import train_mf
from tests.conftest import write_ratings

VARIANTS = {
    "als": ["train.method=als", "train.max_epochs=4"],
    "sgd-weighted-l2": ["train.method=sgd", "train.max_epochs=6", "train.lr=0.05",
                        "user_embedding.regularize.kind=lp", "user_embedding.regularize.weight=0.02",
                        "user_embedding.regularize.weighted=true"],
    "als-unweighted-l2-no-biases": ["train.method=als", "train.max_epochs=3", "model.biases=false",
                                    "user_embedding.regularize.kind=lp",
                                    "user_embedding.regularize.weight=0.0005"],
}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ratings(tmp_path_factory.mktemp("mf") / "ratings")


@pytest.fixture(scope="module", params=list(VARIANTS))
def run_dir(request: pytest.FixtureRequest, data: Path) -> Path:
    over = [f"dataset={data}", "model.dim=4", "train.weight_decay=0.05", "train.batch_size=64",
            "train.num_threads=1", "eval.every=2"]  # fmt: skip
    cfg = build_typed_config(MfConfig, overrides=over + VARIANTS[request.param])
    out = data.parent / request.param
    train_mf(cfg, out, progress=False)
    return out


@pytest.fixture(scope="module")
def predictor(run_dir: Path) -> MfPredictor:
    return MfPredictor.from_run(run_dir)


def _rated(data: Path, splits: tuple[str, ...]) -> dict[str, set[str]]:
    """Raw user id -> raw item ids rated in ``splits``, from the files."""
    out: dict[str, set[str]] = {}
    for split in splits:
        for line in (data / f"{split}.tsv").read_text().splitlines():
            user, item, _ = line.split("\t")
            out.setdefault(user, set()).add(item)
    return out


@pytest.mark.parametrize("exclude", [True, "all", False])
def test_recommend_equals_argsort_of_predicted_ratings(
    predictor: MfPredictor, data: Path, exclude: bool | str
) -> None:
    splits = {True: ("train",), "all": ("train", "test"), False: ()}[exclude]  # type: ignore[index]
    rated = _rated(data, splits)
    items = predictor.dataset.item_ids
    for user in predictor.dataset.user_ids:
        scores = predictor.predict(user, items)  # (I,): the model's formula, one user
        order = [items[i] for i in np.argsort(-scores, kind="stable")]
        want = [i for i in order if i not in rated.get(user, set())]
        got = predictor.recommend(user, k=7, exclude_rated=exclude)
        assert [r.item for r in got] == want[:7], user
        assert [r.rank for r in got] == list(range(1, len(want[:7]) + 1))
        assert got.excluded == len(rated.get(user, set()))
        for r in got:
            assert r.score == pytest.approx(float(scores[items.index(r.item)]))
            assert r.user == user and items[r.item_id] == r.item


def test_predict_is_the_model_formula(predictor: MfPredictor) -> None:
    e = predictor.embeddings()
    users = list(range(len(e.user_labels)))
    item = 3
    want = e.mean + e.user_bias + e.item_bias[item] + e.users.astype(np.float64) @ e.items[item]
    np.testing.assert_allclose(predictor.predict(users, item), want, rtol=1e-5, atol=1e-5)
    u0 = e.user_labels.index("u0")
    assert predictor.predict("u0", e.item_labels[item]) == pytest.approx(want[u0], abs=1e-5)


def _oracle_fold_in(p: MfPredictor, pairs: list[tuple[str, float]]) -> np.ndarray:
    """``[p, b]`` (or ``p``) by numpy least squares on the stacked system
    ``[F; sqrt(diag(ridge))] x = [t; 0]``, whose solution minimizes the fold-in objective."""
    cfg, e = p.config, p.embeddings()
    rows = [e.item_labels.index(item) for item, _ in pairs]
    feats = e.items[rows].astype(np.float64)  # (n, d)
    target = np.array([r for _, r in pairs]) - e.mean
    biases = cfg.model.biases
    if biases:
        target = target - e.item_bias[rows]
        feats = np.hstack([feats, np.ones((len(rows), 1))])
    n, d = len(rows), e.items.shape[1]
    ridge = np.full(feats.shape[1], cfg.train.weight_decay * n)
    reg = cfg.user_embedding.regularize
    if reg.kind == "lp" and reg.weight > 0:
        ridge[:d] += reg.weight * (n if reg.weighted else len(p.dataset.splits["train"]))
    a = np.vstack([feats, np.diag(np.sqrt(ridge))])
    b = np.concatenate([target, np.zeros(feats.shape[1])])
    return np.linalg.lstsq(a, b, rcond=None)[0]


def test_fold_in_equals_least_squares(predictor: MfPredictor) -> None:
    rng = np.random.default_rng(0)
    items = predictor.dataset.item_ids
    for n in (1, 3, 12):
        chosen = rng.choice(len(items), size=n, replace=False)
        pairs = [(items[i], float(rng.integers(1, 6))) for i in chosen]
        user = predictor.fold_in(pairs)
        x = _oracle_fold_in(predictor, pairs)
        d = predictor.embeddings().items.shape[1]
        np.testing.assert_allclose(user.factor, x[:d], rtol=1e-9, atol=1e-9)
        assert user.bias == pytest.approx(x[d] if predictor.config.model.biases else 0.0, abs=1e-9)
        assert predictor.fold_in(dict(pairs)).factor == pytest.approx(user.factor)


def test_fold_in_of_a_training_user_is_its_als_half_step(predictor: MfPredictor) -> None:
    """Folding in a user's own training ratings gives the row a user half-step of the trained
    model computes (float64 copy; the rows decouple without a Laplacian)."""
    train = predictor.dataset.splits["train"]
    model = copy.deepcopy(predictor.model).double()
    als_half_step(
        model,
        side="users",
        users=train.users,
        items=train.items,
        ratings=train.ratings.double(),
        weight_decay=predictor.config.train.weight_decay,
        penalty=predictor.config.user_embedding.regularize,
    )
    items = predictor.dataset.item_ids
    for row in range(0, predictor.dataset.num_users, 3):
        mine = train.users == row
        pairs = list(zip([items[i] for i in train.items[mine].tolist()],
                         train.ratings[mine].tolist(), strict=True))  # fmt: skip
        user = predictor.fold_in(pairs)
        np.testing.assert_allclose(user.factor, model.users.weight.detach()[row].numpy(), atol=1e-9)
        if predictor.config.model.biases:
            assert user.bias == pytest.approx(float(model.user_bias[row]), abs=1e-9)


def test_folded_user_recommendations_by_brute_force(predictor: MfPredictor) -> None:
    items = predictor.dataset.item_ids
    pairs = [(items[0], 5.0), (items[4], 1.0), (items[9], 4.0)]
    user = predictor.fold_in(pairs)
    assert isinstance(user, FoldedUser) and user.item_ids == [0, 4, 9]
    e = predictor.embeddings()
    scores = e.mean + e.items.astype(np.float64) @ user.factor
    if predictor.config.model.biases:
        scores = scores + user.bias + e.item_bias
    want = [i for i in np.argsort(-scores, kind="stable") if i not in (0, 4, 9)][:5]
    got = predictor.recommend(user, k=5)
    assert [r.item_id for r in got] == want
    assert [r.score for r in got] == pytest.approx(scores[want].tolist())
    assert got.excluded == 3 and got[0].user == "(new user)"


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda p: p.recommend("nobody"), "unknown user 'nobody' in dataset"),
        (lambda p: p.recommend("u1", k=0), "k must be at least 1"),
        (lambda p: p.recommend("u1", exclude_rated="test"), "exclude_rated"),
        (lambda p: p.fold_in([]), "at least one rating"),
        (lambda p: p.fold_in({"i999": 4.0}), "unknown item 'i999'"),
        (lambda p: p.fold_in({"i1": 9.0}), "outside the scale 1..5"),
        (lambda p: p.fold_in({"i1": "good"}), "not a number"),
    ],
)
def test_user_errors(predictor: MfPredictor, call, needle: str) -> None:
    with pytest.raises(UserError) as info:
        call(predictor)
    assert needle in str(info.value)


def test_fold_in_refuses_a_penalty_without_closed_form(data: Path, tmp_path: Path) -> None:
    over = [f"dataset={data}", "model.dim=3", "train.max_epochs=1", "train.num_threads=1",
            "user_embedding.regularize.kind=n3", "user_embedding.regularize.weight=0.01"]  # fmt: skip
    train_mf(build_typed_config(MfConfig, overrides=over), tmp_path / "n3", progress=False)
    with pytest.raises(UserError, match="no fold-in for this run"):
        MfPredictor.from_run(tmp_path / "n3").fold_in({"i1": 4.0})
