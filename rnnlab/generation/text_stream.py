"""One generated row as text, piece by piece: detokenisation and stop strings, in O(1) per token.

Every place that shows generated text (`LanguageModel.sample`/`stream`, interactive sessions, the
server) feeds a row's ids to a `TextStream` and hands on what `push` returns:

    ids   ─► tokenizer.decoder() ─► new text ─► stop strings ─► released piece
              (the layout of a word            (the first stop ends the row; with include_stop=False
              needs the one before; a          the text that might begin a stop string is held back
              BPE character its bytes)         until it is known not to, as OpenAI's API returns it)

The prompt's ids are pushed first as context, unreleased, so the first new word is spaced as it follows
the prompt. Nothing re-reads the row: a long sample costs the same per token at its end as at its start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rnnlab.data.tokenizers import Tokenizer

__all__ = ["TextStream", "decode_continuation"]


class TextStream:
    """Text of one row's new ids, cut at the first of `stops`.

    `include_stop`: whether the released text ends with the stop string (rnnlab's --stop) or just before
    it (OpenAI's `stop`). With `keep=False` pieces are handed out and forgotten (`text` stays empty), so a
    stream of any length runs in constant memory.
    """

    def __init__(self, tokenizer: Tokenizer, context: Iterable[int] = (), stops: str | Sequence[str] | None = (),
                 include_stop: bool = True, keep: bool = True):
        self.decoder = tokenizer.decoder()
        for token in context:
            self.decoder.push(token)
        if stops is None:
            stops = ()
        self.stops = (stops,) if isinstance(stops, str) else tuple(stops)
        if any(not s for s in self.stops):
            raise ValueError("stop strings must not be empty")
        self.include_stop, self.keep = include_stop, keep
        self._longest = max((len(s) for s in self.stops), default=0)
        self._pieces: list[str] = []
        self._tail = ""  # released text that a stop string could still begin in (include_stop)
        self._held = ""  # decoded text not yet released, as it may begin a stop string (not include_stop)
        self.stopped = False
        self.length = 0  # characters released so far

    @property
    def text(self) -> str:
        """Everything released so far (when `keep`)."""
        if len(self._pieces) > 1:
            self._pieces = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    def push(self, token: int) -> str:
        """Feed one id; return the text it releases ("" once stopped)."""
        if self.stopped:
            return ""
        return self._release(self.decoder.push(token))

    def finish(self) -> str:
        """The row has ended: release what was held back (a partial character, a possible stop's start)."""
        if self.stopped:
            return ""
        piece = self._release(self.decoder.flush())
        if not self.stopped and self._held:
            rest, self._held = self._held, ""
            piece += self._out(rest)
        return piece

    def _release(self, new: str) -> str:
        if not self.stops:
            return self._out(new)
        if not new:
            return ""
        text = self._held + new
        window = self._tail + text  # a stop string was not in the text before: it can only end in `new`
        hit = _first_stop(window, self.stops)
        if hit is not None:
            start, stop = hit
            self.stopped = True
            end = start + len(stop) if self.include_stop else start
            self._held = ""
            return self._out(window[len(self._tail):max(end, len(self._tail))])
        if self.include_stop:
            keep = self._longest - 1
            self._tail = window[-keep:] if keep else ""
            return self._out(text)
        hold = _stop_prefix_length(text, self.stops)
        self._held = text[len(text) - hold:] if hold else ""
        return self._out(text[:len(text) - hold])

    def _out(self, piece: str) -> str:
        if piece:
            if self.keep:
                self._pieces.append(piece)
            self.length += len(piece)
        return piece


def _first_stop(text: str, stops: tuple[str, ...]) -> tuple[int, str] | None:
    """(where, which) of the stop string that occurs first in `text` (the longest at a tie), or None."""
    best: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop)
        if at >= 0 and (best is None or at < best[0] or (at == best[0] and len(stop) > len(best[1]))):
            best = (at, stop)
    return best


def _stop_prefix_length(text: str, stops: tuple[str, ...]) -> int:
    """The length of the longest end of `text` that is the beginning of a stop string (0 if none)."""
    for k in range(min(len(text), max(len(s) for s in stops) - 1), 0, -1):
        end = text[-k:]
        if any(s.startswith(end) for s in stops):
            return k
    return 0


def decode_continuation(tokenizer: Tokenizer, context: Iterable[int], ids: Iterable[int],
                        stops: str | Sequence[str] | None = (), include_stop: bool = True) -> tuple[str, bool]:
    """(the text of `ids` after `context`, cut at the first stop; whether a stop ended it), all at once."""
    stream = TextStream(tokenizer, context, stops, include_stop)
    for token in ids:
        stream.push(token)
        if stream.stopped:
            break
    stream.finish()
    return stream.text, stream.stopped
