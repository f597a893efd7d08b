"""Gradio app: live prediction with integrated-gradients highlighting, scoring a file, evaluation dashboard, error
explorer, fairness probe.

    python app.py [--artifacts artifacts] [--data ../shared/data/imdb] [--host 127.0.0.1] [--port 7860]
                  [--ig-steps 20]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from sentiment.config import DATA_HELP, DEFAULT_IG_STEPS  # light: no torch, no gradio

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    on_space = "SPACE_ID" in os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default=env("SENTIMENT_ARTIFACTS", "artifacts"),
                        help="folder written by train.py (env SENTIMENT_ARTIFACTS)")
    parser.add_argument("--data", default=env("SENTIMENT_DATA", "imdb" if on_space else None),
                        help="where the error explorer reads the texts of the training run's test set and of its "
                             "validation sets where evaluate.py added them (its reviews, its sentences; others are "
                             "read from where they were evaluated): " + DATA_HELP +
                             " (env SENTIMENT_DATA; default: 'imdb' from the hub on a Hugging Face Space, elsewhere "
                             "the data each set was evaluated from)")
    parser.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to serve on (env GRADIO_SERVER_NAME; default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=env("GRADIO_SERVER_PORT", "7860"),  # argparse checks a bad one
                        help="port to serve on (env GRADIO_SERVER_PORT; default: 7860)")
    parser.add_argument("--ig-steps", type=int, default=DEFAULT_IG_STEPS,
                        help=f"integrated-gradients steps the Predict tab starts with, 4 to 64 (default: "
                             f"{DEFAULT_IG_STEPS})")
    args = parser.parse_args(argv)
    if not 4 <= args.ig_steps <= 64:
        parser.error(f"--ig-steps must be between 4 and 64, not {args.ig_steps}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sentiment import runtime
    from sentiment.bulk import MAX_UPLOAD_BYTES
    from sentiment.errors import SentimentError
    from sentiment.services import Services
    from sentiment.ui import build_app

    runtime.set_threads(None)
    runtime.set_probe_cache(runtime.probe_cache_from(os.environ))
    try:
        services = Services.load(args.artifacts, args.data, args.ig_steps)
    except SentimentError as err:  # a missing or altered model folder: say what to do, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    # run_history off: Gradio 6 would otherwise keep every submitted review in the visitor's browser storage.
    # max_file_size: Gradio refuses a larger upload before writing it to disk (the scorer checks it again).
    build_app(services, ig_steps=args.ig_steps).launch(server_name=args.host, server_port=args.port,
                                                        run_history=False, max_file_size=MAX_UPLOAD_BYTES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
