"""The HTML report opened in a real headless browser (Debian's chromium) shows its images and
tables: the screenshot is checked for content, not blank."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from ray_vlm.evaluate.html_report import write_report
from ray_vlm.evaluate.scoring import Sample

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1000,700",
]  # fmt: skip


def _screenshot(page: Path, out: Path) -> np.ndarray:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Debian's chromium is needed (make test installs it: apt-get install chromium)"
    subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={out.parent / 'profile'}",
         f"--screenshot={out}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return np.asarray(Image.open(out).convert("RGB"))


def test_report_renders_images_and_tables(tmp_path: Path) -> None:
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (64, 64), (230, 40, 40)).save(red)
    Image.new("RGB", (64, 64), (50, 90, 240)).save(blue)
    samples = {
        "model": [
            Sample("t.jsonl:1", [str(red)], "Describe the image.", ["a red square"], "a red square", "", 10.0),
            Sample("t.jsonl:2", [str(blue)], "Describe the image.", ["a blue square"], "a red", "", 0.5),
        ],
        "compare": [
            Sample("t.jsonl:1", [str(red)], "Describe the image.", ["a red square"], "", "", 0.0),
            Sample("t.jsonl:2", [str(blue)], "Describe the image.", ["a blue square"], "blue", "", 1.0),
        ],
    }  # fmt: skip
    metrics = {
        "model": {"ckpt": "after", "cider": 5.25, "samples": 2},
        "compare": {"ckpt": "before", "cider": 0.5, "samples": 2},
    }
    page = write_report(tmp_path / "report.html", "caption on t", metrics, samples)
    text = page.read_text()
    assert text.index("t.jsonl:2") < text.index("t.jsonl:1")  # worst first
    pixels = _screenshot(page, tmp_path / "shot.png")
    assert pixels.shape[:2] == (700, 1000)
    colours = {tuple(int(c) for c in p) for p in pixels.reshape(-1, 3)[::7]}
    assert len(colours) > 20, "the screenshot is blank"
    # Both thumbnails were drawn (each about 96x96 px of its colour).
    for rgb in ((230, 40, 40), (50, 90, 240)):
        matches = np.all(np.abs(pixels.astype(int) - rgb) <= 12, axis=-1).sum()
        assert matches > 80 * 80, f"image of colour {rgb} not rendered ({matches} px)"
    dark_text = (pixels.sum(axis=-1) < 200).sum()  # table borders and text
    assert dark_text > 2000
