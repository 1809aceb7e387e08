"""Screenshots of the documentation site as a reader sees it, and a check that nothing is clipped.

Builds the site (``mkdocs build --strict``), serves it on localhost and opens the home, paper and API
pages in headless Chromium (Debian's ``chromium`` package: ``apt-get install chromium``) at a given
width, 1280 px by default, and writes their full-page PNGs (a long page in parts, one from each
heading that the part before shows last). On every page of
the site it prints each table, code block and signature wider than its box (its ``scrollWidth``
above its ``clientWidth``: a column or line behind a scrollbar). Exits 1 when anything is clipped.
Not run in CI::

    python docs/screenshots.py --out /tmp/screenshots
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOTS = {"home": "index.html", "paper": "paper/index.html", "api": "api/index.html"}
MAX_HEIGHT = 16000  # px: about Chromium's largest screenshot
# What can hide content behind a scrollbar on a Material page: tables (and the wrappers Material
# puts around them), code blocks and mkdocstrings' signatures.
BOXES = "table, .md-typeset__scrollwrap, .md-typeset__table, pre > code, .doc-signature"
CHECK = f"""<script>
// ?from=ID: the page from heading ID on (what comes before it in the article hidden), for a long page
// taken in parts
let node = document.getElementById(new URLSearchParams(location.search).get("from"));
for (; node && node.tagName !== "ARTICLE"; node = node.parentElement) {{
  for (let before = node.previousElementSibling; before; before = before.previousElementSibling) {{
    before.style.display = "none";
  }}
}}
window.addEventListener("load", () => setTimeout(() => {{
  const clipped = [];
  for (const box of document.querySelectorAll({json.dumps(BOXES)})) {{
    if (box.scrollWidth > box.clientWidth + 1) {{
      const heading = box.closest("article") ? [...document.querySelectorAll("h1, h2, h3, h4")]
        .filter(h => h.compareDocumentPosition(box) & Node.DOCUMENT_POSITION_FOLLOWING).pop() : null;
      clipped.push({{box: box.tagName.toLowerCase() + "." + box.className, scroll: box.scrollWidth,
        client: box.clientWidth, under: heading ? heading.id : "", text: box.textContent.slice(0, 80)}});
    }}
  }}
  const out = document.createElement("pre");
  out.id = "clip-report";
  out.hidden = true;  // read from the DOM, not shown in the screenshots
  const headings = [...document.querySelectorAll("article h2[id], article h3[id]")]
    .map(h => [h.id, h.getBoundingClientRect().top + window.scrollY]);
  const height = document.documentElement.scrollHeight;
  out.textContent = JSON.stringify({{height, headings, clipped}});
  document.body.appendChild(out);
}}, 500));
</script>"""


def _chromium(*args: str) -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            command = [name, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
            return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    raise SystemExit("no Chromium found: apt-get install chromium")


def _parts(height: int, headings: list[tuple[str, float]]) -> list[str]:
    """Where the screenshots of a page start: its top, then, while the page goes on below the last
    screenshot, the last heading that screenshot shows (a page longer than Chromium's largest
    screenshot is taken in parts that overlap; they stop at a part with no heading below its top)."""
    parts, top = [""], 0.0
    while top + MAX_HEIGHT < height:
        below = [(at, name) for name, at in headings if top + 100 < at < top + MAX_HEIGHT - 100]
        if not below:
            break
        top, name = max(below)
        parts.append(f"?from={name}")
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="folder for the PNGs")
    parser.add_argument("--width", type=int, default=1280, help="window width in px (default 1280)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
        build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)]
        subprocess.run(build, cwd=ROOT, env=env, check=True)
        pages = sorted(str(path.relative_to(site)) for path in site.rglob("index.html"))
        for page in pages:  # the check runs in the served copy only
            path = site / page
            path.write_text(path.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>"))
        handler = functools.partial(QuietHandler, directory=str(site))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        clipped_anywhere = False
        try:
            for page in pages:
                url = f"http://127.0.0.1:{server.server_port}/{page}"
                dom = _chromium(
                    f"--window-size={args.width},900", "--virtual-time-budget=5000", "--dump-dom", url
                )
                report = json.loads(re.search(r'<pre id="clip-report"[^>]*>(.*?)</pre>', dom, re.S).group(1))
                print(f"{page}: {report['height']} px high, {len(report['clipped'])} clipped")
                for name in [name for name, shot_page in SHOTS.items() if shot_page == page]:
                    for part, anchor in enumerate(_parts(report["height"], report["headings"])):
                        shot = args.out / f"{name}_{args.width}px{f'_{part + 1}' if part else ''}.png"
                        height = min(report["height"], MAX_HEIGHT)
                        _chromium(
                            "--virtual-time-budget=5000",
                            f"--window-size={args.width},{height}",
                            f"--screenshot={shot}",
                            url + anchor,
                        )
                        print(f"  {shot} ({args.width}x{height} px from {anchor[6:] or 'the top'})")
                for box in report["clipped"]:
                    clipped_anywhere = True
                    where = f"under #{box['under']}: {box['box']} {box['scroll']} > {box['client']} px"
                    print(f"  clipped {where}: {box['text']!r}")
        finally:
            server.shutdown()
    print("clipped boxes found" if clipped_anywhere else "nothing clipped")
    return int(clipped_anywhere)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
