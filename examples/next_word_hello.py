"""Word-level next-word prediction on one sentence, the Keras tutorials' first example, with rnnlab.

The tutorial (Keras):

    tokenizer = Tokenizer(); tokenizer.fit_on_texts([text])          # {'hello': 1, 'world': 2, ...}
    seq = tokenizer.texts_to_sequences([text])[0]
    X = [seq[i:i + 2] for i in range(len(seq) - 2)]; y = [seq[i + 2] for i in range(len(seq) - 2)]
    model = Sequential([Embedding(V, 16), LSTM(32), Dense(V, activation="softmax")])
    model.fit(X, to_categorical(y, V), epochs=200)
    model.predict(pad_sequences(tokenizer.texts_to_sequences(["is a"]), maxlen=2))

rnnlab (the same network, Keras' word indexing, the window objective: 2 words predict the third):

    rnnlab train hello.txt -o runs/hello --level word --keras-compat --objective window --window 2 \
        --layers 1 --hidden 32 --embedding 16 --dropout 0 --lr 0.01 --warmup 0 --epochs 200 --val-file hello.txt
    rnnlab predict-next runs/hello "is a" -k 3

Run:  python examples/next_word_hello.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import rnnlab

TEXT = "Hello world. This is a simple LSTM example."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (what CI runs)")
    parser.add_argument("--out", default="runs/next_word_hello", help="model directory to write")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "hello.txt"
        corpus.write_text(TEXT + "\n", encoding="utf-8")
        # One sentence leaves nothing to hold out: like the tutorial, we watch the training text itself.
        lm = rnnlab.train(corpus, args.out, val_file=corpus, overwrite=True,
                          level="word", keras_compat=True, objective="window", window=2,
                          cell="lstm", layers=1, hidden_size=32, embedding_size=16, dropout=0.0,
                          lr=0.01, warmup_steps=0, epochs=80 if args.quick else 200, patience=None,
                          sample_every=0, seed=0, progress=False)

    print("word_index:", lm.tokenizer.word_index)
    print(f"parameters: {lm.info()['keras_parameters']['total']} as Keras counts them")
    for prompt in ("hello world", "is a", "simple lstm"):
        candidates = ", ".join(f"{word} {p:.2f}" for word, p in lm.predict_next(prompt, k=3))
        print(f"after {prompt!r}: {candidates}")
    print("greedy from 'hello world':", lm.generate("hello world", length=6, strategy="greedy"))


if __name__ == "__main__":
    main()
