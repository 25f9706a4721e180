"""Interactive generation: a prompt loop that writes one story together with the model.

`rnnlab generate MODEL --interactive` reads lines from the terminal. Each line the user types is run
through the network on top of the hidden state carried from the previous turn, and the model then
continues the story from there, so nothing is ever re-read and the model remembers the whole session:

    > The wolf
    The wolf and the cubs went down to the river ...       <- the user's words, then the model's
    > Mowgli said
    Mowgli said that he would ...                          <- continues from the carried state
    > /reset                                               <- a fresh state and an empty story

An empty line lets the model go on by itself. For character and BPE models a space is put between the
story and the typed line when neither side has one (word models space tokens by their own rule).

`--words` (or `/words` in the loop) is the step-by-step mode textgenrnn made popular: the model offers
its most likely next words, numbered with their probabilities, and the user builds the story from them:

    1  ' the'     21.3%        a number   appends that word (the state advances by it)
    2  ' a'        9.8%        Enter      the model samples the next word itself (/more does the same)
    ...                        text       appends the user's own words
                               /done      back to free generation

What a "word" is depends on the model's tokens. A word or BPE model offers its k most likely next
tokens. A character model offers the k most likely next *words*, found by a beam search over
characters: a word is any leading whitespace followed by non-space characters, complete when the next
character is whitespace, and its probability is that of all its characters times that of the
whitespace after it (so it is the model's probability that exactly this word comes next). The search
keeps 2k (at least 8) partial words per step and stops after 24 characters.

Settings change with `/temperature`, `/length`, `/top-k`, `/top-p`, `/seed` and `/choices` (how many
words `--words` offers: the --top-k given on the command line, else 5). A bad value prints one line
and the loop goes on. `/quit`, end of input (Ctrl-D) and Ctrl-C end the session with exit code 0.

Input is read with plain `readline()` calls on the given stream (no GNU readline), so the loop works the
same through a pipe, a pseudo-terminal or a test's StringIO; everything it prints goes to the given
stdout, the only place in the library that prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import torch

from rnnlab.config import SampleConfig
from rnnlab.errors import ConfigError, RnnlabError
from rnnlab.generation.decoder import decode, prime
from rnnlab.generation.text_stream import TextStream
from rnnlab.generation.transforms import build_chain, is_greedy, next_token

__all__ = ["Candidate", "Session", "apply_setting", "parse_line", "run_interactive"]

DEFAULT_CHOICES = 5
MAX_WORD_CHARS = 24
_CONTEXT_TOKENS = 64  # tokens of story a word/BPE tokenizer sees to lay out the next piece
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}'’”…")

HELP = """\
Type text to continue the story from where the model left it; an empty line lets the model go on.
  /reset            start a new story (fresh state)
  /temperature T    sampling temperature (0 = greedy)       /length N   tokens per turn
  /top-k N          sample among the N most likely (0 = off) /top-p P    nucleus sampling, 0 < P <= 1
  /seed N           make the rest of the session repeatable ('/seed off' to stop)
  /words            pick the story word by word from the model's suggestions
  /choices N        how many words /words offers
  /settings         show the current settings
  /help             this text
  /quit             leave (Ctrl-D and Ctrl-C too)
In /words mode: a number appends that word, Enter or /more lets the model pick, text adds your own
words, /done goes back to free generation. Start a line with // to type text beginning with '/'."""

WORDS_HINT = "number: append that word · Enter or /more: the model picks · text: your words · /done: back"

# command -> what its argument is (None: no argument)
COMMANDS: dict[str, str | None] = {
    "reset": None, "help": None, "quit": None, "exit": None, "settings": None,
    "words": None, "done": None, "more": None,
    "temperature": "a number >= 0", "length": "a whole number >= 0", "top-k": "a whole number >= 0",
    "top-p": "a number in (0, 1]", "seed": "a whole number or 'off'", "choices": "a whole number >= 1",
}
_FIELDS = {"temperature": "temperature", "length": "length", "top-k": "top_k", "top-p": "top_p",
           "seed": "seed"}


def parse_line(line: str) -> tuple[str, str]:
    """One line of input -> (command, argument); plain text gives ("text", line).

    "/temperature 0.7" -> ("temperature", "0.7"); "//etc" -> ("text", "/etc"); "" -> ("text", "").
    An unknown command, a missing argument or an argument where none belongs is a ConfigError.
    """
    line = line.rstrip("\r\n")
    if line.startswith("//"):
        return "text", line[1:]
    if not line.startswith("/"):
        return "text", line
    name, _, arg = line[1:].strip().partition(" ")
    name, arg = name.lower(), arg.strip()
    if name == "q":
        name = "quit"
    if name not in COMMANDS:
        raise ConfigError(f"unknown command /{name} (type /help for the list)")
    wants = COMMANDS[name]
    if wants is None and arg:
        raise ConfigError(f"/{name} takes no value (got {arg!r})")
    if wants is not None and not arg:
        raise ConfigError(f"/{name} needs {wants}")
    return name, arg


def apply_setting(config: SampleConfig, name: str, value: str) -> SampleConfig:
    """`config` with the setting `name` ("temperature", "top-k", ...) parsed from `value` and validated."""
    if name not in _FIELDS:
        raise ConfigError(f"/{name} is not a setting")
    field_name = _FIELDS[name]
    parsed: Any
    if name == "seed" and value.lower() in ("off", "none"):
        parsed = None
    else:
        parsed = _number(name, value, integer=name in ("length", "top-k", "seed"))
    try:
        return config.replace(**{field_name: parsed})
    except ConfigError as exc:
        # SampleConfig names the command-line flag; here the user typed the slash command.
        raise ConfigError(exc.message.replace(f"--{name}", f"/{name}", 1)) from None


