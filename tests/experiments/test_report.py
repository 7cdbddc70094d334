"""The claims report (``microdl report``): every claim gets a verdict, the output files exist, and the
Markdown and HTML renderings agree."""

import pytest

from microdl.cli import main
from microdl.experiments import load_results, make_report
from microdl.experiments.report import CLAIMS


def test_report_names_every_claim_with_a_verdict(tmp_path, capsys):
    assert main(["report", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    for claim in CLAIMS:
        assert claim.text in md and claim.text in printed
    assert md.count("**supported") + md.count("**not supported") + md.count("**depends") \
        + md.count("**not tested") >= len(CLAIMS)
    assert "commit `" in md and "seeds" in md and "budgets" in md and "diabetes" in md
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and "<img src=" in html
    for figure in ("gd_vs_sgd.png", "width.png", "noise.png", "sensitivity/sensitivity.png",
                   "wide_tuned/curves.png", "wide_default/curves.png", "results.json"):
        assert (tmp_path / figure).stat().st_size > 0, figure
    assert load_results(tmp_path / "wide_tuned").config["tune"] is True


def test_report_rejects_a_focus_outside_its_datasets(tmp_path):
    from dataclasses import replace

    from microdl.experiments.report import QUICK

    with pytest.raises(ValueError, match="focus dataset"):
        make_report(tmp_path, settings=replace(QUICK, focus="digits"))


def test_markup_renders_the_same_blocks_as_markdown_and_html():
    from microdl.experiments.markup import Document

    doc = Document("T")
    doc.heading("H")
    doc.paragraph("**bold** and *rule* with `code` & <tag>")
    doc.table(["a", "b|c"], [[1, "x"]])
    doc.bullets(["one"])
    doc.image("f.png", "alt")
    doc.pre("a < b")
    md, html = doc.markdown(), doc.html()
    assert md.startswith("# T\n") and "## H" in md and "| a | b\\|c |" in md and "![alt](f.png)" in md
    assert "<strong>bold</strong> and <em>rule</em> with <code>code</code> &amp; &lt;tag&gt;" in html
    assert "<th>b|c</th>" in html and '<img src="f.png" alt="alt">' in html and "<pre>a &lt; b</pre>" in html
