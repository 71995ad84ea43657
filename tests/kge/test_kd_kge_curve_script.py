"""benchmarks/kd_kge_curve.py: the stage chain on nations (tiny teacher), resumability, the JSON
rows, the figure, and the presets' compression ratios (issue 14, part 2)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from embedlab.embeddings.compression import kd_table_bits
from embedlab.embeddings.config import KdConfig
from embedlab.errors import UserError
from embedlab.kge.config import build_config
from embedlab.kge.run import train_run
from tests.conftest import fast_config

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "kd_kge_curve", ROOT / "benchmarks/kd_kge_curve.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("preset", "rows"), [("wn18rr", 40943), ("fb15k-237", 14541)])
def test_presets_are_near_10_25_50_100x(preset: str, rows: int) -> None:
    ratios = []
    for setting in _script().PRESETS[preset]:
        K, D, code_dim = (int(x) for x in setting.split(":")[:3])
        kd = KdConfig(K=K, D=D, code_dim=code_dim)
        ratios.append(kd_table_bits(num_rows=rows, dim=128, config=kd)["ratio"])
    for got, want in zip(ratios, (10, 25, 50, 100), strict=True):
        assert got == pytest.approx(want, rel=0.05)


def test_default_is_the_single_run_of_before() -> None:
    script = _script()
    args = script.parse_args(["--teacher", "t", "--finetune-epochs", "2"])
    assert [s for s, _ in script.stage_plan("16:4:128", args)] == ["distill"]
    sets = script.stage_overrides("distill", "16:4:128", Path("t"), args)
    assert "train.max_epochs=2" in sets and "entity_embedding.kd.freeze_codes=true" in sets
    with pytest.raises(SystemExit):
        script.parse_args(["--teacher", "t", "--finetune-epochs", "2", "--joint-epochs", "1"])
    with pytest.raises(SystemExit):  # training needs a teacher; --plot-only does not
        script.parse_args(["--finetune-epochs", "2"])


def test_optimizer_lr_and_penalty_weight_apply_to_the_task_stages_only() -> None:
    script = _script()
    args = script.parse_args(
        ["--teacher", "t", "--joint-epochs", "1", "--frozen-epochs", "1",
         "--optimizer", "adam", "--lr", "0.001", "--joint-distill-weight", "0"]
    )  # fmt: skip
    weight = "entity_embedding.kd.distill_weight="
    distill = script.stage_overrides("distill", "16:4:128", Path("t"), args)
    assert not any(s.startswith(("train.optimizer=", "train.lr=")) for s in distill)
    assert f"{weight}1.0" in distill
    for stage in ("joint", "frozen"):
        sets = script.stage_overrides(stage, "16:4:128", Path("t"), args)
        assert "train.optimizer=adam" in sets and "train.lr=0.001" in sets
        assert f"{weight}0.0" in sets and f"{weight}1.0" not in sets
    teacher = script.parse_args(["--teacher", "t", "--joint-epochs", "1"])
    joint = script.stage_overrides("joint", "16:4:128", Path("t"), teacher)
    assert not any(s.startswith(("train.optimizer=", "train.lr=")) for s in joint)
    assert f"{weight}1.0" in joint  # default: the distill stage's weight
    with pytest.raises(SystemExit):
        script.parse_args(["--teacher", "t", "--optimizer", "sgd"])


def test_stage_set_overrides_the_task_stages_last() -> None:
    """``--stage-set`` reaches stages joint/frozen only, after the script's own overrides, so
    that it wins (entity dropout, which every stage otherwise sets to 0)."""
    script = _script()
    args = script.parse_args(["--teacher", "t", "--joint-epochs", "1",
                              "--stage-set", "entity_embedding.dropout=0.3"])  # fmt: skip
    teacher = fast_config("nations", **{"entity_embedding.dropout": 0.1}).model_dump(mode="json")
    for stage in ("distill", "joint", "frozen"):
        sets = script.stage_overrides(stage, "4:3:8", Path("t"), args)
        config = build_config(base=teacher, overrides=sets)
        assert config.entity_embedding.dropout == (0.0 if stage == "distill" else 0.3), stage
        assert config.entity_embedding.kind == "kd"


def test_stage_chain_on_nations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    teacher = tmp_path / "teacher"
    train_run(fast_config("nations", **{"train.max_epochs": 1}), teacher)
    script = _script()
    argv = [
        "--teacher", str(teacher), "--runs", str(tmp_path / "runs"), "--settings", "4:3:8",
        "--distill-epochs", "2", "--joint-epochs", "1", "--frozen-epochs", "1", "--threads", "1",
        "--out", str(tmp_path / "curve.json"), "--png", str(tmp_path / "curve.png"),
    ]  # fmt: skip
    result = script.main(argv)
    (row,) = result["rows"]
    stages = [(s["stage"], Path(s["run"]).name) for s in row["stages"]]
    assert stages == [
        ("distill", "4-3-8-ft0"),
        ("joint", "4-3-8-ft0-joint1"),
        ("frozen", "4-3-8-ft0-joint1-frozen1"),
    ]
    assert row["reconstruction_test_mrr"] == row["stages"][0]["test_mrr"]
    assert row["test_mrr"] == row["stages"][-1]["test_mrr"]
    assert [s["epochs"] for s in row["stages"]] == [0, 1, 1]
    assert row["distill_relative_error"] is not None and row["ratio"] > 0  # nations: < 1x
    config = (tmp_path / "runs/4-3-8-ft0-joint1/config.yaml").read_text()
    assert "freeze_codes: false" in config and f"init_from: {tmp_path}/runs/4-3-8-ft0" in config
    assert json.loads((tmp_path / "curve.json").read_text()) == result
    assert (tmp_path / "curve.png").stat().st_size > 0
    # resumable: finished runs are read, not re-trained
    before = (tmp_path / "runs/4-3-8-ft0-joint1/metrics.json").stat().st_mtime_ns
    assert script.main(argv) == result
    assert (tmp_path / "runs/4-3-8-ft0-joint1/metrics.json").stat().st_mtime_ns == before
    # a finished stage asked for with other options is refused, not read as if it were that run
    with pytest.raises(UserError, match=r"finished joint run with other options \(train.lr\)"):
        script.main([*argv, "--lr", "0.001"])
    # an unfinished stage (killed after its checkpoint, before metrics.json) resumes, it is not
    # restarted from scratch: its trace gains a resume event and keeps the first run's events
    joint = tmp_path / "runs/4-3-8-ft0-joint1"
    (joint / "metrics.json").unlink()
    events = [json.loads(x)["event"] for x in (joint / "trace.jsonl").read_text().splitlines()]
    again = script.main(argv)
    after = [json.loads(x)["event"] for x in (joint / "trace.jsonl").read_text().splitlines()]
    assert after[: len(events)] == events and "resume" in after[len(events) :]
    assert again["rows"][0]["stages"][1]["test_mrr"] == pytest.approx(row["stages"][1]["test_mrr"])
    # the run directories gone (a new machine): the curve is read back from --out, not re-trained
    shutil.rmtree(tmp_path / "runs")
    assert script.main(argv)["rows"] == again["rows"] and not (tmp_path / "runs").exists()
    capsys.readouterr()


def _fake_teacher(tmp_path: Path) -> Path:
    """A teacher run directory with only the metrics the curve reads (test MRR 0.5)."""
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "metrics.json").write_text(json.dumps({"test": {"mrr": 0.5}, "valid": {"mrr": 0.4}}))
    return teacher


def test_each_finished_setting_lands_in_the_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A curve killed during its second setting leaves the first one in ``--out``
    (``complete: false``); the finished curve says ``complete: true``."""
    script = _script()
    teacher, out, runs = _fake_teacher(tmp_path), tmp_path / "curve.json", tmp_path / "runs"
    argv = ["--teacher", str(teacher), "--runs", str(runs), "--settings", "4:3:8", "8:2:8",
            "--out", str(out)]  # fmt: skip
    for name in ("4-3-8-ft0", "8-2-8-ft0"):  # their runs are on this machine (else read from out)
        (runs / name).mkdir(parents=True)

    def killed_at_second(setting: str, args: object) -> dict[str, str]:
        if setting == "8:2:8":
            raise KeyboardInterrupt
        return {"setting": setting}

    monkeypatch.setattr(script, "run_setting", killed_at_second)
    with pytest.raises(KeyboardInterrupt):
        script.main(argv)
    partial = json.loads(out.read_text())
    assert partial["rows"] == [{"setting": "4:3:8"}] and partial["complete"] is False
    # the partial curve can be drawn as it stands, nothing trained
    drawn: list[str] = []
    monkeypatch.setattr(script, "run_setting", lambda setting, args: drawn.append(setting))
    monkeypatch.setattr(script, "_plot", lambda result, args: drawn.append(f"plot {args.png}"))
    png = tmp_path / "curve.png"
    assert script.main([*argv, "--png", str(png), "--plot-only"]) == partial
    assert drawn == [f"plot {png}"]
    with pytest.raises(SystemExit):  # nothing to draw to
        script.main([*argv, "--plot-only"])
    assert partial["settings"] == ["4:3:8", "8:2:8"] and partial["teacher_test_mrr"] == 0.5
    monkeypatch.setattr(script, "run_setting", lambda setting, args: {"setting": setting})
    result = script.main(argv)
    assert json.loads(out.read_text()) == result and result["complete"] is True
    assert [r["setting"] for r in result["rows"]] == ["4:3:8", "8:2:8"]
    # a rerun that fails part-way leaves the complete curve as it was
    monkeypatch.setattr(script, "run_setting", killed_at_second)
    with pytest.raises(KeyboardInterrupt):
        script.main(argv)
    assert json.loads(out.read_text()) == result


