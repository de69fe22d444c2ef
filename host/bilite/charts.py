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
