"""Embedding throughput with and without the content-hash cache, on the demo texts.

Prints texts/s for a cold encode (every text through the model) and for the same texts
again (all cache hits), and their ratio. Run with `make bench`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services.demo import read_demo_data  # noqa: E402
from matching import Encoder, load_model  # noqa: E402


def main() -> None:
    data = read_demo_data()
    texts = [f"{p['title']}\n{p['abstract']}" for p in data["proposals"]]
    texts += [f"{o['title']}\n{o['description']}" for o in data["offers"]]
    publications = [pub for user in data["users"] for pub in user.get("publications", [])]
    texts += [f"{pub['title']}\n{pub['abstract']}" for pub in publications]
    started = time.perf_counter()
    model = load_model()
    print(f"model load                : {time.perf_counter() - started:.2f} s")

    encoder = Encoder(model)
    encoder.encode(texts[:8])  # warm-up: first call pays for lazy initialisation
    encoder = Encoder(model)
    started = time.perf_counter()
    encoder.encode(texts)
    cold = time.perf_counter() - started
    encoded_cold = encoder.encoded_count
    started = time.perf_counter()
    encoder.encode(texts)
    warm = time.perf_counter() - started
    print(f"texts                     : {len(texts)} (demo proposals, offers, publications)")
    print(f"cold encode               : {len(texts) / cold:,.0f} texts/s ({cold:.2f} s)")
    print(f"cached encode             : {len(texts) / warm:,.0f} texts/s ({warm * 1000:.1f} ms)")
    print(f"cache speed-up            : {cold / warm:,.0f}x")
    print(f"texts encoded on 2nd pass : {encoder.encoded_count - encoded_cold}")


if __name__ == "__main__":
    main()
