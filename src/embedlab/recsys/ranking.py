"""Top-k ranking metrics of an MF model: precision@k, recall@k, NDCG@k and MAP@k.

Protocol ("full ranking", as RecBole's evaluator; Zhao et al. 2021, "RecBole"):
for each user, the candidates are all items except those the user rated in the splits seen
before the evaluated one (``train``; ``train`` and ``valid`` for ``test``); the candidates are
ranked by predicted score (unclipped, so that the top of the scale does not tie); an item is
relevant when its held-out rating is ``>= threshold``. A relevant item is always a candidate.
Users with no relevant item in the evaluated split are skipped and counted.

Per user ``u`` with relevant set ``R_u``, top-k list ``L_u`` and ``rel_j = [L_u[j] in R_u]``
(binary relevance; Järvelin & Kekäläinen 2002 for NDCG; Manning et al. 2008, ch. 8, for AP):

* ``precision@k = |L_u ∩ R_u| / k`` and ``recall@k = |L_u ∩ R_u| / |R_u|``;
* ``NDCG@k = sum_j rel_j / log2(j + 1) / IDCG``, ``IDCG = sum_{j <= min(k, |R_u|)} 1/log2(j + 1)``;
* ``MAP@k``: mean of ``AP@k = sum_j P@j rel_j / min(k, |R_u|)`` (RecBole's normalization).

Each metric is the mean over evaluated users. Ties between predicted scores are broken
arbitrarily (``torch.topk``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from embedlab.datasets.ratings import RatingDataset
from embedlab.distributed import SINGLE, World, all_sum, shard_bounds
from embedlab.recsys.model import MatrixFactorization

SCORE_BUDGET_BYTES = 16 * 2**20  # one (B, I) float32 score block


@dataclass(frozen=True)
class ItemsByUser:
    """``(user, item)`` pairs grouped by user (CSR): user ``u``'s items are
    ``items[offsets[u]:offsets[u + 1]]``."""

    items: torch.Tensor  # (P,) int64
    offsets: torch.Tensor  # (U + 1,) int64

    @staticmethod
    def build(users: torch.Tensor, items: torch.Tensor, num_users: int) -> ItemsByUser:
        """From ``(P,)`` user and item rows (duplicates allowed)."""
        order = torch.argsort(users, stable=True)
        offsets = torch.zeros(num_users + 1, dtype=torch.int64, device=users.device)
        offsets[1:] = torch.cumsum(torch.bincount(users, minlength=num_users), 0)
        return ItemsByUser(items=items[order], offsets=offsets)

    def to(self, device: torch.device | str) -> ItemsByUser:
        return ItemsByUser(items=self.items.to(device), offsets=self.offsets.to(device))

    def users(self) -> torch.Tensor:
        """``(V,)`` the users with at least one item, ascending."""
        return torch.nonzero(self.offsets[1:] > self.offsets[:-1]).squeeze(1)

    def mask(self, users: torch.Tensor, num_items: int) -> torch.Tensor:
        """``(B, num_items)`` bool: item ``i`` is one of ``users[b]``'s items."""
        starts = self.offsets[users]
        lengths = self.offsets[users + 1] - starts  # (B,)
        device = users.device
        rows = torch.repeat_interleave(torch.arange(len(users), device=device), lengths)  # (P,)
        within = torch.arange(len(rows), device=device) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths
        )
        out = torch.zeros(len(users), num_items, dtype=torch.bool, device=device)
        out[rows, self.items[starts[rows] + within]] = True
        return out


SPLIT_ORDER = ("train", "valid", "test")


def ranking_index(
    dataset: RatingDataset, split: str, threshold: float, device: torch.device | str = "cpu"
) -> tuple[ItemsByUser, ItemsByUser, int]:
    """What :func:`ranking_metrics` needs to evaluate ``split`` of ``dataset``.

    Returns:
        ``(relevant, seen, skipped)``: each user's items rated ``>= threshold`` in ``split``;
        each user's items in the splits before it (``train``, then ``valid``); the number of
        users with ratings in ``split`` but none ``>= threshold`` (skipped).

    Raises:
        ValueError: ``split`` is ``train`` or not one of ``train``/``valid``/``test``.
    """
    if split not in SPLIT_ORDER[1:]:
        raise ValueError(f"ranking metrics evaluate valid or test, not {split!r}")
    part = dataset.splits[split]
    keep = part.ratings >= threshold
    relevant = ItemsByUser.build(part.users[keep], part.items[keep], dataset.num_users)
    earlier = [dataset.splits[s] for s in SPLIT_ORDER[: SPLIT_ORDER.index(split)]
               if s in dataset.splits]  # fmt: skip
    seen = ItemsByUser.build(
        torch.cat([p.users for p in earlier]), torch.cat([p.items for p in earlier]),
        dataset.num_users,
    )  # fmt: skip
    skipped = int(part.users.unique().numel()) - int(part.users[keep].unique().numel())
    return relevant.to(device), seen.to(device), skipped


