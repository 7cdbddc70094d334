"""The claims report end to end: ``microdl report --quick`` gives every claim a verdict from a measurement, with
its rule, interval and figure; the page renders in a real browser with every image loaded and no broken link;
a folder that is not a report is never replaced, and an interrupted run leaves the previous report intact.

One quick report is built per module and shared by the tests (it is the slow part)."""

import contextlib
import io
import json
import re
import shutil
import subprocess
import types
from pathlib import Path

import pytest

from microdl.cli import main
from microdl.experiments.report import CLAIMS, EXPERIMENTS, QUICK, make_report
from microdl.experiments.report.settings import SEED_BLOCK, ReportSettings, replication_settings
from microdl.experiments.report.verdicts import VERDICTS
from microdl.experiments.report.writer import QUICK_BANNER
from microdl.sklearn import DOCS_URL

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["report", "--quick", "--out", str(out), "--no-progress"]) == 0
    return out, printed.getvalue()


def test_every_claim_has_a_measured_verdict_with_rule_interval_and_figure(quick_report):
    out, printed = quick_report
    payload = json.loads((out / "results.json").read_text())
    md = (out / "report.md").read_text()
    assert "not tested" not in md and "not tested" not in printed
    assert len(payload["verdicts"]) == len(CLAIMS) == 31
    figures = {p.name for p in out.glob("*.png")}
    starts = sorted((md.index(f'<a id="{e.KEY}"></a>'), e.KEY) for e in EXPERIMENTS)
    sections = {key: md[start:end] for (start, key), (end, _) in zip(starts, [*starts[1:], (len(md), "")])}
    for claim in CLAIMS:
        v = payload["verdicts"][claim.id]
        assert v["verdict"] in VERDICTS, claim.id
        # the stability: every replication's verdict, and the share that agreed with the one reported
        assert len(v["replications"]) == QUICK.replications and 0 < v["stability"] <= 1, claim.id
        agreed = v["replications"].count(v["verdict"]) / len(v["replications"])
        assert v["stability"] == pytest.approx(agreed) if v["verdict"] != "unstable" else agreed == 0
        assert claim.text in md and claim.text in printed
        assert v["parts"] and v["rule"] and v["evidence"], claim.id
        for part in v["parts"]:
            est = part["estimate"]
            assert est["value"] is not None and est["low"] is not None, (claim.id, part)
            assert "supported if its 95% interval lies" in part["rule"]
        # the claim's card sits in its experiment's section, with that section's figure
        section = sections[claim.experiment]
        assert f'<a id="claim-{claim.id}"></a>' in section and "![" in section, claim.id
    totals = re.search(r"totals: (\d+) supported, (\d+) not supported, (\d+) inconclusive, (\d+) mixed, "
                       r"(\d+) unstable", printed)
    assert totals and sum(map(int, totals.groups())) == 31
    assert {"wide.png", "landscape.png", "scale.png", "drift.png", "noisy_sparse.png", "combine.png",
            "code.png", "sensitivity.png", "width.png", "noise.png", "gd_vs_sgd.png"} <= figures
    # every seed derives from --seed (0 here): replication r of seed N lives in its own block of seeds
    reps = payload["results"]["replications"]
    assert [r["base"] for r in reps] == [r * SEED_BLOCK for r in range(QUICK.replications)]
    assert payload["settings"]["seeds"] == reps[0]["seeds"] and len(reps[0]["seeds"]) == len(QUICK.seeds)
    assert not set(reps[0]["seeds"]) & set(reps[1]["seeds"]) and payload["meta"]["seed"] == 0
    assert "commit `" in md and "<pre>" not in (out / "report.html").read_text()
    # a preview says so at its head and at the end of what it printed, so it is not quoted as the report
    assert md.index("Preview (--quick)") < md.index("## Verdicts") and QUICK_BANNER in printed.split("totals: ")[1]


