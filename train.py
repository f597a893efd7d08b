"""Fine-tune a BERT-family model on IMDB reviews and write the artifacts the app serves.

    python train.py --data ../shared/data/imdb             # the full recipe
    python train.py --data ../shared/data/imdb --max-train-samples 256 --max-eval-samples 128 --epochs 1
    torchrun --nproc_per_node 2 train.py --data ../shared/data/imdb   # DDP; --batch-size stays the global batch
"""

from __future__ import annotations

import argparse
import logging
import sys

from sentiment.config import TrainConfig, add_arguments, from_namespace
from sentiment.distributed import launched
from sentiment.errors import SentimentError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, TrainConfig)
    args = parser.parse_args(argv)
    try:
        context = launched()
    except SentimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if context.is_main else logging.WARNING,
                        format=f"%(asctime)s %(levelname)s {f'rank {context.rank} ' if context.enabled else ''}"
                               f"%(name)s: %(message)s")
    try:
        config = from_namespace(args, TrainConfig)
        from sentiment.finish import add_fairness  # heavy imports only after the flags are valid
        from sentiment.training import train

        output_dir = add_fairness(config) if config.fairness_only else train(config)
    except SentimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if context.is_main:
        print(f"artifacts written to {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