def _number(name: str, value: str, integer: bool) -> int | float:
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        raise ConfigError(f"/{name} needs {COMMANDS[name]} (got {value!r})") from None
    if not integer and not math.isfinite(number):
        raise ConfigError(f"/{name} needs {COMMANDS[name]} (got {value!r})")
    return number


def _choices(value: str) -> int:
    number = _number("choices", value, integer=True)
    if number < 1:
        raise ConfigError(f"/choices needs {COMMANDS['choices']} (got {value!r})")
    return int(number)


def describe(config: SampleConfig, choices: int) -> str:
    """The settings as one line."""
    top_k = f"{config.top_k}" if config.top_k else "0 (off)"
    seed = "off" if config.seed is None else str(config.seed)
    return (f"length {config.length} · temperature {config.temperature:g} · top-k {top_k} · "
            f"top-p {config.top_p:g} · seed {seed} · choices {choices}")


# ------------------------------------------------------------------------------------------- the session

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
            state = _select_rows(state, rows)
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


def _select_rows(state, rows: torch.Tensor):
    """The recurrent state ([layers, B, H], or an LSTM's pair of them) for batch rows `rows`."""
    if state is None:
        return None
    if isinstance(state, tuple | list):
        return type(state)(_select_rows(s, rows) for s in state)
    return state.index_select(1, rows)


# ----------------------------------------------------------------------------------------------- the loop

class _Terminal:
    def __init__(self, stdin: TextIO, stdout: TextIO):
        self.stdin, self.stdout = stdin, stdout

    def write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def say(self, line: str = "") -> None:
        self.write(line + "\n")

    def ask(self, prompt: str) -> str | None:
        """One line of input, or None at end of input."""
        self.write(prompt)
        line = self.stdin.readline()
        return None if line == "" else line


def _show(text: str, width: int = 100) -> str:
    """The story's tail on one line (newlines shown as ⏎)."""
    tail = text[-width:]
    return ("…" if len(text) > width else "") + tail.replace("\r", "").replace("\n", "⏎")


def run_interactive(lm, options: dict[str, Any], *, words: bool = False, stdin: TextIO,
                    stdout: TextIO) -> int:
    """The prompt loop (see the module docstring); returns the exit code (0)."""
    if lm.model.config.output != "sequence":
        raise ConfigError("--interactive continues the model's carried state, which needs a model trained "
                          "with --objective sequence")
    if options.get("num_samples", 1) != 1:
        raise ConfigError("--num-samples does not apply to --interactive (it writes one story)")
    try:
        config = SampleConfig(**options)
    except TypeError as exc:
        raise ConfigError(f"unknown generation option ({exc})") from None
    choices = config.top_k if config.top_k > 0 else DEFAULT_CHOICES
    session = Session(lm, config)
    term = _Terminal(stdin, stdout)
    mode = "words" if words else "story"
    term.say(f"rnnlab interactive: {lm.tokenizer.kind}-level {lm.model.config.cell} model. Type text to "
             f"continue the story, Enter to let the model go on, /help for commands, /quit to leave.")
    if words:
        term.say(WORDS_HINT)
    try:
        while True:
            offered: list[Candidate] = []
            if mode == "words":
                offered = session.candidates(choices)
                for n, c in enumerate(offered, 1):
                    term.say(f"  {n:>2}  {c.text!r:<20} {100 * c.probability:5.1f}%")
            line = term.ask("words> " if mode == "words" else "> ")
            if line is None:  # end of input (Ctrl-D)
                term.say()
                return 0
            try:
                command, arg = parse_line(line)
                if command in ("quit", "exit"):
                    return 0
                if command == "help":
                    term.say(HELP)
                elif command == "settings":
                    term.say(describe(session.config, choices))
                elif command == "reset":
                    session.reset()
                    term.say("(new story: fresh state)")
                elif command == "choices":
                    choices = _choices(arg)
                    term.say(describe(session.config, choices))
                elif command in _FIELDS:
                    session.set_config(apply_setting(session.config, command, arg))
                    term.say(describe(session.config, choices))
                elif command == "words":
                    mode = "words"
                    term.say(WORDS_HINT)
                elif command == "done":
                    if mode != "words":
                        raise ConfigError("/done leaves /words mode, which is not on")
                    mode = "story"
                    term.say("(free generation: type text to continue, Enter to let the model go on)")
                elif mode == "words":
                    _words_turn(session, command, arg, offered, term)
                else:
                    _story_turn(session, arg, term)
            except RnnlabError as exc:
                term.say(f"error: {exc.message}")
    except KeyboardInterrupt:  # Ctrl-C ends the session cleanly
        term.say()
        return 0


def _story_turn(session: Session, text: str, term: _Terminal) -> None:
    """Free generation: the typed text (if any) goes in, then the model writes `length` tokens."""
    added = session.add_text(text)
    term.write(added.lstrip(" ") if added else "")
    session.generate(on_text=term.write)
    term.say()


def _words_turn(session: Session, command: str, arg: str, offered: list[Candidate], term: _Terminal) -> None:
    if command == "more" or (command == "text" and not arg.strip()):
        session.sample_word()
    elif arg.strip().isascii() and arg.strip().isdigit():
        n = int(arg)
        if not 1 <= n <= len(offered):
            raise ConfigError(f"pick a number from 1 to {len(offered)}")
        session.add_ids(offered[n - 1].ids)
    else:
        session.add_text(arg)
    term.say(f"» {_show(session.text)}")
