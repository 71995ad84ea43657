"""embedlab tune: a real 3-trial study on a tiny KG (SQLite, resumed, best config); pruning and
the re-queue of an interrupted trial with a fake trainer (tests/tune/fake_train.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from embedlab.cli.main import main
from embedlab.config.io import build_typed_config
from embedlab.kge.config import build_config
from embedlab.tune.study import StudyConfig, run_study
from embedlab.tune.trial import TrialPruned, TrialRun, run_trial

optuna = pytest.importorskip("optuna")
FAKE = (sys.executable, str(Path(__file__).with_name("fake_train.py")))
BASE = """dataset: nations
model: {name: distmult, dim: 8}
loss: {name: sce}
train: {type: 1vsAll, max_epochs: 2, batch_size: 64, lr: 0.1, num_threads: 1}
eval: {every: 1}
"""


def _files(tmp_path: Path, space: str) -> tuple[Path, Path]:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "space.yaml").write_text(space)
    return tmp_path / "base.yaml", tmp_path / "space.yaml"


def test_three_trials_on_nations_resume_and_best_config(tmp_path: Path) -> None:
    base, space = _files(tmp_path, "train.lr: {type: float, low: 0.01, high: 0.5, log: true}\n")
    out, db = tmp_path / "out", f"sqlite:///{tmp_path / 'study.db'}"
    args = ["tune", "--config", str(base), "--space", str(space), "--storage", db,
            "--out", str(out)]  # fmt: skip
    assert main([*args, "--trials", "3"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"COMPLETE": 3}
    for trial in summary["trials"]:  # each trial is a normal run directory
        metrics = json.loads((Path(trial["run_dir"]) / "metrics.json").read_text())
        assert trial["value"] == metrics["valid"]["mrr"]
    best = max(summary["trials"], key=lambda t: t["value"])
    assert summary["best"]["number"] == best["number"]
    config = build_config(path=out / "best.yaml")  # ready for train
    assert config.train.lr == pytest.approx(best["params"]["train.lr"])
    assert config.train.max_epochs == 2  # the base value; --set overrides are kept too (below)
    assert (out / "history.png").stat().st_size > 0
    assert main([*args, "--trials", "4"]) == 0  # continues the same study: one more trial
    study = optuna.load_study(study_name="out", storage=db)
    assert len(study.trials) == 4
    assert json.loads((out / "summary.json").read_text())["counts"] == {"COMPLETE": 4}


def test_run_trial_prunes_and_stops_the_process(tmp_path: Path) -> None:
    run = TrialRun(
        command=[*FAKE, "kge", "train", "--out", str(tmp_path / "t"), "--set", "train.lr=1.0",
                 "--set", "train.max_epochs=50"],
        run_dir=tmp_path / "t", metric="mrr", log=tmp_path / "t.log",
    )  # fmt: skip
    reported: list[tuple[float, int]] = []

    def report(value: float, epoch: int) -> bool:
        reported.append((value, epoch))
        return epoch == 2

    with pytest.raises(TrialPruned):
        run_trial(run, report)
    assert reported == [(0.1, 1), (0.2, 2)]
    assert not (tmp_path / "t" / "metrics.json").exists()  # stopped long before epoch 50


def test_median_pruner_prunes_worse_trials(tmp_path: Path) -> None:
    base, space = _files(tmp_path, "train.lr: {type: float, low: 0.01, high: 1.0}\n")
    summary = run_study(
        StudyConfig(base=base, space=space, trials=10, storage=f"sqlite:///{tmp_path / 's.db'}",
                    out=tmp_path / "out", sampler="random", seed=3,
                    overrides=["train.max_epochs=4"]),
        command_prefix=FAKE,
    )  # fmt: skip
    trials = summary["trials"]
    pruned = [t for t in trials if t["state"] == "PRUNED"]
    assert pruned and summary["counts"]["COMPLETE"] + len(pruned) == 10
    for t in pruned:  # stopped early, below what an earlier complete trial had at that epoch
        epoch = t["last_reported"]["epoch"]
        assert epoch < 4
        earlier = [c["params"]["train.lr"] * epoch / 10 for c in trials
                   if c["state"] == "COMPLETE" and c["number"] < t["number"]]  # fmt: skip
        assert t["last_reported"]["value"] < max(earlier)
    for t in trials:  # the fake value after 4 epochs is lr * 0.4
        if t["state"] == "COMPLETE":
            assert t["value"] == pytest.approx(t["params"]["train.lr"] * 0.4)


def test_interrupted_trial_is_requeued_in_its_run_directory(tmp_path: Path) -> None:
    base, space = _files(tmp_path, "train.lr: {type: float, low: 0.01, high: 1.0}\n")
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="out", storage=storage, direction="maximize")
    trial = study.ask({"train.lr": optuna.distributions.FloatDistribution(0.01, 1.0)})
    run_dir = tmp_path / "out" / "trial-0000"
    trial.set_user_attr("run_dir", str(run_dir))
    run_dir.mkdir(parents=True)  # one epoch was done before the "kill"
    (run_dir / "trace.jsonl").write_text(
        json.dumps({"event": "valid", "epoch": 1, "mrr": 0}) + "\n"
    )
    config = StudyConfig(base=base, space=space, trials=1, storage=storage, out=tmp_path / "out",
                         pruner="none", overrides=["train.max_epochs=3"])  # fmt: skip
    summary = run_study(config, command_prefix=FAKE)
    assert yaml.safe_load((tmp_path / "out" / "best.yaml").read_text())["train"]["max_epochs"] == 3
    states = {t["number"]: t["state"] for t in summary["trials"]}
    assert states == {0: "FAIL", 1: "COMPLETE"}
    resumed = summary["trials"][1]
    assert resumed["run_dir"] == str(run_dir)  # the same directory, resumed
    assert resumed["params"] == summary["trials"][0]["params"]
    epochs = [json.loads(x)["epoch"] for x in (run_dir / "trace.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]  # epoch 1 was not trained again


def test_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, space = _files(tmp_path, "train.lrr: {type: float, low: 0.01, high: 1.0}\n")
    (tmp_path / "bad.yaml").write_text("nonsense: 1\n")
    common = ["--trials", "1", "--storage", f"sqlite:///{tmp_path / 's.db'}",
              "--out", str(tmp_path / "o")]  # fmt: skip
    assert (
        main(["tune", "--config", str(tmp_path / "bad.yaml"), "--space", str(space), *common]) == 2
    )
    assert "not a valid config of any task" in capsys.readouterr().err
    assert (
        main(["tune", "--config", str(base), "--space", str(space), "--task", "hashing", *common])
        == 2
    )
    assert "--task 'hashing'" in capsys.readouterr().err
    bad = ["--sampler", "bayes"]
    assert main(["tune", "--config", str(base), "--space", str(space), *bad, *common]) == 2
    assert "sampler tpe|random|grid" in capsys.readouterr().err
    # a key the config does not have: the trial fails with the config's message, no traceback
    assert main(["tune", "--config", str(base), "--space", str(space), *common]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["counts"] == {"FAIL": 1} and "lrr" in summary["trials"][0]["error"]
    assert yaml.safe_load(base.read_text())["train"]["lr"] == 0.1


def test_grid_over_groups_runs_each_choice_once_with_all_its_keys(tmp_path: Path) -> None:
    base, space = _files(
        tmp_path,
        """paired:
  type: group
  choices:
    short-fast: {train.lr: 0.9, train.max_epochs: 2}
    long-slow: {train.lr: 0.2, train.max_epochs: 6}
    long-fast: {train.lr: 0.5, train.max_epochs: 3}
