"""Character-level poem generation with early stopping, a fixed seed and three temperatures.

The corpus is the first five lines of Robert Frost's "The Road Not Taken" (1916, public domain).

The tutorial (Keras):

    chars = sorted(set(text)); X, y = windows of 40 characters -> the next one, one-hot encoded
    model = Sequential([LSTM(128, input_shape=(40, len(chars))), Dense(len(chars), activation="softmax")])
    model.fit(X, y, batch_size=128, epochs=500,
              callbacks=[EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)])
    for temperature in (0.5, 1.0, 1.5): sample(model, "Two roads", temperature)

rnnlab (its default sequence objective: every character of every window is a target):

    rnnlab train frost.txt -o runs/frost --val-file frost.txt --layers 1 --hidden 128 --embedding 32 \
        --dropout 0 --seq-len 8 --batch-size 2 --lr 0.01 --warmup 0 --schedule constant \
        --epochs 500 --patience 5 --min-delta 0.001 --seed 0
    rnnlab plot runs/frost -o frost-history.png
    rnnlab generate runs/frost --prompt "Two roads" --temperature 0.5 --seed 0 --length 120

Run:  python examples/poem_chars.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import rnnlab

POEM = """Two roads diverged in a yellow wood,
And sorry I could not travel both
And be one traveler, long I stood
And looked down one as far as I could
To where it bent in the undergrowth;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller model and fewer epochs (what CI runs)")
    parser.add_argument("--out", default="runs/poem_chars", help="model directory to write")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "frost.txt"
        corpus.write_text(POEM, encoding="utf-8")
        # Five lines leave nothing to hold out, so early stopping watches the training text, as the
        # tutorial's EarlyStopping(monitor="loss") does; the best weights are the ones kept.
        lm = rnnlab.train(corpus, args.out, val_file=corpus, overwrite=True,
                          level="char", cell="lstm", layers=1, hidden_size=48 if args.quick else 128,
                          embedding_size=32, dropout=0.0, seq_len=8, batch_size=2,
                          lr=0.01, warmup_steps=0, schedule="constant",
                          epochs=15 if args.quick else 500, patience=5, min_delta=0.001,
                          sample_every=0, seed=0, progress=False)

    summary = json.loads((Path(args.out) / "summary.json").read_text())
    first = json.loads((Path(args.out) / "metrics.jsonl").read_text().splitlines()[0])
    print(f"vocabulary {lm.tokenizer.vocab_size} characters (uniform guessing: "
          f"{math.log2(lm.tokenizer.vocab_size):.2f} bits per character)")
    print(f"stopped by {summary['stopped']} after {summary['epochs_completed']} epochs; bits per character "
          f"{first['val_bpc']:.3f} after epoch 1, best {summary['best']['val_bpc']:.3f} "
          f"at epoch {summary['best']['epoch']:.0f}")
    for temperature in (0.5, 1.0, 1.5):
        print(f"--- temperature {temperature} ---")
        print(lm.generate("Two roads", length=120, temperature=temperature, seed=0))


if __name__ == "__main__":
    main()
