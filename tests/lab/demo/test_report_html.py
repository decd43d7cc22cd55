"""`report.html`: what it holds, and how it loads in a real browser.

The browser is headless Chromium from the Debian packages (`apt-get install
-y chromium`, which `.ci/run` does when it runs as root); without it the
browser test is skipped and says so.
"""

import json
import os
import re
import shutil
import subprocess

from kfactor.lab.demo import html
from kfactor.lab.demo import write_report

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)
#: Appended to a copy of the page only: counts the images that decoded.
IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const ok = images.filter((i) => i.complete && i.naturalWidth > 0);
  document.body.setAttribute("data-images", ok.length + "/" + images.length);
});
</script>"""


@pytest.fixture(scope="module")
def chromium():
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        "needs headless Chromium: apt-get install -y chromium (Debian; "
        ".ci/run installs it when it runs as root)"
    )


def run_chromium(chromium, profile, *args):
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result


def console_errors(stderr):
    """Chromium's console messages and load failures in its log."""
    return [
        line
        for line in stderr.splitlines()
        if ":CONSOLE" in line or "Failed to load resource" in line
    ]


@pytest.fixture(scope="module")
def report(demo_run):
    with open(demo_run / "report.json") as f:
        return json.load(f)


def test_the_page_holds_the_tables_and_every_figure(demo_run, report):
    page = (demo_run / html.REPORT_HTML_FILE).read_text()
    for title in [*html.TABLE_TITLES.values(), *html.LEAKAGE_SECTIONS.values()]:
        assert f"<h2>{title}</h2>" in page
    assert "KD student" in page  # the demo trains the KD baseline
    assert page.count("<img ") == len(report["figures"])
    assert "http://" not in page and "https://" not in page  # no network
    assert "<script" not in page


def test_a_report_without_baselines_renders_what_it_has(report):
    report = {k: v for k, v in report.items() if k != "transfer"}
    report["tasks"] = {
        task: {
            k: v for k, v in scores.items() if "teacher" in k or "factor" in k
        }
        for task, scores in report["tasks"].items()
    }
    report["orientation_accuracy"] = {
        name: value
        for name, value in report["orientation_accuracy"].items()
        if name in ("teacher", "factor networks")
    }
    page = html.render_html(report)
    assert "KD student" not in page
    assert html.TABLE_TITLES["factor"] not in page


def test_the_page_loads_in_chromium_with_every_image(
    demo_run, chromium, tmp_path
):
    page = demo_run / html.REPORT_HTML_FILE
    screenshot = tmp_path / "report.png"
    shot = run_chromium(
        chromium,
        tmp_path / "profile-1",
        f"--screenshot={screenshot}",
        "--window-size=1280,3000",
        page.as_uri(),
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 10_000
    assert console_errors(shot.stderr) == []
    probed = tmp_path / "probed.html"
    probed.write_text(
        page.read_text().replace("</body>", IMAGE_PROBE + "</body>")
    )
    dom = run_chromium(
        chromium,
        tmp_path / "profile-2",
        "--dump-dom",
        "--virtual-time-budget=10000",
        probed.as_uri(),
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    loaded = re.search(r'data-images="(\d+)/(\d+)"', dom.stdout)
    assert loaded, dom.stdout[-2000:]
    assert loaded[1] == loaded[2] != "0"
    # Kept for a person to look at (the test's tmp_path).
    assert os.path.isfile(screenshot)


def test_write_report_writes_the_page_beside_the_json(tmp_path):
    report = {
        "tasks": {"shape": {"teacher_accuracy": 0.9, "factor_accuracy": 0.8}}
    }
    write_report(report, tmp_path)  # kfactor demo and kfactor evaluate
    page = (tmp_path / html.REPORT_HTML_FILE).read_text()
    assert (tmp_path / "report.json").is_file()
    assert "<td>shape</td><td>0.9000</td><td>0.8000</td>" in page
    assert "<h2>Figures</h2>" not in page  # a report without figures