def top_k_metrics(
    scores: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Per-user precision/recall/NDCG/MAP at each ``k`` (formulas in the module docstring).

    Args:
        scores: ``(B, I)``; excluded candidates already ``-inf``.
        relevant: ``(B, I)`` bool, at least one relevant (and finite-scored) item per row.
        ks: cutoffs ``k >= 1`` (``k > I`` keeps all ``I`` items; precision still divides by k).

    Returns:
        ``{"precision@k", "recall@k", "ndcg@k", "map@k"}`` for each k: ``(B,)`` float64.
    """
    kmax = min(max(ks), scores.shape[1])
    top = scores.topk(kmax, dim=1).indices  # (B, kmax)
    hit = relevant.gather(1, top).double()  # (B, kmax)
    num_rel = relevant.sum(1)  # (B,)
    pos = torch.arange(1, kmax + 1, dtype=torch.float64, device=scores.device)  # (kmax,)
    discount = 1.0 / torch.log2(pos + 1)  # (kmax,)
    ideal = torch.cumsum(discount, 0)  # IDCG for 1..kmax relevant items
    cum_hits = torch.cumsum(hit, 1)  # (B, kmax)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        kk = min(k, kmax)
        hits = cum_hits[:, kk - 1]  # (B,)
        best = torch.clamp(num_rel, max=kk)  # min(k, |R_u|) (|R_u| <= I)
        out[f"precision@{k}"] = hits / k
        out[f"recall@{k}"] = hits / num_rel
        out[f"ndcg@{k}"] = (hit[:, :kk] * discount[:kk]).sum(1) / ideal[best - 1]
        precision_at = cum_hits[:, :kk] / pos[:kk]  # P@j  # (B, kk)
        out[f"map@{k}"] = (precision_at * hit[:, :kk]).sum(1) / best
    return out


@torch.no_grad()
def ranking_metrics(
    model: MatrixFactorization,
    *,
    relevant: ItemsByUser,
    seen: ItemsByUser,
    ks: Sequence[int],
    batch_users: int | None = None,
    world: World = SINGLE,
) -> dict[str, float]:
    """Mean top-k metrics over the users with a relevant item (module docstring).

    Args:
        model: scores ``(B, I)`` by :meth:`MatrixFactorization.predict_all`.
        relevant: each user's relevant items of the evaluated split (rating >= threshold).
        seen: each user's excluded items (earlier splits); relevant items stay candidates.
        ks: cutoffs ``k >= 1``.
        batch_users: users per ``(B, I)`` score block; None: a 16 MiB float32 block.
        world: data parallel: each rank scores a contiguous share of the users; sums are
            all-reduced (every rank returns the same values).

    Returns:
        ``{"precision@k", "recall@k", "ndcg@k", "map@k"}`` for each k (means, 0 when no user
        has a relevant item) and ``"ranking_users"`` (users averaged over).

    Raises:
        ValueError: empty ``ks`` or a ``k < 1``.
    """
    if not ks or min(ks) < 1:
        raise ValueError(f"ranking cutoffs must be >= 1, got {list(ks)}")
    num_items = int(model.item_bias.numel())
    users = relevant.users()
    start, stop = shard_bounds(len(users), world)
    batch = batch_users or max(1, SCORE_BUDGET_BYTES // (4 * num_items))
    names = [f"{m}@{k}" for k in ks for m in ("precision", "recall", "ndcg", "map")]
    sums = dict.fromkeys(names, 0.0)
    for at in range(start, stop, batch):
        chunk = users[at : min(at + batch, stop)]  # (B,)
        rel = relevant.mask(chunk, num_items)  # (B, I)
        scores = model.predict_all(chunk)  # (B, I)
        scores[seen.mask(chunk, num_items) & ~rel] = float("-inf")
        for name, values in top_k_metrics(scores, rel, ks).items():
            sums[name] += float(values.sum())
    totals = all_sum([sums[name] for name in names] + [float(stop - start)], world)
    count = totals.pop()
    out = {name: total / count if count else 0.0 for name, total in zip(names, totals, strict=True)}
    out["ranking_users"] = int(count)
    return out