_CHECK = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src"));
  const ids = [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute("href").slice(1));
  const missing = ids.filter(id => !document.getElementById(id));
  const pre = document.createElement("pre");
  pre.id = "browser-check";
  pre.textContent = JSON.stringify({images: images.length, broken, anchors: ids.length, missing});
  document.body.appendChild(pre);
});
</script></body>"""


def _chromium(*args, profile):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_report_renders_in_a_browser_with_every_image_and_link(quick_report, tmp_path):
    out, _ = quick_report
    html = (out / "report.html").read_text()
    # links to files (not anchors) point at files that exist; the one link out is the explorable's documentation
    external = re.findall(r'(?:href|src)="(https?://[^"]*)"', html)
    assert external == [f"{DOCS_URL}explore.html"]
    for target in re.findall(r'(?:href|src)="([^"#][^"]*)"', html):
        if target not in external:
            assert (out / target).is_file(), target
    check = out / "_browser_check.html"
    check.write_text(html.replace("</body>", _CHECK))
    try:
        result = _chromium("--virtual-time-budget=10000", "--dump-dom", check.as_uri(), profile=tmp_path / "a")
    finally:
        check.unlink()
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', result.stdout)
    assert found, result.stderr[-2000:]
    state = json.loads(found.group(1).replace("&quot;", '"'))
    assert state["images"] >= 12 and state["broken"] == []
    assert state["anchors"] >= 2 * len(CLAIMS) and state["missing"] == []
    shot = tmp_path / "report.png"
    result = _chromium("--window-size=1400,2400", "--hide-scrollbars", f"--screenshot={shot}",
                       (out / "report.html").as_uri(), profile=tmp_path / "b")
    assert shot.is_file() and shot.stat().st_size > 50_000, result.stderr[-2000:]


def test_a_folder_that_is_not_a_report_is_never_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="did not write"):
        make_report(tmp_path, quick=True, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="focus dataset"):
        from dataclasses import replace

        make_report(tmp_path / "new", settings=replace(QUICK, focus="digits"))


def test_an_interrupted_report_leaves_the_previous_one_intact(quick_report, tmp_path, monkeypatch):
    from microdl.experiments.report import driver

    previous = tmp_path / "report"
    shutil.copytree(quick_report[0], previous)
    before = {p.name: p.read_bytes() for p in previous.iterdir()}

    def interrupted(ctx):
        (ctx.out / "report.md").write_text("half")
        raise KeyboardInterrupt

    fake = types.SimpleNamespace(KEY="wide", TITLE="interrupted", run=interrupted)
    monkeypatch.setattr(driver, "EXPERIMENTS", (fake,))
    with pytest.raises(KeyboardInterrupt):
        make_report(previous, quick=True, progress=False)
    assert {p.name: p.read_bytes() for p in previous.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary folder left behind


def test_report_help_and_settings_are_checked():
    with pytest.raises(ValueError, match="two seeds"):
        from dataclasses import replace

        make_report(Path("unused"), settings=replace(QUICK, seeds=(0,)))


def test_every_seed_derives_from_the_report_seed():
    full = ReportSettings()
    assert len(full.seeds) >= 10 and len(full.tune_seeds) >= 3 and full.replications >= 3
    blocks = {(n, r): replication_settings(full, n, r) for n in range(3) for r in range(full.replications)}
    seen: set[int] = set()
    for s in blocks.values():
        mine = {*s.seeds, *s.tune_seeds, s.base}
        assert not mine & seen  # independent: no two replications of any two report seeds share a seed
        seen |= mine
        assert not set(s.seeds) & set(s.tune_seeds)
    assert replication_settings(full, 1, 0) == replication_settings(full, 1, 0)
    with pytest.raises(ValueError, match="seed must be"):
        make_report("unused", quick=True, seed=-1)


def test_wider_networks_run_each_seed_with_its_own_tuning_seeds_choice(quick_report):
    # nested replication: a consensus setting for every seed would leave the tuning's noise out of the interval
    out, _ = quick_report
    results = json.loads((out / "results.json").read_text())["results"]
    focus = results["wide"]["datasets"][results["width"]["dataset"]]
    for o, entry in results["width"]["table"][str(QUICK.widths[0])].items():
        chosen = [focus["tuning"][o]["chosen"][str(focus["assign"][str(e)])] for e in results["width"]["seeds"]]
        assert entry["lr"] == [c["lr"] for c in chosen]
    # the network's rate is picked by the share of tuning restarts that reach the global minimum
    for v in results["landscape"]["network"]["optimizers"].values():
        assert v["tuning"][f"{v['lr']:g}"] == min(v["tuning"].values())
