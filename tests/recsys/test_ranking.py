"""MF top-k ranking metrics: hand-computed values, batched == a naive per-user loop, the run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from embedlab.config.io import build_typed_config
from embedlab.datasets.ratings import RatingDataset
from embedlab.errors import UserError
from embedlab.recsys import run as mf_run
from embedlab.recsys.config import MfConfig
from embedlab.recsys.model import MatrixFactorization
from embedlab.recsys.ranking import ranking_index, ranking_metrics, top_k_metrics
from tests.conftest import write_ratings

THRESHOLD = 4.0


def test_hand_example() -> None:
    # ranking 0 > 1 > 2 > 3 > 4, relevant {0, 2, 4}; k = 3: hits at positions 1 and 3
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5]])
    relevant = torch.tensor([[True, False, True, False, True]])
    m = top_k_metrics(scores, relevant, [1, 3, 10])
    assert m["precision@3"].item() == pytest.approx(2 / 3)
    assert m["recall@3"].item() == pytest.approx(2 / 3)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@3"].item() == pytest.approx((1 + 1 / math.log2(4)) / idcg)
    assert m["map@3"].item() == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert m["precision@1"].item() == 1.0 and m["recall@1"].item() == pytest.approx(1 / 3)
    # k = 10 > 5 items: every relevant item is found; precision still divides by k
    assert m["precision@10"].item() == pytest.approx(3 / 10)
    assert m["recall@10"].item() == 1.0
    assert m["map@10"].item() == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert m["ndcg@10"].item() == pytest.approx((1 + 0.5 + 1 / math.log2(6)) / idcg)


def _config(data: Path, *over: str) -> MfConfig:
    base = [f"dataset={data}", "model.dim=4", "train.max_epochs=2", "train.batch_size=64",
            "eval.every=1", "train.num_threads=1", "data.valid_fraction=0.2"]  # fmt: skip
    return build_typed_config(MfConfig, overrides=base + list(over))


def _random_model(config: MfConfig, dataset: RatingDataset) -> MatrixFactorization:
    torch.manual_seed(3)
    model = mf_run.build_mf_model(config, dataset).double()
    with torch.no_grad():
        model.user_bias.normal_(0, 0.3)
        model.item_bias.normal_(0, 0.3)
    return model


def _naive(
    model: MatrixFactorization, dataset: RatingDataset, split: str, ks: list[int]
) -> tuple[dict[str, float], int, int]:
    """Means over users, the number of users averaged, and the number skipped."""
    earlier = ["train"] if split == "valid" else ["train", "valid"]
    sums: dict[str, float] = {}
    used = skipped = 0
    part = dataset.splits[split]
    for u in sorted(set(part.users.tolist())):
        rows = [j for j in range(len(part)) if int(part.users[j]) == u]
        rel = {int(part.items[j]) for j in rows if float(part.ratings[j]) >= THRESHOLD}
        if not rel:
            skipped += 1
            continue
        used += 1
        seen = {int(i) for s in earlier for uu, i in
                zip(dataset.splits[s].users.tolist(), dataset.splits[s].items.tolist(),
                    strict=True) if uu == u}  # fmt: skip
        cands = [i for i in range(dataset.num_items) if i not in seen or i in rel]
        scores = model.predict(torch.full((len(cands),), u), torch.tensor(cands)).tolist()
        ranked = [i for _, i in sorted(zip(scores, cands, strict=True), reverse=True)]
        for k in ks:
            top = ranked[:k]
            flags = [i in rel for i in top]
            hits = sum(flags)
            dcg = sum(1 / math.log2(j + 2) for j, f in enumerate(flags) if f)
            idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(rel))))
            ap = sum(sum(flags[: j + 1]) / (j + 1) for j, f in enumerate(flags) if f)
            for name, value in ((f"precision@{k}", hits / k), (f"recall@{k}", hits / len(rel)),
                                (f"ndcg@{k}", dcg / idcg), (f"map@{k}", ap / min(k, len(rel)))):  # fmt: skip
                sums[name] = sums.get(name, 0.0) + value
    return {name: v / used for name, v in sums.items()}, used, skipped


@pytest.mark.parametrize("split", ["valid", "test"])
@pytest.mark.parametrize("batch_users", [1, 7, None])
def test_batched_equals_naive_per_user_loop(
    split: str, batch_users: int | None, tmp_path: Path
) -> None:
    config = _config(write_ratings(tmp_path / "ratings"))
    dataset = mf_run.load_mf_dataset(config)
    model = _random_model(config, dataset)
    ks = [1, 3, 10, 50]  # 50 > 30 items
    relevant, seen, skipped = ranking_index(dataset, split, THRESHOLD)
    got = ranking_metrics(model, relevant=relevant, seen=seen, ks=ks, batch_users=batch_users)
    want, used, want_skipped = _naive(model, dataset, split, ks)
    assert got["ranking_users"] == used > 5 and skipped == want_skipped
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name
    assert 0 < got["ndcg@10"] < 1 and got["recall@50"] == pytest.approx(1.0)


def test_bad_cutoffs_and_split() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        ranking_metrics(None, relevant=None, seen=None, ks=[])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="valid or test"):
        ranking_index(None, "train", THRESHOLD)  # type: ignore[arg-type]


def test_run_writes_ranking_metrics_by_default_and_off_when_empty(tmp_path: Path) -> None:
    data = write_ratings(tmp_path / "ratings")
    plain = mf_run.train_mf(_config(data, "eval.ranking_k=[]"), tmp_path / "plain", progress=False)
    assert not any("@" in key for key in plain["test"])
    assert _config(data).eval.ranking_k == [10] and _config(data).eval.relevance_threshold == 4
    default = mf_run.train_mf(_config(data), tmp_path / "default", progress=False)
    assert {"precision@10", "recall@10", "ndcg@10", "map@10"} <= default["test"].keys()
    cfg = _config(data, "eval.ranking_k=[10, 5, 5]", "eval.relevance_threshold=3")
    assert cfg.eval.ranking_k == [5, 10]
    metrics = mf_run.train_mf(cfg, tmp_path / "ranked", progress=False)
    saved = json.loads((tmp_path / "ranked" / "metrics.json").read_text())
    for split in ("valid", "test"):
        for key in ("precision@5", "recall@10", "ndcg@10", "map@5", "ranking_users"):
            assert key in saved[split], (split, key)
        assert saved[split]["rmse"] == pytest.approx(plain[split]["rmse"])
        _, dataset, model = mf_run.load_run(tmp_path / "ranked")
        relevant, seen, skipped = ranking_index(dataset, split, 3.0)
        again = ranking_metrics(model, relevant=relevant, seen=seen, ks=[5, 10])
        assert saved[split]["ndcg@10"] == pytest.approx(again["ndcg@10"])
        assert saved[split]["ranking_skipped_users"] == skipped
    assert metrics["test"]["map@10"] == pytest.approx(saved["test"]["map@10"])
    with pytest.raises(UserError, match="ranking_k"):
        _config(data, "eval.ranking_k=[0]")
