"""Predictions of a trained KGE run: top-k answers by label, with known answers filtered out.

PyKEEN's and DGL-KE's ``predict`` return the training triples among their answers (PyKEEN issue
923, DGL-KE issue 82), which users then remove by hand. :class:`KgePredictor` removes them by
default (``filter_known=True``: the TRAIN split; ``"all"``: train, valid and test) and reports
each removed answer with its split and score.

Head queries ``(?, r, t)`` are answered as the model is trained and evaluated, by the reciprocal
relation: ``(t, r + R, ?)`` (:mod:`embedlab.kge.model`). So the score of head ``h`` is
``score(t, r⁻¹, h)``, not :meth:`KgePredictor.score` of ``(h, r, t)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from embedlab.datasets.kg import SPLITS, KgDataset
from embedlab.datasets.labels import Labels, as_list
from embedlab.errors import UserError
from embedlab.evaluation.filtering import KnownAnswers
from embedlab.evaluation.kge_eval import auto_batch_size, known_answers
from embedlab.kge.config import KgeConfig
from embedlab.kge.model import KgeModel
from embedlab.kge.run import load_run

FilterKnown = bool | str | Sequence[str]
"""``True`` / ``"train"``: the training triples; ``"all"``: train, valid and test; ``False``:
none; or a sequence of split names."""

UNKNOWN = "?"  # the predicted side of a query


def known_splits(filter_known: FilterKnown) -> tuple[str, ...]:
    """The splits whose triples ``filter_known`` removes from the answers.

    Raises:
        UserError: a value that is none of those of :data:`FilterKnown`.
    """
    if filter_known is True:
        return ("train",)
    if filter_known is False:
        return ()
    names = SPLITS if filter_known == "all" else as_list(filter_known)
    bad = [n for n in names if n not in SPLITS]
    if bad or not names:
        raise UserError(
            f"filter_known={filter_known!r}: give True (train), False, 'all' or split names "
            f"among {', '.join(SPLITS)}"
        )
    return tuple(dict.fromkeys(str(n) for n in names))


@dataclass(frozen=True)
class Answer:
    """One answer of one query. ``query``: the query's index in the request; ``head``,
    ``relation``, ``tail``: its labels, ``"?"`` on the predicted side; ``rank``: 1-based among the
    answers left after filtering; ``entity`` / ``entity_id``: the answer; ``score``: the model's
    (higher is better; distance models: the negative distance)."""

    query: int
    head: str
    relation: str
    tail: str
    rank: int
    entity: str
    entity_id: int
    score: float


@dataclass(frozen=True)
class RemovedAnswer:
    """A known answer taken out of a query's answers: ``split`` is the first of train, valid,
    test holding the triple; ``score`` what the model gave it; other fields as :class:`Answer`."""

    query: int
    head: str
    relation: str
    tail: str
    entity: str
    entity_id: int
    split: str
    score: float


@dataclass(frozen=True)
class Predictions:
    """Top-k answers of a batch of queries, query by query, best first (ties: lower entity id
    first). Iterating yields the :class:`Answer` rows (``pandas.DataFrame(predictions.answers)``
    makes a table); ``removed`` lists every known answer filtered out, best score first per query;
    ``filtered`` names the splits that were filtered."""

    answers: list[Answer]
    removed: list[RemovedAnswer]
    filtered: tuple[str, ...]

    def __iter__(self) -> Iterator[Answer]:
        return iter(self.answers)

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, index: int) -> Answer:
        return self.answers[index]


@dataclass(frozen=True)
class KgeEmbeddings:
    """The trained tables as numpy arrays: ``entities (N, d)``, ``relations (R, d_r)`` (forward
    relations), ``reciprocal_relations (R, d_r)`` (row ``r`` is ``r⁻¹``, used for head queries)
    and the labels of their rows (KD-code tables composed, in eval mode)."""

    entities: np.ndarray
    relations: np.ndarray
    reciprocal_relations: np.ndarray
    entity_labels: list[str]
    relation_labels: list[str]


class KgePredictor:
    """A trained KGE run, for predictions (:func:`embedlab.load_run` returns one for KGE runs).

    Args:
        config, dataset, model: as :func:`embedlab.kge.run.load_run` returns them (eval mode).

    Entities and relations are given by label (``str``) or id (``int``), one or a list; a
    scalar given with a list is repeated. Unknown labels raise :class:`~embedlab.errors.UserError`
    naming the label and the dataset.
    """

    def __init__(self, *, config: KgeConfig, dataset: KgDataset, model: KgeModel) -> None:
        self.config, self.dataset, self.model = config, dataset, model.eval()
        self.entities = Labels(labels=dataset.entity_ids, kind="entity", dataset=dataset.name)
        self.relations = Labels(labels=dataset.relation_ids, kind="relation", dataset=dataset.name)
        self._known: dict[str, KnownAnswers] = {}

    @classmethod
    def from_run(cls, run_dir: Path, *, device: torch.device | str = "cpu") -> KgePredictor:
        """The best (else last) checkpoint of a KGE run directory.

        Raises:
            UserError: see :func:`embedlab.kge.run.load_run`.
        """
        config, dataset, model = load_run(Path(run_dir), device=device)
        return cls(config=config, dataset=dataset, model=model)

    def predict_tails(
        self, heads: object, relations: object, k: int = 10, filter_known: FilterKnown = True
    ) -> Predictions:
        """Top-``k`` tails of ``(head, relation, ?)`` for each pair of ``heads`` and ``relations``
        (labels or ids). See :meth:`predict` for ``filter_known`` and what is returned."""
        hs, rs = _paired(heads, relations)
        return self.predict([(h, r, UNKNOWN) for h, r in zip(hs, rs, strict=True)], k, filter_known)

    def predict_heads(
        self, relations: object, tails: object, k: int = 10, filter_known: FilterKnown = True
    ) -> Predictions:
        """Top-``k`` heads of ``(?, relation, tail)`` (by the reciprocal relation: module
        docstring). See :meth:`predict` for ``filter_known`` and what is returned."""
        rs, ts = _paired(relations, tails)
        return self.predict([(UNKNOWN, r, t) for r, t in zip(rs, ts, strict=True)], k, filter_known)

    def predict(
        self, queries: Sequence[Sequence[object]], k: int = 10, filter_known: FilterKnown = True
    ) -> Predictions:
        """Top-``k`` answers of queries ``(head, relation, tail)`` with ``"?"`` (or ``None``) on
        the side to predict, head and tail queries mixed.

        Args:
            queries: ``Q`` triples of labels or ids. k: answers per query (at most the entities
                left after filtering). filter_known: :data:`FilterKnown`; the answers that make a
                known triple of those splits are removed before ranking and listed in
                :attr:`Predictions.removed`.

        Returns:
            :class:`Predictions`, ``min(k, N - removed)`` answers per query, in query order.

        Raises:
            UserError: ``k < 1``, a query without exactly one ``"?"``, an unknown label or id.
        """
        if k < 1:
            raise UserError(f"k must be at least 1, got {k}")
        splits = known_splits(filter_known)
        parsed = [self._parse(i, q) for i, q in enumerate(queries)]
        answers: list[Answer] = []
        removed: list[RemovedAnswer] = []
        n = self.dataset.num_entities
        batch = auto_batch_size(n * self.model.scoring_width)
        device = next(self.model.parameters()).device
        for start in range(0, len(parsed), batch):
            chunk = parsed[start : start + batch]
            subjects = torch.tensor([q.subject for q in chunk], device="cpu")  # (B,)
            slots = torch.tensor([q.slot for q in chunk], device="cpu")  # (B,) relation ids < 2R
            with torch.no_grad():
                scores = self.model.score_tails(subjects.to(device), slots.to(device)).cpu()
            known = self._known_of(subjects, slots, splits)
            for b, q in enumerate(chunk):
                a, r = _rank_one(q, scores[b], known[b], k, self.entities)
                answers += a
                removed += r
        return Predictions(answers=answers, removed=removed, filtered=splits)

    @torch.no_grad()
    def score(self, triples: object) -> np.ndarray:
        """Scores ``(n,)`` of triples ``(n, 3)`` (head, relation, tail), given as labels or ids
        (a list of triples, or an ``(n, 3)`` integer array / tensor of ids); the tail direction
        ``score(h, r, t)`` (module docstring on heads).

        Raises:
            UserError: a row that is not three values; an unknown label or id.
        """
        rows = as_list(triples)
        ids = torch.zeros((len(rows), 3), dtype=torch.int64, device="cpu")  # (n, 3)
        for i, row in enumerate(rows):
            values = as_list(row)
            if len(values) != 3:
                raise UserError(f"triple {i}: expected (head, relation, tail), got {row!r}")
            h, r, t = values
            ids[i] = torch.tensor(
                [self.entities.id(h), self.relations.id(r), self.entities.id(t)], device="cpu"
            )
        device = next(self.model.parameters()).device
        return self.model.score_triples(ids.to(device)).cpu().numpy()

    @torch.no_grad()
    def embeddings(self) -> KgeEmbeddings:
        """The entity and relation tables with their labels (:class:`KgeEmbeddings`)."""
        rel = self.model.relations.lookup_all().cpu().numpy().copy()  # (2R, d_r), not the weights
        num = self.dataset.num_relations
        return KgeEmbeddings(
            entities=self.model.entities.lookup_all().cpu().numpy().copy(),
            relations=rel[:num],
            reciprocal_relations=rel[num:],
            entity_labels=list(self.dataset.entity_ids),
            relation_labels=list(self.dataset.relation_ids),
        )

    def _parse(self, index: int, query: Sequence[object]) -> _Query:
        values = as_list(query)
        if len(values) != 3:
            raise UserError(f"query {index}: expected (head, relation, tail), got {query!r}")
        h, r, t = (UNKNOWN if v is None else v for v in values)
        if (h == UNKNOWN) == (t == UNKNOWN):
            raise UserError(
                f"query {index} {tuple(values)!r}: put '?' (or None) in exactly one of head, tail"
            )
        rel = self.relations.id(r)
        if t == UNKNOWN:
            head = self.entities.id(h)
            labels = (self.entities[head], self.relations[rel], UNKNOWN)
            return _Query(index, labels, head, rel)
        tail = self.entities.id(t)
        labels = (UNKNOWN, self.relations[rel], self.entities[tail])
        return _Query(index, labels, tail, rel + self.dataset.num_relations)

    def _known_of(
        self, subjects: torch.Tensor, slots: torch.Tensor, splits: tuple[str, ...]
    ) -> list[dict[int, str]]:
        """For each query ``(B,)``, its known answers in ``splits``: entity id -> first split."""
        out: list[dict[int, str]] = [{} for _ in range(len(subjects))]
        for split in splits:
            if not len(self.dataset.splits[split]):
                continue
            if split not in self._known:
                self._known[split] = known_answers(
                    self.dataset.splits[split], self.dataset.num_relations
                )
            rows, cols = self._known[split].lookup(subjects, slots)
            for b, e in zip(rows.tolist(), cols.tolist(), strict=True):
                out[b].setdefault(e, split)
        return out


@dataclass(frozen=True)
class _Query:
    index: int
    labels: tuple[str, str, str]  # head, relation, tail; "?" on the predicted side
    subject: int  # the given entity
    slot: int  # relation id, + R for head queries


def _paired(a: object, b: object) -> tuple[list[object], list[object]]:
    """Two keys or lists of keys as two lists of one length (a single key is repeated)."""
    xs, ys = as_list(a), as_list(b)
    if len(xs) == 1 and len(ys) != 1:
        xs = xs * len(ys)
    elif len(ys) == 1 and len(xs) != 1:
        ys = ys * len(xs)
    if len(xs) != len(ys):
        raise UserError(f"got {len(xs)} and {len(ys)} values: give one, or lists of one length")
    return xs, ys


def _rank_one(
    q: _Query,
    scores: torch.Tensor,
    known: dict[int, str],
    k: int,
    entities: Labels,
) -> tuple[list[Answer], list[RemovedAnswer]]:
    """The answers and removed known answers of one query from its ``(N,)`` scores."""
    h, r, t = q.labels
    order = torch.sort(scores, descending=True, stable=True).indices  # (N,) ties: lower id first
    keep = torch.ones_like(scores, dtype=torch.bool)  # (N,)
    if known:
        keep[torch.tensor(list(known), device=keep.device)] = False
    top = order[keep[order]][:k].tolist()
    answers = [
        Answer(q.index, h, r, t, rank, entities[e], e, float(scores[e]))
        for rank, e in enumerate(top, start=1)
    ]
    removed = sorted(known, key=lambda e: (-float(scores[e]), e))
    gone = [
        RemovedAnswer(q.index, h, r, t, entities[e], e, known[e], float(scores[e])) for e in removed
    ]
    return answers, gone
