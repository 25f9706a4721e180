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
from typing import Any, TextIO

from rnnlab.config import SampleConfig
from rnnlab.errors import ConfigError, RnnlabError
from rnnlab.generation.session import Candidate, Session

__all__ = ["Candidate", "Session", "apply_setting", "parse_line", "run_interactive"]

DEFAULT_CHOICES = 5

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
