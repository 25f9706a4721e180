"""Next word after "I love" from four sentences: the Keras tutorials' n-gram prefix setup, with rnnlab.

The tutorial (Keras):

    tokenizer = Tokenizer(); tokenizer.fit_on_texts(sentences)
    for line in sentences:                       # every prefix of every line becomes one sample
        seq = tokenizer.texts_to_sequences([line])[0]
        input_sequences += [seq[:i + 1] for i in range(1, len(seq))]
    X = pad_sequences(input_sequences, maxlen=longest, padding="pre")   # then X[:, :-1] -> X[:, -1]
    model = Sequential([Embedding(V, 10), LSTM(50), Dense(V, activation="softmax")])
    model.fit(X[:, :-1], to_categorical(X[:, -1], V), epochs=200)

rnnlab (the prefix objective builds the same samples; padding is masked, never read as a word):

    rnnlab train sentences.txt -o runs/love --level word --keras-compat --objective prefixes \
        --layers 1 --hidden 50 --embedding 10 --dropout 0 --lr 0.01 --warmup 0 --epochs 200 \
        --val-file sentences.txt
    rnnlab predict-next runs/love "I love" -k 3

Run:  python examples/next_word_prefixes.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import rnnlab

SENTENCES = [
    "I love machine learning",
    "I love deep learning",
    "I enjoy natural language processing",
    "Deep learning is amazing",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (what CI runs)")
    parser.add_argument("--out", default="runs/next_word_prefixes", help="model directory to write")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "sentences.txt"
        corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
        # Four sentences leave nothing to hold out: like the tutorial, we watch the training text.
        lm = rnnlab.train(corpus, args.out, val_file=corpus, overwrite=True,
                          level="word", keras_compat=True, objective="prefixes",
                          cell="lstm", layers=1, hidden_size=50, embedding_size=10, dropout=0.0,
                          lr=0.01, warmup_steps=0, epochs=80 if args.quick else 200, patience=None,
                          sample_every=0, seed=0, progress=False)

    facts = lm.info()
    print(f"{facts['corpus']['train_tokens']} words, vocabulary {lm.tokenizer.vocab_size} (0 is padding); "
          f"{facts['training']['best']['val_tokens']} prefix samples")
    for prompt in ("I love", "I enjoy", "Deep learning is"):
        candidates = ", ".join(f"{word} {p:.2f}" for word, p in lm.predict_next(prompt, k=3))
        print(f"after {prompt!r}: {candidates}")
    print("greedy from 'I enjoy':", lm.generate("I enjoy", length=3, strategy="greedy"))


if __name__ == "__main__":
    main()
