"""The Jungle Book at word level: next-word candidates for "Mowgli was running in the" and 100 new words.

The tutorial (Keras):

    tokenizer = Tokenizer(); tokenizer.fit_on_texts([text]); seq = tokenizer.texts_to_sequences([text])[0]
    X = [seq[i:i + 5] for i in range(len(seq) - 5)]; y = [seq[i + 5] ...]    # 5 words -> the next one
    model = Sequential([Embedding(V, 64), LSTM(128), Dense(V, activation="softmax")])
    model.fit(X, to_categorical(y, V), batch_size=128, epochs=50)
    probs = model.predict(pad_sequences(tokenizer.texts_to_sequences(["Mowgli was running in the"]), 5))

rnnlab (Keras' word indexing, so candidates are words as in the tutorial, but rnnlab's default
sequence objective: every word of a 32-word window is a target, not only the last):

    rnnlab train jungle-book -o runs/jungle-words --level word --keras-compat --max-vocab 6000 \
        --layers 1 --hidden 128 --embedding 64 --dropout 0.1 --seq-len 32 --batch-size 32 --lr 0.005 \
        --warmup 20 --max-time 0.75 --eval-every 50
    rnnlab predict-next runs/jungle-words "Mowgli was running in the" -k 5
    rnnlab generate runs/jungle-words --prompt "Mowgli was running in the" --length 100 --seed 0

Run:  python examples/jungle_book_words.py [--quick] [--out DIR] [--data-dir DIR]
(the corpus is read from ../shared/data beside the repository when it is there, else downloaded once
from Project Gutenberg and verified.) Without --keras-compat, rnnlab's own word tokenizer keeps
punctuation, capitals and line breaks as tokens, so generated text comes back laid out like the book.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import rnnlab

PROMPT = "Mowgli was running in the"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="train for 4 seconds instead of 45 (what CI runs)")
    parser.add_argument("--out", default="runs/jungle_book_words", help="model directory to write")
    parser.add_argument("--data-dir", default=str(SHARED_DATA) if SHARED_DATA.is_dir() else None,
                        help="folder holding jungle-book.txt (default: download it)")
    args = parser.parse_args()

    lm = rnnlab.train("jungle-book", args.out, data_dir=args.data_dir, overwrite=True,
                      level="word", keras_compat=True, max_vocab=6000,
                      cell="lstm", layers=1, hidden_size=128, embedding_size=64, dropout=0.1,
                      seq_len=32, batch_size=32, lr=0.005, warmup_steps=20,
                      epochs=None, max_time=(4 if args.quick else 45) / 60, eval_every=50,
                      sample_every=0, seed=0, progress=False)

    best = lm.info()["training"]["best"]
    print(f"vocabulary {lm.tokenizer.vocab_size} words; validation perplexity {best['val_perplexity']:.1f} "
          f"({best['val_bpc']:.3f} bits per character) after {best['step']} steps")
    print(f"next word after {PROMPT!r}:")
    for word, p in lm.predict_next(PROMPT, k=5):
        print(f"  {p:.3f}  {word}")
    sample = lm.sample(PROMPT, length=100, temperature=0.8, seed=0)[0]
    print(f"100 words (temperature 0.8, seed 0):\n{sample.text}")


if __name__ == "__main__":
    main()
