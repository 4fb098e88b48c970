"""The GPU throughput script: its table, its input checks, and a dry run on the CPU."""

import json

import numpy as np
import pytest

from benchmarks.gpu_vision import main, markdown_table, measure


def _row(imgsz, batch, precision, fps, lo, hi, ms, fwd):
    return {"imgsz": imgsz, "batch": batch, "precision": precision, "fps": fps, "fps_min": lo, "fps_max": hi,
            "ms_per_batch": ms, "forward_fps": fwd}


def test_markdown_table_one_row_per_case_rounded():
    r = {"rows": [_row(320, 1, "fp32", 212.46, 190.2, 220.7, 4.707, 1010.4),
                  _row(416, 32, "fp16", 2950.5, 2801.0, 3004.9, 10.845, 30512.0)]}
    lines = markdown_table(r).splitlines()
    assert lines[0].startswith("| imgsz | batch | precision |")
    assert lines[2:] == ["| 320 | 1 | fp32 | 212 | 190-221 | 4.7 | 1010 |",
                         "| 416 | 32 | fp16 | 2950 | 2801-3005 | 10.8 | 30512 |"]


@pytest.mark.parametrize("frames, msg", [
    (np.zeros((4, 32, 32), np.uint8), "uint8"),
    (np.zeros((4, 32, 32, 3), np.float32), "uint8"),
    (np.zeros((4, 32, 32, 3), np.uint8), "largest batch"),
])
def test_measure_rejects_unusable_frames(frames, msg):
    with pytest.raises(ValueError, match=msg):
        measure("unused.pt", frames, device="cpu", batches=(1, 8))


@pytest.mark.slow
def test_dry_run_on_cpu_writes_json_and_markdown(tmp_path):
    rng = np.random.default_rng(0)
    np.savez_compressed(tmp_path / "f.npz", frames=rng.integers(0, 255, (3, 320, 512, 3), dtype=np.uint8))
    main([str(tmp_path / "f.npz"), "--out", str(tmp_path / "out"), "--device", "cpu", "--sizes", "320",
          "--batches", "1,2", "--half", "", "--repeats", "1", "--warmup", "1"])
    r = json.loads((tmp_path / "out" / "gpu_vision.json").read_text())
    assert [(x["imgsz"], x["batch"], x["precision"]) for x in r["rows"]] == [(320, 1, "fp32"), (320, 2, "fp32")]
    # batch 2 over 3 frames: one full batch per pass; the 512x320 frames letterbox to 320x224 (rect)
    assert [x["frames_per_repeat"] for x in r["rows"]] == [3, 2]
    assert r["rows"][1]["input_shape"] == [2, 3, 224, 320]
    assert all(x["fps"] > 0 and x["forward_fps"] > 0 for x in r["rows"])
    assert "| 320 | 2 | fp32 |" in (tmp_path / "out" / "gpu_vision.md").read_text()


def test_a_vision_report_rewritten_without_a_gpu_keeps_the_measured_gpu_section(tmp_path, monkeypatch):
    from benchmarks import vision

    md = tmp_path / "vision.md"
    md.write_text("# old report\n\nold figures\n\n## GPU throughput: measured once on a lent card\n\n| 416 | 795 |\n")
    monkeypatch.setattr(vision, "markdown_report", lambda r: "# new report\n\nnew figures\n")
    vision.write({"gpu_batch_fps": None}, None, md)
    text = md.read_text()
    assert text.startswith("# new report") and "old figures" not in text
    assert text.endswith("## GPU throughput: measured once on a lent card\n\n| 416 | 795 |\n")
    vision.write({"gpu_batch_fps": 812.0}, None, md)  # a run that measured its own GPU replaces it
    assert "lent card" not in md.read_text()
