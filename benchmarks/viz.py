"""`charrnn viz`: how big the page is and how fast headless Chromium shows it; and which unit a pattern finds.

    python benchmarks/viz.py --model stdlib.npz --text stdlib.txt --tail --pattern "'[^'\\n]*'" \\
        [--chars 20000] [--repeats 5] [--max-mb 5] [--screenshot docs/viz.png] [--out viz.json]

Builds the page of the first (or, with --tail, the last) --chars characters of --text under --model (without
--model: random weights, 2 x 128, over the text's characters; without --text: the python-stdlib corpus),
then opens it --repeats times in headless Chromium (Debian's chromium + chromium-driver, network off; the
launcher is tests/browser.py) and reports medians of:

    ready      page's own clock from navigation start until everything is drawn and the first frame with it
               has been painted (HTML parsed, payload decoded, spans built, activations inflated)
    wall       the same seen from Selenium (driver.get until the page says it is ready)
    draw       script start until every character is on the page (before activations are inflated)
    unit       recolouring every character by one hidden unit
    rank       correlating all L·H units with a regex's 0/1 mask (in the page)

Targets (issue 16): a 20,000-character page < 5 MB and ready in < 1 s. With --pattern it also prints the
units the pattern ranks highest (exact activations, in Python) and the page's own top unit. Prints a
markdown table on stdout and one JSON object (also written to --out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the Chromium launcher the browser tests use

from browser import open_page, start_chromium  # noqa: E402

from charrnn.model import Model, ModelConfig, load_model  # noqa: E402
from charrnn.viz import to_payload, visualise  # noqa: E402
from charrnn.viz_page import payload_budget, write_page  # noqa: E402
from charrnn.vocab import Vocab  # noqa: E402


def random_model(text: str, hidden: int = 128, layers: int = 2, seed: int = 0) -> Model:
    vocab = Vocab.from_text(text)
    return Model.initialize(ModelConfig(len(vocab), hidden, layers), vocab, np.random.default_rng(seed))


def measure(chromium, page: Path, pattern: str | None) -> dict:
    wall = open_page(chromium, page)
    timings = chromium.execute_script("""
        const v = window.charrnnViz, out = {ready: v.readyMs, draw: v.drawMs, error: v.error};
        let t = performance.now();
        v.setUnit(0, 1);
        out.unit = performance.now() - t;
        if (arguments[0] !== null) {
            t = performance.now();
            const ranked = v.rankUnits(v.regexMask(arguments[0]), 10);
            out.rank = performance.now() - t;
            out.top = ranked.units && ranked.units[0];
        }
        return out;
    """, pattern)  # fmt: skip
    if timings["error"]:
        raise SystemExit(f"the page reported an error: {timings['error']}")
    errors = [e for e in chromium.get_log("browser") if e["level"] == "SEVERE"]
    if errors:
        raise SystemExit(f"console errors: {errors}")
    return {"wall": wall * 1000, **timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="checkpoint (default: random weights, 2 x 128)")
    parser.add_argument("--text", type=Path, help="text file (default: the python-stdlib corpus)")
    parser.add_argument("--tail", action="store_true", help="take the last --chars characters, not the first")
    parser.add_argument("--chars", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-mb", type=float, default=5.0)
    parser.add_argument("--pattern", help="also rank units for this regex (Python syntax, as charrnn viz --pattern)")
    parser.add_argument("--screenshot", type=Path, help="save a PNG of the page (opened on --pattern's best unit)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    if args.text is None:
        from charrnn.assemble import python_stdlib_text

        text, text_name = python_stdlib_text(), "python-stdlib corpus"
    else:
        text, text_name = args.text.read_text(encoding="utf-8").replace("\r\n", "\n"), str(args.text)
    text = text[-args.chars :] if args.tail else text[: args.chars]
    model = load_model(args.model) if args.model else random_model(text)
    model_name = args.model.name if args.model else "random weights"
    c = model.config
    print(f"[viz] {len(text):,} characters of {text_name} under {model_name} ({c.num_layers} x {c.hidden_size})",
          file=sys.stderr)  # fmt: skip

    started = time.perf_counter()
    vis = visualise(model, text, max_chars=args.chars)
    model_s = time.perf_counter() - started
    started = time.perf_counter()
    payload = to_payload(vis, model, text_name, model_name, pattern=args.pattern, max_bytes=payload_budget(args.max_mb))
    payload_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as workdir:
        page = Path(workdir) / "page.html"
        size = write_page(page, payload)
        chromium = start_chromium(Path(workdir) / "profile")
        try:
            runs = [measure(chromium, page, args.pattern) for _ in range(args.repeats)]
            if args.screenshot:
                open_page(chromium, page)
                chromium.execute_script("window.scrollTo(0, 0)")
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                chromium.save_screenshot(str(args.screenshot))
        finally:
            chromium.quit()

    def median(key: str) -> float | None:
        values = [run[key] for run in runs if run.get(key) is not None]
        return statistics.median(values) if values else None

    result = {
        "text": text_name,
        "model": model_name,
        "layers": c.num_layers,
        "hidden": c.hidden_size,
        "characters": payload["characters"],
        "limited_by": payload["limited_by"],
        "activation_steps": payload["activations"]["steps"],
        "page_bytes": size,
        "python_seconds": {"model": round(model_s, 3), "payload": round(payload_s, 3)},
        "browser_ms": {key: median(key) for key in ("ready", "wall", "draw", "unit", "rank")},
        "repeats": args.repeats,
        "load_average": os.getloadavg()[0],
        "targets": {"page_under_5MB": size < 5_000_000, "ready_under_1s": median("ready") < 1000},
    }
    if args.pattern:
        result["pattern"] = {**payload["pattern"], "page_top": runs[-1].get("top")}

    ms = result["browser_ms"]
    print(f"| characters | page | activations | ready | wall (Selenium) | draw | recolour | rank units |\n"
          f"|---|---|---|---|---|---|---|---|\n"
          f"| {result['characters']:,} | {size / 1e6:.2f} MB | {payload['activations']['steps']} steps | "
          f"{ms['ready']:.0f} ms | {ms['wall']:.0f} ms | {ms['draw']:.0f} ms | {ms['unit']:.0f} ms | "
          + (f"{ms['rank']:.0f} ms |" if ms["rank"] is not None else "- |"))  # fmt: skip
    if args.pattern:
        print(f"\npattern {args.pattern!r}: {payload['pattern']['matched']:,} characters")
        print("| rank | layer | unit | correlation |\n|---|---|---|---|")
        for k, unit in enumerate(payload["pattern"]["ranking"][:5], 1):
            print(f"| {k} | {unit['layer']} | {unit['unit']} | {unit['correlation']:+.3f} |")
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if result["load_average"] > 1.0:
        print(f"[viz] load average {result['load_average']:.1f}: timings are inflated", file=sys.stderr)


if __name__ == "__main__":
    main()
