"""Print the weights file a finished training stage is decoded with (the best-N average its config.yaml asks
for, else its latest checkpoint); exit 1 when there is none.

    python -m audiorl.bin.final_weights exp/asr_train_asr
"""

from __future__ import annotations

import argparse
import sys

from audiorl.train.checkpoint import final_weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", help="experiment dir with config.yaml and checkpoints/")
    args = parser.parse_args(argv)
    path = final_weights(args.exp_dir)
    if path is None:
        print(f"{args.exp_dir}: no averaged model and no checkpoint (has the training stage run?)", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
