"""`report.html`: the report as one static page a person opens.

One self-contained file beside `report.json`: inline CSS, every figure
embedded as a PNG data URI, no script and nothing fetched from a network.
It shows the sections the report holds and skips the others: the tables
`kfactor demo` prints (`kfactor.lab.demo.tables`: accuracies of the teacher,
the KD student, the single-task and the factor networks, the common-factor
health, the transfer table, the probe-MI matrix and the scores), the
leakage matrices, and every figure.
"""

import base64
import html
import os

from kfactor.lab.demo.config import REPORT_FILE
from kfactor.lab.demo.tables import baselines_note
from kfactor.lab.demo.tables import format_table

REPORT_HTML_FILE = "report.html"
#: The first header cell of a `format_table` block -> its section title.
TABLE_TITLES = {
    "task": "Accuracy: teacher, baselines and factor networks",
    "orientation": "Orientation accuracy",
    "common factor": "Common-factor health",
    "factor": "Transfer: frozen representations probed on every factor",
    "MI lower bound [nats]": "Probe mutual information (lower bound, nats)",
    "score": "Disentanglement scores",
}
LEAKAGE_SECTIONS = {
    "leakage": "Leakage: linear probe accuracy of each task code",
    "leakage_knn": "Leakage: kNN probe accuracy of each task code",
}
STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eee; }
figure { display: inline-block; margin: 0 1em 1.5em 0; }
img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #666; }
"""


def _cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def markdown_table_html(lines):
    """A Markdown table (header, `|---|` rule, rows) as an HTML table."""
    header, rows = _cells(lines[0]), [_cells(line) for line in lines[2:]]
    out = ["<table>", "<tr>"]
    out += [f"<th>{html.escape(cell)}</th>" for cell in header]
    out.append("</tr>")
    for row in rows:
        cells = "".join(f"<td>{html.escape(cell)}</td>" for cell in row)
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def table_sections(markdown):
    """`[(title, table html)]` of the blank-line separated tables."""
    sections = []
    for block in markdown.split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if len(lines) < 2 or not lines[0].startswith("|"):
            continue
        title = TABLE_TITLES.get(_cells(lines[0])[0], "")
        sections.append((title, markdown_table_html(lines)))
    return sections


def leakage_table_html(section):
    """A leakage section's matrix (task codes x factors) and chance row."""
    factors, chance = section["factor_names"], section["chance"]
    lines = [
        "| task code | " + " | ".join(factors) + " |",
        "|---|" + "---|" * len(factors),
        "| chance | " + " | ".join(f"{c:.3f}" for c in chance) + " |",
    ]
    for block, row in zip(section["block_names"], section["matrix"]):
        lines.append(
            f"| {block} | " + " | ".join(f"{v:.3f}" for v in row) + " |"
        )
    return markdown_table_html(lines)


def _figure_html(name, path):
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    name = html.escape(name)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{name}">'
        f"<figcaption>{name}</figcaption></figure>"
    )


def render_html(report):
    """The page's HTML text for a `kfactor demo` or `evaluate` report."""
    tasks = ", ".join(report.get("tasks", {}))
    facts = [f"tasks: {tasks}"]
    for key, label in (
        ("num_train_images", "train images"),
        ("num_test_images", "test images"),
    ):
        if key in report:
            facts.append(f"{label}: {report[key]}")
    if report.get("wall_seconds") is not None:
        facts.append(f"wall time: {report['wall_seconds']:.0f} s")
    body = [
        "<h1>kfactor report</h1>",
        f'<p class="note">{html.escape("; ".join(facts))}. Data: '
        f"{REPORT_FILE} beside this page.</p>",
    ]
    if baselines_note(report):
        body.append(
            f'<p class="note">{html.escape(baselines_note(report))}</p>'
        )
    if report.get("common_factor", {}).get("collapse_warning"):
        body.append(
            "<p><strong>Warning: the common factor collapsed during "
            "training</strong> (CommonCollapseMonitor).</p>"
        )
    for title, table in table_sections(format_table(report)):
        if title:
            body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(table)
    disentanglement = report.get("disentanglement", {})
    single_task = disentanglement.get("single_task_leakage", {})
    for key, title in LEAKAGE_SECTIONS.items():
        if key in disentanglement:
            body.append(f"<h2>{html.escape(title)}</h2>")
            body.append(leakage_table_html(disentanglement[key]))
        probe = "linear" if key == "leakage" else "knn"
        if probe in single_task:
            body.append("<h3>The same probe on the single-task networks</h3>")
            body.append(leakage_table_html(single_task[probe]))
    figures = report.get("figures", {})
    if figures:
        body.append("<h2>Figures</h2>")
        body += [
            _figure_html(name, path)
            for name, path in figures.items()
            if os.path.isfile(path)
        ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            "<title>kfactor report</title>",
            f"<style>{STYLE}</style></head><body>",
            *body,
            "</body></html>",
            "",
        ]
    )


def write_html(report, output_dir):
    """Writes `output_dir/report.html`; returns its path."""
    path = os.path.join(output_dir, REPORT_HTML_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_html(report))
    return path


__all__ = [
    "REPORT_HTML_FILE",
    "markdown_table_html",
    "render_html",
    "table_sections",
    "write_html",
]
