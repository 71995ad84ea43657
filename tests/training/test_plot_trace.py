"""``embedlab plot trace`` on a KGE, an MF and an LM run: one trace schema for every task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from embedlab import plots
from embedlab.cli.main import main
from embedlab.errors import UserError
from tests.conftest import write_ratings, write_tiny_corpus


def _train(task: str, tmp_path: Path) -> Path:
    out = tmp_path / task
    if task == "kge":
        argv = ["kge", "train", "--dataset", "nations", "--set", "model.dim=8",
                "--set", "train.max_epochs=4", "--set", "eval.every=2"]  # fmt: skip
    elif task == "mf":
        data = write_ratings(tmp_path / "ratings")
        argv = ["mf", "train", "--dataset", str(data), "--set", "model.dim=4",
                "--set", "train.max_epochs=6", "--set", "eval.every=2",
                "--set", "data.valid_fraction=0.1"]  # fmt: skip
    else:
        corpus = write_tiny_corpus(tmp_path / "corpus")
        argv = ["lm", "train", "--dataset", str(corpus), "--set", "model.embedding_dim=8",
                "--set", "model.hidden=8", "--set", "train.batch_size=4", "--set", "train.bptt=6",
                "--set", "eval.batch_size=2", "--set", "train.max_epochs=3"]  # fmt: skip
    assert main([*argv, "--set", "train.num_threads=1", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(("task", "metric"), [("kge", "mrr"), ("mf", "rmse"), ("lm", "loss")])
def test_plot_trace_draws_each_tasks_selection_metric(
    task: str, metric: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _train(task, tmp_path)
    events = [json.loads(x) for x in (run / "trace.jsonl").read_text().splitlines()]
    start = events[0]
    assert start["event"] == "start" and start["metric"] == metric
    assert start["mode"] == ("max" if task == "kge" else "min")
    valid = [e for e in events if e["event"] == "valid"]
    drawn: list[Figure] = []
    monkeypatch.setattr(plots, "save_png", lambda fig, out: drawn.append(fig) or out)
    plots.plot_trace([run], tmp_path / "curve.png")
    (line, *_) = drawn[0].axes[0].lines
    assert list(line.get_ydata()) == [e[metric] for e in valid]
    assert list(line.get_xdata()) == pytest.approx([e["seconds"] / 60 for e in valid])
    assert drawn[0].axes[0].get_ylim() != (0.25, 0.5)
    plots.plot_trace([run], tmp_path / "zoom.png", ylim=(0.25, 0.5),
                     styles={run.name: {"color": "tab:red", "linestyle": "--"}})  # fmt: skip
    assert drawn[1].axes[0].get_ylim() == (0.25, 0.5)
    plots.plot_trace([run], tmp_path / "by-epoch.png", x_axis="epoch")
    (by_epoch, *_) = drawn[2].axes[0].lines
    assert list(by_epoch.get_xdata()) == [e["epoch"] for e in valid]
    assert list(by_epoch.get_ydata()) == [e[metric] for e in valid]
    assert drawn[2].axes[0].get_xlabel() == "epoch"
    with pytest.raises(ValueError, match="x_axis"):
        plots.plot_trace([run], tmp_path / "bad.png", x_axis="steps")
    (styled, *_) = drawn[1].axes[0].lines
    assert (styled.get_color(), styled.get_linestyle(), styled.get_marker()) == (
        "tab:red",
        "--",
        ".",
    )
    # the CLI passes --x-axis through to the figure
    assert main(["plot", "trace", str(run), "--x-axis", "epoch", "--out", "unused.png"]) == 0
    (cli_line, *_) = drawn[-1].axes[0].lines
    assert list(cli_line.get_xdata()) == [e["epoch"] for e in valid]
    assert drawn[-1].axes[0].get_xlabel() == "epoch"
    monkeypatch.undo()
    png = tmp_path / "curve2.png"
    assert main(["plot", "trace", str(run), "--out", str(png)]) == 0 and png.is_file()
    with pytest.raises(UserError, match="no 'nonsense'"):
        plots.plot_trace([run], png, metric="nonsense")
