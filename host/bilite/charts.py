"""Small self-contained SVG pictures for model cards (no plotting library on the host)."""

from __future__ import annotations

from html import escape


def confusion_svg(labels: list[str], matrix: list[list[int]], cell: int = 28) -> str:
    """A confusion matrix heat map: rows are true labels, columns predicted; each row is shaded
    by its own share so small classes stay readable."""
    n = len(labels)
    margin = 10 + 7 * max((len(l) for l in labels), default=1)
    size = margin + n * cell + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size + 20}" '
             f'font-family="sans-serif" font-size="11">',
             f'<text x="{margin}" y="{size + 14}">predicted →   (rows: true label)</text>']
    for i, label in enumerate(labels):
        y = margin + i * cell
        parts.append(f'<text x="{margin - 4}" y="{y + cell * 0.65:.1f}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<text transform="translate({margin + i * cell + cell * 0.65:.1f},{margin - 4}) rotate(-60)">'
                     f'{escape(label)}</text>')
        total = sum(matrix[i]) or 1
        for j, count in enumerate(matrix[i]):
            share = count / total
            shade = int(255 - 200 * share)
            colour = f"rgb({shade},{shade},255)" if i == j else f"rgb(255,{shade},{shade})"
            parts.append(f'<rect x="{margin + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                         f'fill="{colour}" stroke="#ccc"/>')
            if count:
                parts.append(f'<text x="{margin + j * cell + cell / 2}" y="{y + cell * 0.65:.1f}" '
                             f'text-anchor="middle" font-size="9">{count}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def top_confusions(labels: list[str], matrix: list[list[int]], k: int = 15) -> list[dict]:
    pairs = [(matrix[i][j], labels[i], labels[j]) for i in range(len(labels)) for j in range(len(labels))
             if i != j and matrix[i][j]]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [{"true": t, "predicted": p, "count": c} for c, t, p in pairs[:k]]


def size_accuracy_svg(rows: list[dict], width: int = 520, height: int = 300) -> str:
    """Size (x, KiB) versus accuracy (y) for each available quantization mode."""
    points = [r for r in rows if r.get("available")]
    if not points:
        return ""
    pad = 50
    xs = [r["size_bytes"] / 1024 for r in points]
    ys = [r["accuracy"] for r in points]
    x0, x1 = 0.0, max(xs) * 1.1
    y0, y1 = min(ys) - 0.01, max(ys) + 0.005
    sx = lambda v: pad + (v - x0) / (x1 - x0 or 1) * (width - 2 * pad)  # noqa: E731
    sy = lambda v: height - pad - (v - y0) / (y1 - y0 or 1) * (height - 2 * pad)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#333"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#333"/>',
           f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">model.tflite size (KiB)</text>',
           f'<text transform="translate(14,{height / 2}) rotate(-90)" text-anchor="middle">test accuracy</text>',
           f'<text x="{pad - 4}" y="{sy(y1) + 4:.1f}" text-anchor="end" font-size="10">{y1:.3f}</text>',
           f'<text x="{pad - 4}" y="{sy(y0) + 4:.1f}" text-anchor="end" font-size="10">{y0:.3f}</text>',
           f'<text x="{sx(x1):.1f}" y="{height - pad + 14}" text-anchor="end" font-size="10">{x1:.0f}</text>']
    for r, x, y in zip(points, xs, ys):
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="#3465a4"/>')
        out.append(f'<text x="{sx(x) + 8:.1f}" y="{sy(y) - 6:.1f}">{escape(r["mode"])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
