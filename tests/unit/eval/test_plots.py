"""Training-curve PNGs from metrics.jsonl."""

import json

import pytest

from audiorl.bin import plot_metrics as plot_cli
from audiorl.eval.plots import collect, ema, plot_metrics, plot_runs, read_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_metrics(path, scale=1.0, truncated=False):
    lines = []
    for step in range(0, 200, 10):
        lines.append({"step": step, "split": "train", "loss": scale * 2.0 / (1 + step / 50), "lr": 1e-3 * (1 + step) / 200})
        if step % 50 == 0:
            lines.append({"step": step, "split": "valid", "loss": scale * 2.2 / (1 + step / 50), "wer": 30 - step / 10})
    text = "".join(json.dumps(r) + "\n" for r in lines)
    if truncated:
        text += '{"step": 200, "split": "tr'  # killed mid-write
    path.write_text(text)
    return path


def test_plot_metrics_writes_png(tmp_path):
    src = _write_metrics(tmp_path / "metrics.jsonl")
    out = plot_metrics(str(src), str(tmp_path / "sub" / "curves.png"), smooth=0.6)
    data = open(out, "rb").read()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_plot_runs_writes_png(tmp_path):
    a = _write_metrics(tmp_path / "a.jsonl")
    b = _write_metrics(tmp_path / "b.jsonl", scale=0.8)
    out = plot_runs({"grpo": str(a), "diffro": str(b)}, str(tmp_path / "cmp.png"), splits=("valid",), metrics=["loss"])
    assert open(out, "rb").read().startswith(PNG_MAGIC)


def test_collect_groups_by_metric_and_split(tmp_path):
    recs = read_metrics(str(_write_metrics(tmp_path / "m.jsonl", truncated=True)))
    s = collect(recs + [{"split": "train", "loss": 1.0}, {"step": 5, "loss": float("nan"), "flag": True}])
    assert sorted(s) == ["loss", "lr", "wer"]  # booleans and non-numbers are not metrics
    assert sorted(s["loss"]) == ["train", "valid"]
    assert len(s["loss"]["train"][0]) == 20 and len(s["wer"]["valid"][0]) == 4


def test_bad_line_reports_file_and_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 1, "loss": 1}\nnot json\n{"step": 2, "loss": 1}\n')
    with pytest.raises(ValueError, match=r"m.jsonl:2:"):
        read_metrics(str(p))
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_metrics([{"step": 1, "split": "train"}], str(tmp_path / "x.png"))


def test_ema_debiased():
    assert ema([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])
    assert ema([1.0, 3.0], 0.0) == [1.0, 3.0]


def test_cli(tmp_path, capsys):
    a = _write_metrics(tmp_path / "a.jsonl")
    assert plot_cli.main([str(a), "--out", str(tmp_path / "c.png")]) == 0
    assert plot_cli.main([str(a), str(a), "--labels", "x,y", "--out", str(tmp_path / "d.png")]) == 0
    assert plot_cli.main([str(a), str(a), "--out", str(tmp_path / "e.png")]) == 2  # same default label twice
    assert (tmp_path / "d.png").stat().st_size > 0
