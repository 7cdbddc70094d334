"""The explorable page: Bokeh figures and widgets over the precomputed runs, in one self-contained HTML file.

The page embeds every run of :func:`microdl.explore.precompute` as quantised 16-bit arrays (Bokeh ships them as
base64 binary), with Bokeh's scripts inline (``bokeh.resources.INLINE``), so it opens from a file with no
network. Its JavaScript (``_SCRIPT``) computes nothing about optimizers: on every change it reads the controls,
selects the arrays of the chosen setting, turns their 16-bit codes back into numbers, and writes the caption,
the titles and the URL from the same state.

NOTE [quantised runs]
A coordinate is stored as a 16-bit code over the function's window widened by half its size on each side
(resolution about 1e-4 of the window), code 65535 meaning "outside the stored box" (the line breaks there); the
gap f - f* as a 16-bit code of log10(gap) over [1e-12, 1e12] (resolution 4e-4 decades; gaps below 1e-12 show as
1e-12), code 65535 meaning "diverged" (the run's coordinates passed :data:`DIVERGED_ABOVE` or stopped being
finite). Which setting is "tuned" is decided in Python, on the float64 runs, before any quantisation.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from microdl.explore.functions import TestFunction
from microdl.explore.grid import Explorable

__all__ = ["build_page", "write_page", "require_bokeh", "PAGE_NAME", "MISSING_CODE", "GAP_DECADES"]

#: The file name of the page inside the output folder.
PAGE_NAME = "index.html"
#: The 16-bit code of a missing value (NOTE [quantised runs]).
MISSING_CODE = 65535
_TOP_CODE = MISSING_CODE - 1
#: log10 of the smallest and largest gap stored (NOTE [quantised runs]).
GAP_DECADES = (-12.0, 12.0)
#: How far the stored box reaches past the drawn window, as a fraction of the window's size on each side.
_BOX_MARGIN = 0.5
_EXTRA = "explore"
#: One colour per optimizer, in the page's order: Okabe and Ito's colour-blind-safe set, less its yellow (too
#: pale over the grey landscape); Category10 after the first seven.
_COLORS = ("#E69F00", "#0072B2", "#009E73", "#56B4E9", "#D55E00", "#CC79A7", "#000000")


def require_bokeh() -> Any:
    """Import Bokeh, or raise ImportError saying in one line which extra installs it."""
    try:
        import bokeh
    except ImportError:  # the one guarded import of the optional plotting library
        raise ImportError(f"the explorable needs Bokeh: pip install microdl[{_EXTRA}]") from None
    return bokeh


# -- quantisation (NOTE [quantised runs]) ---------------------------------------------------------------------
def _box(f: TestFunction) -> tuple[float, float, float, float]:
    x0, x1, y0, y1 = f.view
    dx, dy = _BOX_MARGIN * (x1 - x0), _BOX_MARGIN * (y1 - y0)
    return x0 - dx, x1 + dx, y0 - dy, y1 + dy


def _code(v: np.ndarray, low: float, high: float) -> np.ndarray:
    """16-bit codes of ``v`` over [low, high]; NaN and values outside become :data:`MISSING_CODE`."""
    with np.errstate(invalid="ignore"):
        q = np.rint((v - low) / (high - low) * _TOP_CODE)
        inside = np.isfinite(q) & (q >= 0) & (q <= _TOP_CODE)
    return np.where(inside, q, MISSING_CODE).astype(np.uint16)


def encode_runs(ex: Explorable) -> np.ndarray:
    """All runs as one flat uint16 array laid out [run][optimizer][setting][step][x, y, gap] (the page's
    indexing, ``_SCRIPT``'s ``record``)."""
    blocks = []
    run = 0
    for f in ex.functions:
        x0, x1, y0, y1 = _box(f)
        for _ in f.starts:
            for spec in ex.specs:
                points, gaps = ex.points[spec.name][:, run], ex.values[spec.name][:, run]
                with np.errstate(divide="ignore", invalid="ignore"):
                    log_gap = np.clip(np.log10(np.maximum(gaps, 0.0)), *GAP_DECADES)  # NaN stays NaN: diverged
                qx, qy = _code(points[..., 0], x0, x1), _code(points[..., 1], y0, y1)
                outside = (qx == MISSING_CODE) | (qy == MISSING_CODE)  # a point is stored whole or not at all
                qx[outside] = qy[outside] = MISSING_CODE
                blocks.append(np.stack([qx, qy, _code(log_gap, *GAP_DECADES)], axis=-1))
            run += 1
    return np.concatenate([b.reshape(-1) for b in blocks])


# -- what the page shows besides the runs ---------------------------------------------------------------------
def _landscape(f: TestFunction, n: int = 160) -> tuple[np.ndarray, list[list[float]], list[list[float]]]:
    """log10 of the gap f - f* on an n × n grid over the window (the background), and contour lines of it."""
    import contourpy

    x0, x1, y0, y1 = f.view
    X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    with np.errstate(all="ignore"):
        Z = np.log10(np.maximum(f.value(X, Y) - f.f_min, 1e-6))
    levels = np.linspace(np.percentile(Z, 1), np.percentile(Z, 99), 14)
    generator = contourpy.contour_generator(X, Y, Z, line_type="Separate")
    xs, ys = [], []
    for level in levels:
        for line in generator.lines(level):
            if len(line) > 2:
                xs.append(np.round(line[:, 0], 3).tolist())
                ys.append(np.round(line[:, 1], 3).tolist())
    return Z.astype(np.float32), xs, ys


def _number(x: float) -> str:
    """A grid value as the controls show it: 0.00316, 1e-10, 0.9, 100."""
    if x == 0:
        return "0"
    return f"{x:.0e}".replace("e-0", "e-") if abs(x) < 1e-3 else f"{x:.3g}"


def _step_positions(steps: int) -> list[int]:
    """The values of the step slider: about 15 positions, the full budget last."""
    stride = max(1, steps // 15)
    positions = list(range(stride, steps + 1, stride))
    return positions if positions[-1] == steps else [*positions, steps]


def _meta(ex: Explorable, palette: list[str]) -> dict[str, Any]:
    """Everything the script needs besides the arrays: the grid, the windows, the tuned settings."""
    positions = _step_positions(ex.steps)
    optimizers, offset = [], 0
    for i, spec in enumerate(ex.specs):
        optimizers.append({
            "name": spec.name, "title": spec.title, "color": palette[i], "offset": offset,
            "n_settings": spec.n_settings, "lrs": list(spec.lrs), "lr_labels": [_number(x) for x in spec.lrs],
            "controls": [{"name": c.name, "label": c.label, "values": list(c.values),
                          "labels": [_number(v) for v in c.values]} for c in spec.controls],
        })
        offset += spec.n_settings
    functions = []
    for i, f in enumerate(ex.functions):
        functions.append({
            "name": f.name, "title": f.title, "about": f.about, "view": list(f.view), "box": list(_box(f)),
            "starts": [list(s) for s in f.starts], "minima": [list(m) for m in f.minima],
            # tuned[start][optimizer][position]: the setting index (Explorable.tuned)
            "tuned": [[[ex.tuned(spec.name, i, s, p) for p in positions] for spec in ex.specs]
                      for s in range(len(f.starts))],
        })
    return {"functions": functions, "optimizers": optimizers, "steps": ex.steps, "positions": positions,
            "n_settings": ex.n_settings, "n_runs": ex.n_runs, "gap_decades": list(GAP_DECADES),
            "missing": MISSING_CODE, "top": _TOP_CODE, "mlp_epochs": ex.mlp.get("epochs", 0)}


def _settings_sentence(ex: Explorable) -> str:
    parts = []
    for spec in ex.specs:
        grid = [f"{len(spec.lrs)} rates"] + [f"{len(c.values)} {c.label}" for c in spec.controls]
        parts.append(f"{spec.title} {spec.n_settings} ({' × '.join(grid)})")
    n_starts = sum(len(f.starts) for f in ex.functions)
    text = (f"This page holds <b>{ex.n_settings} settings</b> ({'; '.join(parts)}), each run from {n_starts} starts "
            f"on {len(ex.functions)} functions: {ex.n_runs} runs of {ex.steps} steps")
    if ex.mlp_loss:
        text += f", and {ex.n_settings} MLP trainings of {ex.mlp['epochs']} epochs"
    return text + (f". Every number was computed by microdl's own optimizer classes (backend={ex.backend!r}) "
                   "before the page was written; your browser only looks them up.")


_FAIRNESS = """\
<h4 style="margin:0 0 4px 0">A fair comparison?</h4>
<p style="margin:0 0 6px 0">Each optimizer gets the same budget: the same number of steps, one exact gradient per
step. On these noiseless 2-D functions SGD is GD with momentum: the gradient is exact, so the S is only a name
here. Rates are a grid of half-decades, the same grid for every function (each optimizer's grid spans the rates
that suit its rule: AdaDelta's lr scales a step already in the parameters' units, so its grid reaches 1000); a rate
that works on one function can diverge on another, so judge an optimizer by its best setting, not its
default.</p>
<p style="margin:0 0 6px 0"><b>Tuned</b> jumps to the setting in the grid with the lowest f − f* after the
chosen number of steps, from the chosen start (ties, such as several runs reaching 10⁻¹², go to the run whose
gap fell faster). Change the budget and the best setting can change: a short budget favours fast starters.</p>
<p style="margin:0">Tuned per function, every optimizer looks good somewhere; the MLP view shows the same
settings on a real training problem, where a rate tuned on a 2-D function may not carry over.</p>"""


def build_page(ex: Explorable, *, title: str | None = None) -> str:
    """The page's HTML for the runs in ``ex``: one self-contained document, Bokeh's scripts inline.

    Raises ImportError (naming the ``explore`` extra) when Bokeh is missing.
    """
    require_bokeh()
    if title is None:
        count = {6: "six", 7: "seven", 8: "eight"}.get(len(ex.specs), str(len(ex.specs)))
        title = f"microdl explore: {count} optimizers, side by side"
    from bokeh.document import Document
    from bokeh.embed import file_html
    from bokeh.layouts import column, gridplot, row
    from bokeh.models import (
        Button,
        ColumnDataSource,
        CustomJS,
        CustomJSTickFormatter,
        Div,
        Label,
        Legend,
        LegendItem,
        LinearColorMapper,
        RadioButtonGroup,
        Range1d,
        Select,
        Slider,
        TabPanel,
        Tabs,
    )
    from bokeh.palettes import Category10_10, Greys256
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    specs, functions = ex.specs, ex.functions
    palette = [*_COLORS, *Category10_10]
    meta = _meta(ex, palette)
    f0 = functions[0]
    positions = meta["positions"]
    tuned0 = meta["functions"][0]["tuned"][0]  # the page opens on every optimizer's tuned setting

    store = ColumnDataSource({"q": encode_runs(ex)}, name="runs")
    mlp = np.concatenate([ex.mlp_loss[s.name] for s in specs]).astype(np.float32).reshape(-1) if ex.mlp_loss \
        else np.zeros(0, np.float32)
    mlp_store = ColumnDataSource({"loss": mlp}, name="mlp_runs")
    landscapes = [_landscape(f) for f in functions]
    images = ColumnDataSource({"image": [z for z, _, _ in landscapes]}, name="images")
    contours = [{"xs": xs, "ys": ys} for _, xs, ys in landscapes]
    x0, x1, y0, y1 = f0.view
    background = ColumnDataSource({"image": [landscapes[0][0]], "x": [x0], "y": [y0], "dw": [x1 - x0],
                                   "dh": [y1 - y0]})
    contour_lines = ColumnDataSource(contours[0])
    minima = ColumnDataSource({"x": [m[0] for m in f0.minima], "y": [m[1] for m in f0.minima]})
    starts = ColumnDataSource({"x": [s[0] for s in f0.starts], "y": [s[1] for s in f0.starts]})
    chosen = ColumnDataSource({"x": [f0.starts[0][0]], "y": [f0.starts[0][1]]})
    x_range, y_range = Range1d(x0, x1, bounds=None), Range1d(y0, y1)
    mapper = LinearColorMapper(palette=list(Greys256[70:240]), low=float(landscapes[0][0].min()),
                               high=float(landscapes[0][0].max()))

    # -- the small multiples: one panel per optimizer, the path over the function's landscape --------------------
    paths, ends, panels, notes = [], [], [], []
    for i, spec in enumerate(specs):
        color = palette[i]
        p = figure(width=300, height=250, x_range=x_range, y_range=y_range, title=spec.title,
                   tools="", toolbar_location=None, name=f"panel_{spec.name}")
        p.image(image="image", x="x", y="y", dw="dw", dh="dh", source=background, color_mapper=mapper)
        p.multi_line(xs="xs", ys="ys", source=contour_lines, line_color="white", line_alpha=0.55, line_width=0.8)
        p.scatter("x", "y", source=starts, size=7, marker="circle", fill_color="white", line_color="black")
        p.scatter("x", "y", source=minima, size=14, marker="star", fill_color="gold", line_color="black")
        path = ColumnDataSource({"x": [], "y": []}, name=f"path_{spec.name}")
        end = ColumnDataSource({"x": [], "y": []})
        p.line("x", "y", source=path, line_color=color, line_width=2.2)
        p.scatter("x", "y", source=path, size=3, fill_color=color, line_color=color)
        p.scatter("x", "y", source=chosen, size=10, marker="circle", fill_color=color, line_color="black")
        p.scatter("x", "y", source=end, size=11, marker="square", fill_color=color, line_color="black")
        note = Label(x=6, y=6, x_units="screen", y_units="screen", text="", text_color="#b00000",
                     text_font_size="12px", text_font_style="bold", background_fill_color="white",
                     background_fill_alpha=0.85, name=f"note_{spec.name}")
        p.add_layout(note)
        notes.append(note)
        p.title.text_color = color
        p.title.text_font_size = "12px"
        p.axis.major_label_text_font_size = "9px"
        paths.append(path)
        ends.append(end)
        panels.append(p)
    grid = gridplot(panels, ncols=3, toolbar_location=None)

    # -- the loss below: f - f* against steps, every optimizer ---------------------------------------------------
    loss_plot = figure(width=640, height=280, y_axis_type="log", x_range=(0, ex.steps), y_range=Range1d(1e-12, 1e3),
                       title="f(x) − f*  against steps (log scale; a line that stops has diverged)",
                       tools="pan,wheel_zoom,reset,save", toolbar_location="above", name="loss_plot")
    loss_plot.title.text_font_size = "12px"
    loss_plot.xaxis.axis_label, loss_plot.yaxis.axis_label = "step", "f − f*"
    curves, items = [], []
    for i, spec in enumerate(specs):
        curve = ColumnDataSource({"x": [], "y": []}, name=f"curve_{spec.name}")
        r = loss_plot.line("x", "y", source=curve, line_color=palette[i], line_width=2)
        curves.append(curve)
        items.append(LegendItem(label=spec.title, renderers=[r]))
    loss_plot.add_layout(Legend(items=items, click_policy="hide", label_text_font_size="11px"), "right")

    # -- the MLP view: training loss against epochs under the same settings --------------------------------------
    mlp_curves, mlp_items = [], []
    mlp_plot = figure(width=900, height=420, y_axis_type="log", name="mlp_plot",
                      title="Training loss of a small MLP on two moons, each optimizer at its setting from "
                            "the controls",
                      tools="pan,wheel_zoom,reset,save", toolbar_location="above")
    mlp_plot.title.text_font_size = "12px"
    mlp_plot.xaxis.axis_label, mlp_plot.yaxis.axis_label = "epoch", "training loss (cross-entropy)"
    for i, spec in enumerate(specs):
        curve = ColumnDataSource({"x": [], "y": []}, name=f"mlp_{spec.name}")
        r = mlp_plot.line("x", "y", source=curve, line_color=palette[i], line_width=2)
        mlp_plot.scatter("x", "y", source=curve, size=4, color=palette[i])
        mlp_curves.append(curve)
        mlp_items.append(LegendItem(label=spec.title, renderers=[r]))
    mlp_plot.add_layout(Legend(items=mlp_items, click_policy="hide", label_text_font_size="11px"), "right")

    # -- controls -----------------------------------------------------------------------------------------------
    function_select = Select(title="Function", value=f0.name, options=[(f.name, f.title) for f in functions],
                             width=330, name="function", css_classes=["mdl-function"])
    start_select = Select(title="Start (or click near a white dot)", value="0", width=330, name="start",
                          css_classes=["mdl-start"],
                          options=[(str(k), f"start {k + 1}: ({s[0]:g}, {s[1]:g})") for k, s in enumerate(f0.starts)])
    tune_all = Button(label="tune all for this function, start and budget", width=330, name="tune_all",
                      tags=[-1], css_classes=["mdl-tune-all"])
    steps_slider = Slider(title="Steps", start=positions[0], end=positions[-1], value=positions[-1],
                          step=positions[1] - positions[0] if len(positions) > 1 else 1, width=330, name="steps",
                          css_classes=["mdl-steps"])
    lr_sliders, radios, buttons, blocks = [], [], [], []
    for i, spec in enumerate(specs):
        k = tuned0[i][-1]
        n_combos = spec.n_settings // len(spec.lrs)
        lr_index, rest = divmod(k, n_combos)
        formatter = CustomJSTickFormatter(args={"labels": meta["optimizers"][i]["lr_labels"]},
                                          code="return labels[Math.round(tick)]")
        lr = Slider(title="lr (log scale)", start=0, end=len(spec.lrs) - 1, value=lr_index, step=1,
                    format=formatter, width=180, name=f"lr_{spec.name}",
                    css_classes=[f"mdl-lr-{spec.name}"], bar_color=palette[i])
        mine = []
        for control in reversed(spec.controls):  # the last control varies fastest in the setting index
            rest, index = divmod(rest, len(control.values))
            mine.insert(0, RadioButtonGroup(labels=[_number(v) for v in control.values], active=index,
                                            name=f"{spec.name}_{control.name}", width=180, height=28,
                                            css_classes=[f"mdl-{spec.name}-{control.name}"]))
        button = Button(label="tuned", width=70, height=28, name=f"tuned_{spec.name}", tags=[i],
                        css_classes=[f"mdl-tuned-{spec.name}"])
        header = Div(text=f'<b style="color:{palette[i]};font-size:14px">{html.escape(spec.title)}</b>', width=90)
        rows = [row(header, lr, button)]
        for control, radio in zip(spec.controls, mine):
            rows.append(row(Div(text=html.escape(control.label), width=90, styles={"text-align": "right",
                                                                                  "padding-right": "6px"}),
                            radio))
        blocks.append(column(*rows, styles={"border-top": "1px solid #ddd", "padding-top": "4px"}))
        lr_sliders.append(lr)
        radios.append(mine)
        buttons.append(button)

    caption = Div(text="", width=920, name="caption", styles={"font-size": "13px", "line-height": "1.45"})
    about = Div(text="", width=920, name="about", styles={"font-size": "12px", "color": "#555"})
    fairness = Div(text=_FAIRNESS, width=270, name="fairness",
                   styles={"font-size": "12px", "background": "#f6f6f2", "padding": "8px", "border-radius": "4px"})
    header = Div(text=f"<h2 style='margin:4px 0'>{html.escape(title)}</h2>"
                      "<p style='margin:2px 0 6px 0;max-width:1250px;font-size:13px'>"
                      "Pick a function and a start, move each optimizer's rate and its defining hyperparameter, "
                      "and watch the paths (above) and their losses (below); the second tab trains a small "
                      f"network with the same settings. {_settings_sentence(ex)}</p>",
                 width=1280, name="header")
    tabs = Tabs(tabs=[
        TabPanel(title="Test function", child=column(grid, row(loss_plot, fairness))),
        TabPanel(title="MLP on two moons", child=column(mlp_plot, Div(
            text=f"An MLP {'-'.join(map(str, ex.mlp.get('layers', [])))} (ReLU) on {ex.mlp.get('dataset', '')}, "
                 f"mini-batches of {ex.mlp.get('batch_size', '')}, seed {ex.mlp.get('seed', '')}. Each curve is one "
                 "microdl.fit run, precomputed for every setting of the grid: the same settings as on the test "
                 "functions (the step slider does not apply). A curve that stops has diverged.",
            width=900, styles={"font-size": "12px", "color": "#555"}))),
    ], name="tabs")

    update = CustomJS(args=dict(
        meta=meta, store=store, mlp_store=mlp_store, images=images, contours=contours, background=background,
        contour_lines=contour_lines, minima=minima, starts=starts, chosen=chosen, x_range=x_range,
        y_range=y_range, mapper=mapper, paths=paths, ends=ends, curves=curves, mlp_curves=mlp_curves,
        panels=panels, notes=notes, loss_plot=loss_plot, function_select=function_select, start_select=start_select,
        steps_slider=steps_slider, lr_sliders=lr_sliders, radios=radios, buttons=buttons, caption=caption,
        about=about, tabs=tabs), code=_SCRIPT)
    for widget in [function_select, start_select]:
        widget.js_on_change("value", update)
    steps_slider.js_on_change("value", update)
    tabs.js_on_change("active", update)
    for lr, mine, button in zip(lr_sliders, radios, buttons):
        lr.js_on_change("value", update)
        for radio in mine:
            radio.js_on_change("active", update)
        button.js_on_event("button_click", update)
    tune_all.js_on_event("button_click", update)
    for p in panels:
        p.js_on_event("tap", update)

    controls = column(Div(text="<b>Problem</b>"), function_select, start_select, steps_slider, tune_all, *blocks,
                      width=380)
    layout = column(header, row(controls, column(caption, about, tabs)))
    doc = Document()
    doc.add_root(layout)
    doc.js_on_event("document_ready", update)
    doc.title = title
    return file_html(doc, INLINE, title)


def write_page(out: str | Path, explorable: Explorable) -> Path:
    """Write the page of ``explorable`` as ``out/index.html`` (the folder is created; the file is written to a
    temporary name and renamed into place) and return its path."""
    from microdl._files import atomic_file, check_writable_folder

    out = check_writable_folder(out)
    text = build_page(explorable)
    out.mkdir(parents=True, exist_ok=True)
    path = out / PAGE_NAME
    with atomic_file(path, "w") as fh:
        fh.write(text)
    return path


# The page's one script. It never computes an optimizer step: it decodes the chosen setting's stored arrays
# (NOTE [quantised runs]) and writes everything the reader sees, and the URL, from the controls' state.
_SCRIPT = """
const M = meta;
const S = window.__microdl_explore || (window.__microdl_explore = {busy: false, fn: 0, loaded: false});
if (S.busy) return;
S.busy = true;
try {
  // a widget's change passes the widget; a model's event the event; the document's event comes as cb_data
  const event = (cb_obj && cb_obj.event_name) || (cb_data && cb_data.event_name);
  if (event === 'document_ready') { restore_from_url(); S.loaded = true; }
  else if (event === 'button_click') {
    const o = cb_obj.origin.tags[0];
    if (o < 0) M.optimizers.forEach((_, k) => tune(k)); else tune(o);
  }
  else if (event === 'tap') { pick_start(cb_obj.x, cb_obj.y); }
  else if (cb_obj === function_select) { switch_function(); }
  redraw();
} finally { S.busy = false; }

function fn_index() { return Math.max(0, M.functions.findIndex(f => f.name === function_select.value)); }
function start_index() {
  const k = parseInt(start_select.value);
  return Number.isInteger(k) && k >= 0 && k < M.functions[fn_index()].starts.length ? k : 0;
}
function position_index() {
  let best = 0;
  const v = steps_slider.value;
  M.positions.forEach((p, i) => { if (Math.abs(p - v) < Math.abs(M.positions[best] - v)) best = i; });
  return best;
}
function steps() { return M.positions[position_index()]; }
function setting(o) {                  // rate-major, the last control fastest (OptimizerSpec.settings)
  let k = Math.round(lr_sliders[o].value);
  M.optimizers[o].controls.forEach((c, j) => { k = k * c.values.length + radios[o][j].active; });
  return k;
}
function set_setting(o, k) {
  const opt = M.optimizers[o];
  for (let j = opt.controls.length - 1; j >= 0; j--) {
    const n = opt.controls[j].values.length;
    radios[o][j].active = k % n; k = Math.floor(k / n);
  }
  lr_sliders[o].value = k;
}
function run_index() {
  let r = 0;
  for (let i = 0; i < fn_index(); i++) r += M.functions[i].starts.length;
  return r + start_index();
}
function record(o) {                   // encode_runs: [run][optimizer][setting][step][x, y, gap]
  const n_total = M.optimizers.reduce((a, b) => a + b.n_settings, 0);
  return ((run_index() * n_total) + M.optimizers[o].offset + setting(o)) * (M.steps + 1) * 3;
}
function decode(q, low, high) { return q === M.missing ? NaN : low + q / M.top * (high - low); }
function path(o) {                     // the chosen setting's points and gaps, up to the chosen step
  const q = store.data.q, base = record(o), box = M.functions[fn_index()].box, [g0, g1] = M.gap_decades;
  const x = [], y = [], gap = [];
  let diverged = -1;
  for (let t = 0; t <= steps(); t++) {
    const i = base + 3 * t;
    if (q[i + 2] === M.missing) { diverged = t; break; }
    x.push(decode(q[i], box[0], box[1])); y.push(decode(q[i + 1], box[2], box[3]));
    gap.push(Math.pow(10, decode(q[i + 2], g0, g1)));
  }
  return {x, y, gap, diverged};
}
function gap_text(v) {                 // "f − f* = 0.36", "f − f* = 2.2e−3", "f − f* ≤ 1e−12"
  if (!(v > 1e-12)) return 'f − f* ≤ 1e−12';
  return 'f − f* = ' + ((v < 1e-2 || v >= 1e4) ? v.toExponential(1).replace('e-', 'e−') : v.toPrecision(2));
}
function describe(o) {                 // "lr 0.01, momentum 0.9"
  const opt = M.optimizers[o];
  const parts = ['lr ' + opt.lr_labels[Math.round(lr_sliders[o].value)]];
  opt.controls.forEach((c, j) => parts.push(c.label + ' ' + c.labels[radios[o][j].active]));
  return parts.join(', ');
}
function is_tuned(o) { return M.functions[fn_index()].tuned[start_index()][o][position_index()] === setting(o); }
function tune(o) { set_setting(o, M.functions[fn_index()].tuned[start_index()][o][position_index()]); }
function switch_function() {
  const i = fn_index(), f = M.functions[i];
  start_select.options = f.starts.map((s, k) => [String(k), 'start ' + (k + 1) + ': (' + s[0] + ', ' + s[1] + ')']);
  if (start_index() >= f.starts.length || start_select.value === '') start_select.value = '0';
  const [x0, x1, y0, y1] = f.view;
  x_range.setv({start: x0, end: x1}); y_range.setv({start: y0, end: y1});
  const z = images.data.image[i];
  let lo = Infinity, hi = -Infinity;
  for (const v of z) { if (v < lo) lo = v; if (v > hi) hi = v; }
  mapper.setv({low: lo, high: hi});
  background.data = {image: [z], x: [x0], y: [y0], dw: [x1 - x0], dh: [y1 - y0]};
  contour_lines.data = contours[i];
  minima.data = {x: f.minima.map(m => m[0]), y: f.minima.map(m => m[1])};
  starts.data = {x: f.starts.map(s => s[0]), y: f.starts.map(s => s[1])};
}
function pick_start(x, y) {
  const f = M.functions[fn_index()], [x0, x1, y0, y1] = f.view;
  let best = 0, d_best = Infinity;
  f.starts.forEach((s, k) => {
    const d = Math.hypot((s[0] - x) / (x1 - x0), (s[1] - y) / (y1 - y0));
    if (d < d_best) { d_best = d; best = k; }
  });
  if (d_best < 0.08) start_select.value = String(best);
}
function state_hash() {
  const parts = ['f=' + function_select.value, 'start=' + (start_index() + 1), 'steps=' + steps(),
                 'view=' + (tabs.active === 1 ? 'mlp' : 'paths')];
  M.optimizers.forEach((opt, o) => {
    const items = ['lr:' + opt.lrs[Math.round(lr_sliders[o].value)]];
    opt.controls.forEach((c, j) => items.push(c.name + ':' + c.values[radios[o][j].active]));
    parts.push(opt.name + '=' + items.join(','));
  });
  return '#' + parts.join('&');
}
function nearest(values, v, log) {
  let best = 0;
  const d = (a) => log ? Math.abs(Math.log(a) - Math.log(v)) : Math.abs(a - v);
  values.forEach((a, i) => { if (d(a) < d(values[best])) best = i; });
  return best;
}
function restore_from_url() {
  const hash = window.location.hash.replace(/^#/, '');
  if (!hash) return;
  const state = {};
  for (const part of hash.split('&')) {
    const at = part.indexOf('=');
    if (at > 0) state[decodeURIComponent(part.slice(0, at))] = decodeURIComponent(part.slice(at + 1));
  }
  if (M.functions.some(f => f.name === state.f)) { function_select.value = state.f; }
  switch_function();
  const f = M.functions[fn_index()], k = parseInt(state.start) - 1;
  if (k >= 0 && k < f.starts.length) start_select.value = String(k);
  const n = parseInt(state.steps);
  if (n > 0) steps_slider.value = M.positions[nearest(M.positions, n, false)];
  if (state.view === 'mlp') tabs.active = 1; else if (state.view === 'paths') tabs.active = 0;
  M.optimizers.forEach((opt, o) => {
    if (!state[opt.name]) return;
    const items = {};
    for (const item of state[opt.name].split(',')) {
      const [key, value] = item.split(':');
      items[key] = parseFloat(value);
    }
    if (items.lr > 0) lr_sliders[o].value = nearest(opt.lrs, items.lr, true);
    opt.controls.forEach((c, j) => {
      if (Number.isFinite(items[c.name])) radios[o][j].active = nearest(c.values, items[c.name], false);
    });
  });
}
function redraw() {
  const i = fn_index(), f = M.functions[i], s = start_index(), T = steps();
  if (S.fn !== i) { switch_function(); S.fn = i; }
  const s0 = f.starts[s];
  chosen.data = {x: [s0[0]], y: [s0[1]]};
  const lines = [];
  let low = Infinity, high = 0;          // the loss plot's window: from the lowest gap to 100 x the start's
  M.optimizers.forEach((opt, o) => {
    const p = path(o);
    paths[o].data = {x: p.x, y: p.y};
    const last = p.x.length - 1;
    ends[o].data = p.diverged >= 0 ? {x: [], y: []} : {x: [p.x[last]], y: [p.y[last]]};
    curves[o].data = {x: p.gap.map((_, t) => t), y: p.gap.map(v => Math.max(v, 1e-12))};
    for (const v of p.gap) { low = Math.min(low, Math.max(v, 1e-12)); }
    high = Math.max(high, p.gap[0]);
    const verdict = p.diverged >= 0 ? 'diverged at step ' + p.diverged : gap_text(p.gap[p.gap.length - 1]);
    const [v0, v1, w0, w1] = f.view, fx = p.x[last], fy = p.y[last];
    const outside = !(fx >= v0 && fx <= v1 && fy >= w0 && fy <= w1);  // NaN: beyond the stored box
    notes[o].text = p.diverged >= 0 ? 'diverged at step ' + p.diverged : outside ? 'ends outside the window' : '';
    panels[o].title.text = opt.title + ' · ' + describe(o) + (is_tuned(o) ? ' · tuned' : '');
    buttons[o].button_type = is_tuned(o) ? 'success' : 'default';
    let mlp_text = '–';
    if (M.mlp_epochs > 0) {
      const E = M.mlp_epochs + 1, base = (opt.offset + setting(o)) * E, loss = mlp_store.data.loss;
      const xs = [], ys = [];
      for (let e = 0; e < E && Number.isFinite(loss[base + e]); e++) { xs.push(e); ys.push(loss[base + e]); }
      mlp_curves[o].data = {x: xs, y: ys};
      mlp_text = xs.length < E ? 'diverged at epoch ' + xs.length : loss[base + E - 1].toPrecision(3);
    }
    const td = '<td style="padding:0 14px 1px 0">';
    lines.push('<tr>' + td + '<b style="color:' + opt.color + '">' + opt.title + '</b></td>' + td + describe(o) +
               (is_tuned(o) ? ' <i>(tuned)</i>' : '') + '</td>' + td + verdict + '</td>' + td + mlp_text +
               '</td></tr>');
  });
  loss_plot.x_range.setv({start: 0, end: T});
  if (high > 0) loss_plot.y_range.setv({start: low / 3, end: high * 100});  // a diverging line leaves the top
  const th = '<th style="text-align:left;padding:0 14px 0 0;font-weight:normal;color:#555">';
  caption.text = '<b>' + f.title + '</b> from start ' + (s + 1) + ' (' + s0[0] + ', ' + s0[1] + '), ' + T +
                 ' steps' + (M.mlp_epochs > 0 ? '; the MLP trains for ' + M.mlp_epochs + ' epochs' : '') + '.' +
                 '<table style="border-collapse:collapse;margin-top:3px" class="mdl-caption">' +
                 '<tr>' + th + 'optimizer</th>' + th + 'setting</th>' + th + 'after ' + T + ' steps</th>' +
                 th + (M.mlp_epochs > 0 ? 'MLP training loss after ' + M.mlp_epochs + ' epochs' : '') + '</th></tr>' +
                 lines.join('') + '</table>';
  about.text = f.title + ': ' + f.about +
               '. Stars: global minima; white dots: the starts; squares: where each run ends.';
  if (S.loaded) {
    const hash = state_hash();
    if (window.location.hash !== hash) {
      try { window.history.replaceState(null, '', hash); } catch (err) { window.location.hash = hash; }
    }
  }
}
"""
