"""A story and the model's carried state, for interactive mode and the server's next-word suggestions.

`Session` holds the text so far as the model's state and the logits of its next token: text is added
(read once), a continuation is generated with the one decoder (`decoder.decode`, carrying the state on),
and `candidates(k)` offers the k most likely next words (a character model's found by a beam over
characters, `sample_word` draws one). It does no I/O: `rnnlab generate --interactive` (interactive.py)
and `POST /v1/next` (serve/app.py) are thin layers over it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rnnlab.config import SampleConfig
from rnnlab.generation.decoder import decode, prime
from rnnlab.generation.stepper import select_rows
from rnnlab.generation.text_stream import TextStream
from rnnlab.generation.transforms import build_chain, is_greedy, next_token

__all__ = ["Candidate", "Session", "MAX_WORD_CHARS"]

MAX_WORD_CHARS = 24  # the longest word a character model's beam spells
_CONTEXT_TOKENS = 64  # tokens of story a word/BPE tokenizer sees to lay out the next piece
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}'’”…")


@dataclass(frozen=True)
class Candidate:
    """A next word on offer: its text, the token ids that spell it, and the model's probability of it."""

    text: str
    ids: tuple[int, ...]
    probability: float


class Session:
    """One story and the model's carried state; the loop's commands are calls on it (no I/O here)."""

    def __init__(self, lm, config: SampleConfig):
        self.lm = lm
        self.config = config
        self.tokenizer = lm.tokenizer
        self.generator = torch.Generator()
        self.set_config(config)
        self.reset()

    # -- state
    def reset(self) -> None:
        """A fresh state and an empty story."""
        self.state = None
        self.logits: torch.Tensor | None = None  # [1, V]: the model's prediction for the next token
        self.context: list[int] = []  # every token fed, start token included (for layout)
        self.text = ""  # the story as shown

    def set_config(self, config: SampleConfig) -> None:
        self.config = config
        if config.seed is not None:
            self.generator.manual_seed(config.seed)
        else:
            self.generator.seed()

    def _seed(self) -> int:
        # One seed per turn drawn from the session's generator: a set /seed makes the whole session
        # repeatable without every turn sampling the same way.
        return int(torch.randint(0, 2**62, (1,), generator=self.generator))

    @torch.inference_mode()
    def _feed(self, ids: list[int]) -> None:
        """Run `ids` through the network on top of the carried state."""
        if not ids:
            return
        self.lm.model.eval()
        self.logits, self.state = prime(self.lm.model, ids, 1, self.lm.device, self.state)
        self.context.extend(ids)

    def _start(self, need_prediction: bool = True) -> None:
        """A fresh story begins with the start-of-text context, as the model was trained (nothing, for
        window and prefix models); with nothing else to read, a token the model can predict from."""
        if self.context:
            return
        if self.lm.model.config.output == "sequence":
            self._feed(self.tokenizer.start_ids())
        if need_prediction and self.logits is None:
            self._feed(self.lm._newline_ids() or [0])

    def _piece(self, ids: list[int], before: list[int]) -> str:
        """The text that tokens `ids` add after the tokens `before`."""
        if self.tokenizer.kind == "char":
            return self.tokenizer.decode(ids)
        tail = before[-_CONTEXT_TOKENS:]
        prefix = self.tokenizer.decode(tail)
        return self.tokenizer.decode(tail + ids)[len(prefix):]

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, unknown=self.config.unknown, what="input")

    # -- turns
    def add_text(self, text: str) -> str:
        """Append the user's text to the story (state advanced by it); returns the text as added."""
        if not text:
            return ""
        if (self.tokenizer.kind != "word" and self.text and not self.text[-1].isspace()
                and not text[0].isspace() and text[0] not in _NO_SPACE_BEFORE
                and not self.tokenizer.unknown_items(" ")):
            text = " " + text
        ids = self._encode(text)
        self._start(need_prediction=False)
        before = list(self.context)
        self._feed(ids)
        piece = self._piece(ids, before)
        self.text += piece
        return piece

    def add_ids(self, ids: list[int] | tuple[int, ...]) -> str:
        """Append tokens (a chosen candidate) to the story; returns their text."""
        self._start()
        before = list(self.context)
        self._feed(list(ids))
        piece = self._piece(list(ids), before)
        self.text += piece
        return piece

    def generate(self, on_text: Callable[[str], None] | None = None) -> str:
        """Let the model continue the story by `config.length` tokens (or to the stop string)."""
        self._start()
        config = self.config.replace(num_samples=1, seed=self._seed())
        if config.length == 0:
            return ""
        # The new text after the story's last tokens (the layout of the first new word needs them).
        stream = TextStream(self.tokenizer, self.context[-_CONTEXT_TOKENS:], config.stop)

        def is_stopped(_row: int, token: int) -> bool:
            piece = stream.push(token)
            if on_text is not None and piece:
                on_text(piece)
            return stream.stopped

        samples, (state, logits) = decode(self.lm.model, [], config, self.lm.device, is_stopped=is_stopped,
                                          state=self.state, logits=self.logits, banned=self.lm.banned_ids)
        self.state, self.logits = state, logits
        self.context.extend(samples[0].ids)
        if samples[0].stopped == "stop":
            # decode stops before running the token that completed the stop string; the story goes on
            # from after it, so the state must have seen it.
            self.context.pop()
            self._feed(samples[0].ids[-1:])
        rest = stream.finish()  # a byte-level BPE character cut at the end of the turn
        if on_text is not None and rest:
            on_text(rest)
        self.text += stream.text
        return stream.text

    # -- words mode
    def _banned_mask(self) -> torch.Tensor:
        mask = torch.zeros(self.tokenizer.vocab_size, dtype=torch.bool)
        mask[self.lm.banned_ids] = True
        return mask

    def _space_mask(self) -> torch.Tensor:
        mask = torch.zeros(self.tokenizer.vocab_size, dtype=torch.bool)
        for i in range(self.tokenizer.vocab_size):
            if i not in self.lm.banned_ids and self.tokenizer.token_text(i).isspace():
                mask[i] = True
        return mask

    @torch.inference_mode()
    def candidates(self, k: int) -> list[Candidate]:
        """The k most likely next words (see the module docstring), most likely first."""
        self._start()
        logp = torch.log_softmax(self.logits.float(), dim=-1).cpu()  # [1, V]
        logp[:, self._banned_mask()] = -math.inf
        if self.tokenizer.kind != "char":
            top = torch.topk(logp[0], min(k, logp.shape[-1]))
            return [Candidate(self._piece([i], self.context), (i,), math.exp(v))
                    for v, i in zip(top.values.tolist(), top.indices.tolist()) if v > -math.inf]
        return self._beam_words(k, logp)

    def _beam_words(self, k: int, logp: torch.Tensor) -> list[Candidate]:
        model, device = self.lm.model, self.lm.device
        space, banned = self._space_mask(), self._banned_mask()
        width = max(2 * k, 8)
        beams: list[tuple[list[int], float, bool]] = [([], 0.0, False)]  # ids, log-prob, has a non-space
        state = self.state
        done: list[tuple[float, list[int]]] = []
        for _ in range(MAX_WORD_CHARS):
            grown: list[tuple[float, int, int]] = []
            for row, (ids, score, has_word) in enumerate(beams):
                scores = logp[row]
                if has_word:
                    if space.any():
                        done.append((score + float(torch.logsumexp(scores[space], 0)), ids))
                    scores = scores.masked_fill(space, -math.inf)  # a space would end the word
                top = torch.topk(scores, min(width, scores.numel()))
                grown += [(score + v, row, i) for v, i in zip(top.values.tolist(), top.indices.tolist())
                          if v > -math.inf]
            grown.sort(key=lambda g: -g[0])
            grown = grown[:width]
            done.sort(key=lambda d: -d[0])
            done = done[:k]
            # Scores only fall as a word grows: once the best unfinished one is below the k-th finished
            # word, no later word can enter the list.
            if not grown or (len(done) >= k and grown[0][0] <= done[-1][0]):
                beams = []
                break
            rows = torch.tensor([row for _, row, _ in grown], device=device)
            tokens = torch.tensor([[i] for _, _, i in grown], device=device)
            state = select_rows(state, rows)
            step_logits, state = model(tokens, state)  # [W, 1, V]
            logp = torch.log_softmax(step_logits[:, -1].float(), dim=-1).cpu()
            logp[:, banned] = -math.inf
            beams = [(beams[row][0] + [i], score, beams[row][2] or not bool(space[i]))
                     for score, row, i in grown]
        # Words still growing after MAX_WORD_CHARS characters are offered as they stand.
        done += [(score, ids) for ids, score, has_word in beams if has_word]
        done.sort(key=lambda d: -d[0])
        return [Candidate(self.tokenizer.decode(ids), tuple(ids), math.exp(score)) for score, ids in done[:k]]

    @torch.inference_mode()
    def sample_word(self) -> str:
        """The model picks the next word itself (sampled with the session's settings); returns its text."""
        self._start()
        config = self.config.replace(num_samples=1)
        chain, greedy = build_chain(config), is_greedy(config)
        banned = self._banned_mask().to(self.logits.device)
        if self.tokenizer.kind != "char":
            token = int(next_token(self.logits.float().masked_fill(banned, -math.inf), chain, greedy,
                                   self.generator)[0])
            return self.add_ids([token])
        space = self._space_mask()
        added, has_word = "", False
        for _ in range(MAX_WORD_CHARS):
            token = int(next_token(self.logits.float().masked_fill(banned, -math.inf), chain, greedy,
                                   self.generator)[0])
            if has_word and bool(space[token]):
                break  # the space after the word is left for the next one, as with the offered words
            has_word = has_word or not bool(space[token])
            added += self.add_ids([token])
        return added
