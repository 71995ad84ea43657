"""Top-k recommendations of a trained MF run, for its users and for new users folded in.

Surprise predicts one (user, item) rating at a time and leaves top-k lists and unseen users to
the caller (Surprise issues 70, 34, 208). :class:`MfPredictor` ranks every item by the model's
predicted rating ``mean + b_u + b_i + <p_u, q_i>`` (unclipped, so that ratings above the scale
stay ordered), leaves out the items the user already rated in training by default, and folds in
a new user from their ratings (:mod:`embedlab.recsys.fold_in`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from embedlab.datasets.labels import Labels, as_list
from embedlab.datasets.ratings import RatingDataset
from embedlab.errors import UserError
from embedlab.recsys.config import MfConfig
from embedlab.recsys.fold_in import fold_in_user
from embedlab.recsys.model import MatrixFactorization
from embedlab.recsys.run import load_run

NEW_USER = "(new user)"  # the user label of a folded-in user's recommendations


@dataclass(frozen=True)
class Recommendation:
    """``rank`` (1-based) ``item`` / ``item_id`` for ``user`` with its predicted rating
    ``score`` (unclipped)."""

    user: str
    rank: int
    item: str
    item_id: int
    score: float


@dataclass(frozen=True)
class Recommendations:
    """Best first (ties: lower item id first); iterating yields the :class:`Recommendation` rows.
    ``excluded``: how many rated items were left out, rated in ``excluded_from`` (split names,
    or ``("ratings",)`` for a folded-in user)."""

    items: list[Recommendation]
    excluded: int
    excluded_from: tuple[str, ...]

    def __iter__(self) -> Iterator[Recommendation]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Recommendation:
        return self.items[index]


@dataclass(frozen=True)
class FoldedUser:
    """A new user's ``factor (d,)`` and ``bias`` (float64; bias 0 without model biases), fitted
    from ``ratings (n,)`` of ``item_ids`` (:meth:`MfPredictor.fold_in`)."""

    factor: np.ndarray
    bias: float
    item_ids: list[int]
    ratings: np.ndarray


@dataclass(frozen=True)
class MfEmbeddings:
    """The trained tables as numpy arrays: ``users (U, d)``, ``items (I, d)``, ``user_bias (U,)``,
    ``item_bias (I,)`` (zeros without biases), the global ``mean`` rating and the raw ids of the
    rows."""

    users: np.ndarray
    items: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    mean: float
    user_labels: list[str]
    item_labels: list[str]


class MfPredictor:
    """A trained MF run, for recommendations (:func:`embedlab.load_run` returns one for MF runs).

    Users and items are given by raw id as in the rating files (``str``, e.g. ``"196"``) or by
    row id (``int``); unknown ones raise :class:`~embedlab.errors.UserError` naming them and the
    dataset.
    """

    def __init__(
        self, *, config: MfConfig, dataset: RatingDataset, model: MatrixFactorization
    ) -> None:
        self.config, self.dataset, self.model = config, dataset, model.eval()
        self.users = Labels(labels=dataset.user_ids, kind="user", dataset=dataset.name)
        self.items = Labels(labels=dataset.item_ids, kind="item", dataset=dataset.name)

    @classmethod
    def from_run(cls, run_dir: Path) -> MfPredictor:
        """The best (else last) checkpoint of an MF run directory.

        Raises:
            UserError: see :func:`embedlab.recsys.run.load_run`.
        """
        config, dataset, model = load_run(Path(run_dir))
        return cls(config=config, dataset=dataset, model=model)

    def predict(self, users: object, items: object) -> np.ndarray:
        """Predicted ratings ``(n,)`` (unclipped) of pairs of ``users`` and ``items`` (one key or
        lists of one length; a single key is repeated)."""
        us, its = as_list(users), as_list(items)
        if len(us) == 1:
            us = us * len(its)
        if len(its) == 1:
            its = its * len(us)
        if len(us) != len(its):
            raise UserError(f"got {len(us)} users and {len(its)} items: give lists of one length")
        dev = self.model.items.weight.device
        u = torch.tensor(self.users.ids(us), dtype=torch.int64, device=dev)
        i = torch.tensor(self.items.ids(its), dtype=torch.int64, device=dev)
        return self.model.predict(u, i).cpu().numpy()

    def recommend(
        self, user: object, k: int = 10, exclude_rated: bool | str = True
    ) -> Recommendations:
        """The ``k`` items with the highest predicted rating for ``user``.

        Args:
            user: a raw id or row id of the dataset, or a :class:`FoldedUser`.
            k: items to return (at most those not excluded).
            exclude_rated: ``True`` leaves out the items the user rated in training (a folded-in
                user: the items of its ratings); ``"all"`` also those rated in valid and test;
                ``False`` ranks every item.

        Raises:
            UserError: ``k < 1``, an unknown user, an ``exclude_rated`` that is none of those.
        """
        if k < 1:
            raise UserError(f"k must be at least 1, got {k}")
        if exclude_rated not in (True, False, "all"):
            raise UserError(f"exclude_rated={exclude_rated!r}: give True, False or 'all'")
        num_items = self.dataset.num_items
        splits: tuple[str, ...]
        if isinstance(user, FoldedUser):
            label, rated, splits = NEW_USER, set(user.item_ids), ("ratings",)
            scores = self._folded_scores(user)
        else:
            row = self.users.id(user)
            label = self.users[row]
            wanted = ("train", "valid", "test") if exclude_rated == "all" else ("train",)
            splits = tuple(name for name in wanted if name in self.dataset.splits)
            rated = self._rated(row, splits)
            dev = self.model.items.weight.device
            full = torch.full((num_items,), row, dtype=torch.int64, device=dev)
            every = torch.arange(num_items, device=dev)
            scores = self.model.predict(full, every).to(torch.float64).cpu()  # (I,)
        if not exclude_rated:
            rated, splits = set(), ()
        order = torch.sort(scores, descending=True, stable=True).indices  # (I,)
        keep = torch.ones(num_items, dtype=torch.bool, device=scores.device)
        if rated:
            keep[torch.tensor(sorted(rated), device=keep.device)] = False
        top = order[keep[order]][:k].tolist()
        rows = [
            Recommendation(label, rank, self.items[i], i, float(scores[i]))
            for rank, i in enumerate(top, start=1)
        ]
        return Recommendations(items=rows, excluded=len(rated), excluded_from=splits)

    def fold_in(
        self, ratings: Mapping[object, float] | Sequence[tuple[object, float]]
    ) -> FoldedUser:
        """Fit a new user from ``ratings`` (item -> rating, or ``(item, rating)`` pairs) by one ALS
        half-step against the fixed item table (:func:`~embedlab.recsys.fold_in.fold_in_user`).

        Raises:
            UserError: no ratings, an unknown item, a rating outside the dataset's scale, a run
                whose user penalty has no closed form.
        """
        pairs = list(ratings.items()) if isinstance(ratings, Mapping) else list(ratings)
        low, high = self.dataset.rating_scale
        values = []
        for item, rating in pairs:
            try:
                value = float(rating)
            except (TypeError, ValueError):
                raise UserError(f"rating of item {item!r} is not a number: {rating!r}") from None
            if not low <= value <= high:
                raise UserError(
                    f"rating {rating} of item {item!r} is outside the scale {low:g}..{high:g} of "
                    f"dataset {self.dataset.name}"
                )
            values.append(value)
        ids = self.items.ids([item for item, _ in pairs])
        factor, bias = fold_in_user(
            self.model,
            items=torch.tensor(ids, dtype=torch.int64, device=self.model.items.weight.device),
            ratings=torch.tensor(
                values, dtype=torch.float64, device=self.model.items.weight.device
            ),
            weight_decay=self.config.train.weight_decay,
            penalty=self.config.user_embedding.regularize,
            num_train_ratings=len(self.dataset.splits["train"]),
        )
        return FoldedUser(factor=factor.numpy(), bias=bias, item_ids=ids, ratings=np.array(values))

    @torch.no_grad()
    def embeddings(self) -> MfEmbeddings:
        """The user and item tables, biases and mean with the raw ids of the rows."""
        m = self.model
        return MfEmbeddings(
            users=m.users.weight.detach().numpy().copy(),
            items=m.items.weight.detach().numpy().copy(),
            user_bias=m.user_bias.detach().numpy().copy(),
            item_bias=m.item_bias.detach().numpy().copy(),
            mean=float(m.mean),
            user_labels=list(self.dataset.user_ids),
            item_labels=list(self.dataset.item_ids),
        )

    def _rated(self, row: int, splits: tuple[str, ...]) -> set[int]:
        """Items user ``row`` rated in ``splits``."""
        out: set[int] = set()
        for name in splits:
            part = self.dataset.splits.get(name)
            if part is not None:
                out.update(part.items[part.users == row].tolist())
        return out

    @torch.no_grad()
    def _folded_scores(self, user: FoldedUser) -> torch.Tensor:
        """``(I,)`` float64 predicted ratings of a folded-in user (the model's formula)."""
        m = self.model
        scores = m.items.weight.detach().to(torch.float64) @ torch.from_numpy(user.factor)
        if m.biases:
            scores = scores + user.bias + m.item_bias.detach().to(torch.float64)
        return scores + float(m.mean)
