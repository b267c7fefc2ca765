"""The HTML page of an evaluation: summary numbers and a per-image table sortable by column."""

from __future__ import annotations

import html
from typing import Any

STYLE = (
    "body{font-family:sans-serif;margin:1.5em}td,th{padding:4px 8px;text-align:right}"
    "th{cursor:pointer;background:#eee;user-select:none}th[data-dir=asc]::after{content:' \\25B2'}"
    "th[data-dir=desc]::after{content:' \\25BC'}tr:nth-child(even){background:#f7f7f7}"
    "img{width:160px;image-rendering:pixelated}.note{color:#a60}"
)

# Click a header to sort by it; click again to reverse. Numbers sort numerically (data-v).
SORT_JS = """<script>
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    if (th.dataset.nosort !== undefined) return;
    th.addEventListener('click', function () {
      var dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
      Array.prototype.forEach.call(heads, function (h) { delete h.dataset.dir; });
      th.dataset.dir = dir;
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
        var c = isNaN(x) || isNaN(y) ? String(x).localeCompare(y) : x - y;
        return dir === 'asc' ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
</script>
"""

COLUMNS = (("l1", "L1", "{:.4f}"), ("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"))


def _head(title: str, summary: dict[str, Any]) -> str:
    return (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style><h1>{html.escape(title)}</h1><p>{summary['count']} images, "
        f"checkpoint step {summary['checkpoint_step']}, direction "
        f"{html.escape(str(summary['direction']))}</p>"
    )


def realism_html(r: dict[str, Any] | None) -> str:
    """FID/KID numbers with the feature network and counts they were computed with."""
    if not r:
        return ""
    parts = []
    if "fid" in r:
        parts.append(f"FID {r['fid']:.3f}")
    if "kid" in r:
        parts.append(f"KID {r['kid']:.5f} &plusmn; {r['kid_std']:.5f}")
    net = r["feature_net"]
    text = (
        f"<p><b>{' &middot; '.join(parts)}</b> ({r['count_fake']} translated vs "
        f"{r['count_real']} real images; features: {html.escape(str(net['name']))})</p>"
    )
    if "note" in r:
        text += f"<p class='note'>{html.escape(r['note'])}</p>"
    return text


def _columns(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """COLUMNS, then the method's own figures (Method.eval_metrics) in the order they came."""
    known = {k for k, _, _ in COLUMNS}
    return [*COLUMNS, *((k, k, "{:.4g}") for k in summary["mean"] if k not in known)]


def render_paired(summary: dict[str, Any], with_images: bool = True) -> str:
    """Mean metrics, realism if computed, and one row per image, worst PSNR first."""
    columns = _columns(summary)
    base = summary.get("baseline")  # a model-free reference scored alike (Method.eval_baseline)

    def means(m: dict[str, float]) -> str:
        return " &middot; ".join(f"{label} {fmt.format(m[k])}" for k, label, fmt in columns)

    kinds = ["input", *([base["name"]] if base else []), "output", "target"]
    rows = sorted(summary["images"], key=lambda r: r["psnr"])  # worst first: what people look for
    head_cells = "<th>name</th>" + "".join(
        f"<th{' data-dir=asc' if k == 'psnr' else ''}>{label}</th>" for k, label, _ in columns
    )
    if base:
        head_cells += "".join(
            f"<th>{html.escape(base['name'])} {label}</th>" for _, label, _ in columns
        )
    if with_images:
        head_cells += "".join(f"<th data-nosort>{html.escape(k)}</th>" for k in kinds)
    body = []
    for r in rows:
        name = html.escape(r["name"])
        scored = [r] + ([r["baseline"]] if base else [])
        cells = f"<td data-v='{name}' style='text-align:left'>{name}</td>" + "".join(
            f"<td data-v='{s[k]!r}'>{fmt.format(s[k])}</td>"
            for s in scored
            for k, _, fmt in columns
        )
        if with_images:
            cells += "".join(
                f"<td><img src='images/{name}_{html.escape(k)}.png' alt='{html.escape(k)}' "
                "loading='lazy'></td>"
                for k in kinds
            )
        body.append(f"<tr>{cells}</tr>")
    return (
        _head("pixmorph evaluation", summary)
        + f"<p>mean {means(summary['mean'])}</p>"
        + (f"<p>{html.escape(base['name'])}: {means(base['mean'])}</p>" if base else "")
        + realism_html(summary.get("realism"))
        + "<p>Click a column header to sort; rows start with the worst PSNR.</p>"
        + f"<table class='sortable'><thead><tr>{head_cells}</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>\n"
        + SORT_JS
    )


def render_unpaired(summary: dict[str, Any], with_images: bool = True) -> str:
    """Realism numbers and the translated images (no per-image scores: there is no target)."""
    rows = []
    if with_images:
        for r in summary["images"]:
            name = html.escape(r["name"])
            rows.append(
                f"<tr><td style='text-align:left'>{name}</td>"
                + "".join(
                    f"<td><img src='images/{name}_{k}.png' alt='{k}' loading='lazy'></td>"
                    for k in ("input", "output")
                )
                + "</tr>"
            )
    table = (
        "<table><tr><th>name</th><th>input</th><th>output</th></tr>" + "".join(rows) + "</table>"
        if rows
        else ""
    )
    return (
        _head("pixmorph evaluation (unpaired)", summary)
        + f"<p>inputs {html.escape(summary['inputs'])} &rarr; compared with real images in "
        f"{html.escape(summary['real'])}</p>" + realism_html(summary["realism"]) + table + "\n"
    )
