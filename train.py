"""Fine-tune a BERT-family model on IMDB reviews and write the artifacts the app serves.

    python train.py --data ../shared/data/imdb             # the full recipe
    python train.py --data ../shared/data/imdb --max-train-samples 256 --max-eval-samples 128 --epochs 1
"""

from __future__ import annotations

import argparse
import logging
import sys

from sentiment.config import TrainConfig, add_arguments, from_namespace
from sentiment.errors import SentimentError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, TrainConfig)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = from_namespace(args, TrainConfig)
        from sentiment.training import add_fairness, train  # heavy imports only after the flags are valid

        output_dir = add_fairness(config) if config.fairness_only else train(config)
    except SentimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"artifacts written to {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
