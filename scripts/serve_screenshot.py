"""A screenshot of the ``w2v2 serve`` page with a transcript (README's docs/serve_page.png).

    w2v2 serve MODEL_DIR --port 8000 &
    .venv/bin/python scripts/serve_screenshot.py --url http://127.0.0.1:8000 --audio CLIP.flac --out docs/serve_page.png

Headless Chromium (Debian's, as the page test) chooses CLIP in the page's file input, waits for
the transcript and saves the page.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--audio", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("docs/serve_page.png"))
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--hover", type=int, default=1, help="the word to point at (its tooltip and waveform region)")
    args = p.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium)
        page = browser.new_page(viewport={"width": 1000, "height": 640}, device_scale_factor=1)
        page.goto(args.url)
        page.wait_for_selector("#decoder option", state="attached")
        page.set_input_files("#file", str(args.audio))
        page.wait_for_selector("#result:not([hidden])", timeout=120000)
        words = page.query_selector_all("#transcript .word")
        if words and 0 <= args.hover < len(words):
            words[args.hover].hover()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()
    print(f"{args.audio} -> {args.out}")


if __name__ == "__main__":
    main()