def test_rows_of_settings_without_run_directories_come_from_the_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a machine without the run directories, ``--out`` alone continues the curve: its rows
    are reused only for settings with no stage directory, and only when the teacher's metrics
    and the options are the same."""
    script = _script()
    teacher, out, runs = _fake_teacher(tmp_path), tmp_path / "curve.json", tmp_path / "runs"
    argv = ["--teacher", str(teacher), "--runs", str(runs), "--settings", "4:3:8", "8:2:8",
            "--joint-epochs", "2", "--out", str(out)]  # fmt: skip
    trained: list[str] = []

    def train(setting: str, args: object) -> dict[str, object]:
        trained.append(setting)
        return {"setting": setting, "test_mrr": len(trained)}

    monkeypatch.setattr(script, "run_setting", train)
    first = script.main(argv)
    assert trained == ["4:3:8", "8:2:8"]
    # no stage directory of either setting: both rows read back, nothing trained
    assert script.main(argv)["rows"] == first["rows"] and trained == ["4:3:8", "8:2:8"]
    assert "row read from" in capsys.readouterr().err
    # a JSON written before --stage-set existed ran without it
    old = json.loads(out.read_text())
    del old["stage_set"]
    out.write_text(json.dumps(old))
    assert script.main(argv)["rows"] == first["rows"] and trained == ["4:3:8", "8:2:8"]
    # a stage directory of 8:2:8 exists (its runs are here, maybe unfinished): that one is trained
    (runs / "8-2-8-ft0-joint2").mkdir(parents=True)
    again = script.main(argv)
    assert trained == ["4:3:8", "8:2:8", "8:2:8"]
    assert again["rows"] == [first["rows"][0], {"setting": "8:2:8", "test_mrr": 3}]
    # other options, or a teacher with other metrics: nothing is reused
    script.main([*argv, "--lr", "0.01"])
    assert trained[3:] == ["4:3:8", "8:2:8"]
    assert "written with another lr" in capsys.readouterr().err
    (teacher / "metrics.json").write_text(json.dumps({"test": {"mrr": 0.6}, "valid": {"mrr": 0.4}}))
    script.main(argv)
    assert trained[5:] == ["4:3:8", "8:2:8"]
    assert "another teacher_test_mrr" in capsys.readouterr().err


@pytest.mark.parametrize(
    "committed", ["docs/kd-kge-e2e-wn18rr.json", "docs/kd-kge-wn18rr.json"]
)  # a staged curve, and one written before the stages existed
def test_plot_only_draws_a_committed_curve(committed: str, tmp_path: Path) -> None:
    """``--plot-only`` takes the stages from the JSON, not from the command line: the staged
    curve gets its reconstruction-only series with no stage options given."""
    script = _script()
    drawn: dict[str, object] = {}
    png = tmp_path / "curve.png"
    argv = ["--out", str(ROOT / committed), "--png", str(png), "--plot-only"]  # no --teacher
    original = script.plot_compression_curve
    script.plot_compression_curve = lambda points, **kw: drawn.update(kw) or original(points, **kw)
    script.main(argv)
    assert png.stat().st_size > 0
    staged = committed.endswith("e2e-wn18rr.json")
    assert drawn["series"] == ("end to end (distill+joint+frozen)" if staged else "KD codes")
    assert (drawn["extra"] is not None) == staged
