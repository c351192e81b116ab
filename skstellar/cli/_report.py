"""A self-contained HTML report: figures embedded as PNG data, tables as HTML.

The page opens from disk in any browser with no server and no other file, so it can be
mailed or archived with the run it describes.
"""

import base64
import html
import io
from pathlib import Path

__all__ = ["Report"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; } pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
"""


def _png_bytes(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


class Report:
    """Collects headings, text, figures and tables, and writes them as one HTML page.

    Figures are matplotlib Figures: each is saved as a PNG (when ``figure_dir`` is given)
    and embedded in the page as base64 data.
    """

    def __init__(self, title, figure_dir=None):
        self.title = title
        self.figure_dir = None if figure_dir is None else Path(figure_dir)
        self.parts = []
        self.figures = []

    def heading(self, text):
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text):
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def preformatted(self, text):
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def figure(self, figure, name, caption):
        """Embed a matplotlib Figure (and write it as ``<figure_dir>/<name>.png``); close it."""
        import matplotlib.pyplot as plt

        data = _png_bytes(figure)
        plt.close(figure)
        if self.figure_dir is not None:
            path = self.figure_dir / f"{name}.png"
            path.write_bytes(data)
            self.figures.append(path)
        encoded = base64.b64encode(data).decode("ascii")
        self.parts.append(
            f'<figure id="fig-{html.escape(name)}"><img alt="{html.escape(caption)}" '
            f'src="data:image/png;base64,{encoded}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        )

    def table(self, rows, columns, caption=None):
        """A table from a list of row sequences and the column headers."""
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def html(self):
        body = "\n".join(self.parts)
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n"
        )

    def write(self, path):
        Path(path).write_text(self.html(), encoding="utf-8")
        return Path(path)
