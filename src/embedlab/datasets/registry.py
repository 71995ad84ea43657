"""The dataset registry: one explicit entry per name (ARCHITECTURE.md, dataset contract).

Remote files are pinned by commit and verified by sha256. The WN18RR and FB15k-237 files are the
standard splits of Dettmers et al. (ConvE); the URLs point at a byte-identical copy stored as plain
files (DeepGraphLearning/KnowledgeGraphEmbedding at a fixed commit), so each file has its own
checksum. ``archive`` entries (one tarball with members) are supported as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KG_SPLITS = ("train.txt", "valid.txt", "test.txt")

_KGE_REPO = (
    "https://raw.githubusercontent.com/DeepGraphLearning/KnowledgeGraphEmbedding/"
    "2e440e0f9c687314d5ff67ead68ce985dc446e3a/data"
)


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: where it lives and its sha256 (hex)."""

    url: str
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    Attributes:
        name: the registry name (``wn18rr``).
        kind: ``kg`` (triples), ``ratings`` or ``tokens``.
        description: one line for ``embedlab datasets list``.
        citation: the paper that introduced it.
        packaged: shipped inside the package (tiny KGs).
        files: local file name -> remote file (downloaded one by one).
        archive: one tarball whose members ``files`` are, when set (``files`` then maps the
            local name to the member path inside the archive via ``members``).
        members: local name -> member path inside ``archive``.
    """

    name: str
    kind: str
    description: str
    citation: str
    packaged: bool = False
    files: dict[str, RemoteFile] = field(default_factory=dict)
    archive: RemoteFile | None = None
    members: dict[str, str] = field(default_factory=dict)

    @property
    def downloadable(self) -> bool:
        return bool(self.files) or self.archive is not None


def _kg_files(folder: str, sums: tuple[str, str, str]) -> dict[str, RemoteFile]:
    return {
        name: RemoteFile(url=f"{_KGE_REPO}/{folder}/{name}", sha256=digest)
        for name, digest in zip(KG_SPLITS, sums, strict=True)
    }


REGISTRY: dict[str, DatasetSpec] = {
    "nations": DatasetSpec(
        name="nations",
        kind="kg",
        description="Nations: 14 countries, 55 relations (tiny; shipped with the package)",
        citation="Kemp et al., AAAI 2006",
        packaged=True,
    ),
    "kinship": DatasetSpec(
        name="kinship",
        kind="kg",
        description="Kinship (Alyawarra): 104 people, 25 kinship terms (tiny; shipped)",
        citation="Kemp et al., AAAI 2006",
        packaged=True,
    ),
    "umls": DatasetSpec(
        name="umls",
        kind="kg",
        description="UMLS: 135 biomedical concepts, 46 relations (tiny; shipped)",
        citation="McCray, 2003; Kok & Domingos, ICML 2007",
        packaged=True,
    ),
    "wn18rr": DatasetSpec(
        name="wn18rr",
        kind="kg",
        description="WN18RR: WordNet subset without inverse leakage, 40,943 entities, 11 relations",
        citation="Dettmers et al., Convolutional 2D Knowledge Graph Embeddings, AAAI 2018",
        files=_kg_files(
            "wn18rr",
            (
                "038612e783c215ee5f3ca9fbfca27b8d0739be1028fe4ee7c174aecf0b83d5df",
                "453ce7202afa58094a04d2b1560ee2b02660f1c260b32ce6651c8ccedd1028ab",
                "0383bceaaa1096cf3c03ec021ed0048068e2355dbfc0239b292cefdac821cec5",
            ),
        ),
    ),
    "fb15k-237": DatasetSpec(
        name="fb15k-237",
        kind="kg",
        description="FB15k-237: Freebase subset, 14,541 entities, 237 relations",
        citation="Toutanova & Chen, CVSC workshop 2015",
        files=_kg_files(
            "FB15k-237",
            (
                "6e4c2782169af21e9743f3b1d200886f5d595bf6bc504ec1351720949c5cdfae",
                "cf6309010852f6a8d47a45df830a426415d1ee6f7a3970a8376ff1fb81db4a5c",
                "5711cf41623ceb4eacc50eb6108a3ca6565c7492e3caaf82a3e355cc660d1574",
            ),
        ),
    ),
}