""",
    )
    summary = run_study(
        StudyConfig(base=base, space=space, trials=3, storage=f"sqlite:///{tmp_path / 's.db'}",
                    out=tmp_path / "out", sampler="grid", pruner="none"),
        command_prefix=FAKE,
    )  # fmt: skip
    ran = {t["params"]["paired"]: t for t in summary["trials"]}
    assert sorted(ran) == ["long-fast", "long-slow", "short-fast"]  # each choice exactly once
    for t in ran.values():  # the fake trainer saw both keys of the choice: value = lr * epochs/10
        s = t["settings"]
        assert t["value"] == pytest.approx(s["train.lr"] * s["train.max_epochs"] / 10)
    assert summary["best"]["params"] == {"paired": "short-fast"}  # 0.18 > 0.15 > 0.12
    best = yaml.safe_load((tmp_path / "out" / "best.yaml").read_text())
    assert (best["train"]["lr"], best["train"]["max_epochs"]) == (0.9, 2)


def test_gcn_study_on_a_tiny_planetoid_graph(tmp_path: Path) -> None:
    """Real `embedlab gcn train` trials: the objective is each run's valid accuracy (the task's
    metric, maximized) and best.yaml is a GCN config with the best trial's hidden width."""
    from embedlab.gcn.config import GcnConfig
    from tests.gcn.planetoid_files import write_planetoid

    data = write_planetoid(tmp_path / "tiny")
    (tmp_path / "base.yaml").write_text(
        f"dataset: {data}\ndata: {{valid_size: 10}}\nmodel: {{hidden: 8}}\n"
        "train: {max_epochs: 8, lr: 0.05, num_threads: 1}\neval: {every: 1}\n"
    )
    (tmp_path / "space.yaml").write_text("model.hidden: {type: categorical, choices: [4, 16]}\n")
    summary = run_study(
        StudyConfig(base=tmp_path / "base.yaml", space=tmp_path / "space.yaml", trials=2,
                    storage=f"sqlite:///{tmp_path / 's.db'}", out=tmp_path / "out",
                    sampler="grid", pruner="none"),
    )  # fmt: skip
    assert (summary["task"], summary["metric"]) == ("gcn", "valid accuracy")
    assert summary["counts"] == {"COMPLETE": 2}
    assert sorted(t["params"]["model.hidden"] for t in summary["trials"]) == [4, 16]
    for trial in summary["trials"]:
        metrics = json.loads((Path(trial["run_dir"]) / "metrics.json").read_text())
        assert trial["value"] == metrics["valid"]["accuracy"]
    best = max(summary["trials"], key=lambda t: t["value"])
    tuned = build_typed_config(GcnConfig, path=tmp_path / "out" / "best.yaml")
    assert tuned.model.hidden == best["params"]["model.hidden"]
    assert tuned.train.max_epochs == 8
