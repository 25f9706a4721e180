"""rnnlab: recurrent networks (RNN, GRU, LSTM) that generate text and forecast series.

    import rnnlab
    lm = rnnlab.train("jungle-book", "runs/jb", epochs=5)
    print(lm.generate("Mowgli", length=200))
"""

from rnnlab.errors import RnnlabError

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy: `import rnnlab` stays cheap (no torch import) for the CLI's --help and error paths.
    if name in ("train", "load", "LanguageModel", "Generation"):
        from rnnlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'rnnlab' has no attribute {name!r}")


__all__ = ["Generation", "LanguageModel", "RnnlabError", "load", "train"]
