"""One readable training loop: truncated BPTT (or windows/prefixes), clipping, schedule, evaluation,
early stopping, checkpoints, budgets, exact resume.

The loop knows nothing of text: it is handed a model, batches, a batch loss (the language model's
`batch_loss` by default; the forecaster passes its own), an `evaluate()` that returns metrics (or None: no
validation, the last weights are kept) and callbacks that the API wires in (a per-epoch sample, the
evaluation line). With no model directory nothing is written and the best weights are kept in memory.
Everything that decides what the next step computes (weights, optimiser, RNG, carried state, data position, schedule, early-stopping
counters) is saved in the checkpoint, so a resumed run ends bitwise where an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from tqdm import tqdm

from rnnlab.config import TrainConfig
from rnnlab.errors import ConfigError, ModelDirError, RnnlabError, TrainingDivergedError
from rnnlab.models.rnn_lm import detach_state
from rnnlab.training import checkpoint as ckpt
from rnnlab.training import distributed
from rnnlab.training.averaging import WeightAverage
from rnnlab.training.early_stopping import EarlyStopping
from rnnlab.training.optim import LRSchedule, make_optimizer


@dataclass
class Hooks:
    """Callbacks from the loop to its caller; all optional. Only rank 0 gets them in DDP runs."""

    on_eval: Callable[[dict[str, Any]], None] | None = None
    on_epoch_end: Callable[[int], None] | None = None
    progress: bool | None = None  # None: a bar only when stderr is a terminal
    # Called once, just before the loop first writes into the model directory (a new run's config and
    # tokenizer are written then, so a run that fails earlier leaves an overwritten model untouched).
    before_first_write: Callable[[], None] | None = None


@dataclass
class RunResult:
    step: int
    epoch: int
    stopped: str
    best: dict[str, Any] | None
    last: dict[str, Any] | None
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def _autocast(device: torch.device, precision: str = "fp32"):
    """The context the forward runs in: nothing for fp32, bf16 autocast (cpu or cuda) for bf16.

    Autocast runs the matrix products in bfloat16 and keeps parameters, gradients and the optimiser in
    fp32; the loss is taken on logits cast back to fp32.
    """
    check_precision(device, precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def check_precision(device: torch.device, precision: str) -> None:
    """Refuse a precision `device` cannot run at a useful speed (ConfigError), before any work is done.

    On a CPU without oneDNN's bf16 kernels (they need AVX-512) bf16 falls back to torch's own LSTM with
    emulated bf16 products: a training step measured 34x slower than fp32 on an AVX2 EPYC, so the run a
    user asked to be faster would crawl instead. Refused in one line, naming the way out.
    """
    if precision == "fp32":
        return
    if precision != "bf16":
        raise ConfigError(f"--precision must be one of fp32, bf16 (got {precision!r})")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--precision bf16 runs on cpu or cuda (got device {device.type})")
    if device.type == "cpu" and not cpu_has_bf16_kernels():
        raise ConfigError("--precision bf16: this CPU has no bfloat16 kernels (they need AVX-512; it has "
                          f"{torch.backends.cpu.get_cpu_capability()}), where bf16 runs about 30x slower than "
                          "fp32; use --precision fp32 (the default)")


def cpu_has_bf16_kernels() -> bool:
    """Whether oneDNN runs bf16 on this CPU (AVX-512, natively with AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def activation_regularisation(h: torch.Tensor) -> torch.Tensor:
    """AR (Merity et al. 2018): mean(h^2) over every element of h [B, T, H] (the dropped outputs)."""
    return h.float().pow(2).mean()


def temporal_activation_regularisation(h: torch.Tensor) -> torch.Tensor:
    """TAR: mean((h_t - h_{t-1})^2) over h [B, T, H] (the undropped outputs); 0 for one step."""
    h = h.float()
    if h.shape[1] < 2:
        return h.new_zeros(())
    return (h[:, 1:] - h[:, :-1]).pow(2).mean()


class BatchLoss(NamedTuple):
    """What one training batch gives: `loss` is what backward() minimises (cross-entropy plus any AR and
    TAR penalties), `cross_entropy` the plain mean cross-entropy reported as train_loss."""

    loss: torch.Tensor
    state: Any  # the state to carry into the next batch (detached), or None
    correct: torch.Tensor | None  # number of correct argmax predictions (None: not a classifier)
    cross_entropy: torch.Tensor  # what train_loss reports


def batch_loss(model, batch, carry, device, config: TrainConfig | None = None) -> BatchLoss:
    """The loss of one batch under `config`'s precision and AR/TAR (None: fp32, no penalties)."""
    ar, tar = (config.ar, config.tar) if config is not None else (0.0, 0.0)
    precision = config.precision if config is not None else "fp32"
    inputs = batch.inputs.to(device, non_blocking=True)
    targets = batch.targets.to(device, non_blocking=True)
    penalised = ar > 0 or tar > 0
    with _autocast(device, precision):
        if penalised:
            logits, state, (raw, dropped) = model(inputs, carry if batch.carries_state else None,
                                                  batch.lengths, return_hidden=True)
        else:
            logits, state = model(inputs, carry if batch.carries_state else None, batch.lengths)
    flat = logits.float().reshape(-1, logits.shape[-1])
    cross_entropy = F.cross_entropy(flat, targets.reshape(-1))
    loss = cross_entropy
    if ar > 0:
        loss = loss + ar * activation_regularisation(dropped)
    if tar > 0:
        loss = loss + tar * temporal_activation_regularisation(raw)
    correct = (flat.detach().argmax(-1) == targets.reshape(-1)).sum()
    return BatchLoss(loss, detach_state(state) if batch.carries_state else None, correct, cross_entropy)


def optimizer_step(loss: torch.Tensor, optimizer, parameters, clip: float) -> None:
    """One descent step on `loss`, the same for every loop (language model and forecaster): fresh
    gradients, the norm clipped to `clip` (0: off), then the optimiser's update."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(parameters, clip)
    optimizer.step()


def check_finite(val_loss: float, model: torch.nn.Module) -> None:
    """Stop at the first evaluation whose loss or weights are inf/NaN: early stopping would otherwise never
    see an improvement and keep the weights of an earlier evaluation as if training had gone on."""
    if math.isfinite(val_loss) and all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        return
    raise TrainingDivergedError(f"training diverged: the validation loss is {val_loss} (or a weight is not "
                                f"finite); lower --lr or set --clip")


def check_regularisers(config: TrainConfig) -> None:
    """AR and TAR act on the outputs at every step: only the sequence objective has them."""
    if config.objective != "sequence":
        for flag, value in (("--ar", config.ar), ("--tar", config.tar)):
            if value > 0:
                raise ConfigError(f"{flag} needs --objective sequence (got {config.objective}, which "
                                  f"predicts from the last position only)")


# The names rnnlab._io.atomic_write gives its temp files: tempfile.mkstemp(prefix=".NAME.", suffix=".tmp"),
# whose random part is 8 characters of [a-z0-9_].
_TEMP_FILE = re.compile(r"\.[^/]+\.[a-z0-9_]{8}\.tmp")


def remove_stale_temp_files(model_dir: Path) -> list[Path]:
    """Delete the temp files a killed run's atomic writes left in `model_dir` (only rnnlab's own)."""
    removed = []
    try:
        entries = list(Path(model_dir).iterdir())
    except OSError:
        return removed
    for path in entries:
        if _TEMP_FILE.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


class _StopSignals:
    """SIGINT and SIGTERM set a flag that the loop honours between steps (main thread only).

    The loop then saves a checkpoint at a step boundary and exits with 128 + the signal number; further
    signals while it saves are ignored. The previous handlers come back when the loop ends.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                try:
                    if signal.getsignal(sig) is signal.SIG_IGN:
                        continue  # e.g. SIGINT in a background job: leave it ignored
                    self._previous[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):
                    pass
        return self

    def _handle(self, signum, _frame) -> None:
        if self.signum is None:
            self.signum = signum

    def __exit__(self, *_exc) -> None:
        for sig, previous in self._previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()


def total_steps_of(config: TrainConfig, steps_per_epoch: int) -> int | None:
    bounds = []
    if config.epochs is not None:
        bounds.append(config.epochs * steps_per_epoch)
    if config.max_steps is not None:
        bounds.append(config.max_steps)
    return min(bounds) if bounds else None


LossFn = Callable[..., BatchLoss]  # (model, batch, carried state, device, config) -> BatchLoss


def train(model: torch.nn.Module, batches, evaluate: Callable[[], dict[str, Any]] | None, config: TrainConfig,
          model_dir: Path | None, device: torch.device, resume: bool = False, hooks: Hooks | None = None,
          is_main: bool = True, ddp_model: torch.nn.Module | None = None,
          loss_fn: LossFn | None = None) -> RunResult:
    """Train `model` in place; model_dir gets checkpoints, metrics and, at the end, the best weights.

    `loss_fn` is the language model's `batch_loss` unless given. `batches` has `len()` (steps per epoch)
    and `epoch(epoch, start_step)`, which yields the same batches for the same arguments (what makes resume
    exact). `evaluate()` returns {"loss": ..., ...}; the lowest
    loss decides early stopping and the kept weights. With `evaluate=None` there is no validation and the
    last weights are kept. With `model_dir=None` nothing is written (no resume) and, when train returns,
    `model` holds the kept weights.

    `ddp_model` is the DistributedDataParallel wrapper when running under torchrun (gradients are
    averaged in its backward); I/O happens on the main rank only. SIGINT and SIGTERM stop the run at the
    next step boundary with a checkpoint written: RnnlabError with exit code 130 or 143.
    """
    check_regularisers(config)
    with _StopSignals() as stop:
        return _train(model, batches, evaluate, config, model_dir, device, resume, hooks, is_main,
                      ddp_model, stop, loss_fn or batch_loss)


def _train(model, batches, evaluate, config: TrainConfig, model_dir, device: torch.device, resume: bool,
           hooks: Hooks | None, is_main: bool, ddp_model, stop: _StopSignals, loss_fn: LossFn) -> RunResult:
    hooks = hooks or Hooks()
    net = ddp_model or model
    model_dir = Path(model_dir) if model_dir is not None else None
    if model_dir is None and resume:
        raise ConfigError("resume needs the model directory of the run")
    writes = is_main and model_dir is not None  # the main rank writes, and only where there is a directory
    if writes:
        remove_stale_temp_files(model_dir)
    kept: dict[str, torch.Tensor] | None = None  # the best weights, when there is no file to hold them
    optimizer = make_optimizer(model.parameters(), config)
    steps_per_epoch = len(batches)
    schedule = LRSchedule(config, total_steps_of(config, steps_per_epoch))
    stopper = EarlyStopping(config.patience, config.min_delta)
    step, epoch, step_in_epoch, carry, elapsed_before = 0, 0, 0, None, 0.0
    last_eval_step = -1
    history: list[dict[str, Any]] = []
    running = _Running()
    average = WeightAverage(model, config.ema) if config.ema else None
    if resume:
        meta, carry, averaged = ckpt.load_training_state(model_dir / ckpt.TRAINING_STATE, model, optimizer,
                                                         device, rank=distributed.rank())
        # A checkpoint holds every rank's lanes (one process's layout), so N ranks of B resume a run of
        # N x B ranks or one process of batch N*B alike.
        lanes = None if carry is None else (carry[0] if isinstance(carry, tuple) else carry).shape[1]
        world = distributed.world_size()
        if lanes is not None and lanes != config.batch_size * world:
            ranks = f" x {world} ranks" if world > 1 else ""
            raise ModelDirError(f"cannot resume: {model_dir / ckpt.TRAINING_STATE} carries the state of "
                                f"{lanes} rows, but the run has --batch-size {config.batch_size}{ranks}")
        carry = distributed.own_lanes(carry, config.batch_size)
        if average is not None and averaged:
            average.load(averaged)
        # (a run that turns --ema on only when resumed starts its average from the resumed weights)
        step, epoch, step_in_epoch = meta["step"], meta["epoch"], meta["step_in_epoch"]
        stopper.load_state_dict(meta["early_stopping"])
        schedule.load_state_dict(meta["schedule"])
        elapsed_before = meta.get("elapsed", 0.0)
        running.total, running.count, running.correct = meta.get("running", [0.0, 0, 0])
        if is_main:
            ckpt.truncate_metrics(model_dir, step)
        history = ckpt.read_metrics(model_dir)
        if history and history[-1].get("step") == step:
            last_eval_step = step  # the evaluation at this step is done (and in the early-stopping state)
        if meta.get("finished"):
            # A finished run resumes only if the new budget allows more steps.
            stopper.bad_evals = 0

    started = time.monotonic()
    budget_s = config.max_time * 60.0 if config.max_time else None
    pending_first_write = [hooks.before_first_write] if hooks.before_first_write else []

    def claim_model_dir() -> None:
        """Run the caller's before_first_write once, just before the loop's first write."""
        while pending_first_write:
            pending_first_write.pop()()

    def save_checkpoint(finished: bool = False) -> None:
        if model_dir is None:
            return
        # Every rank takes part in gathering the lanes and generators; only the main rank writes.
        lanes, rng_states = distributed.gather_lanes(carry), distributed.gather_rng_states(device)
        if not is_main:
            return
        meta = {"step": step, "epoch": epoch, "step_in_epoch": step_in_epoch,
                "early_stopping": stopper.state_dict(), "schedule": schedule.state_dict(),
                "elapsed": elapsed_before + time.monotonic() - started, "finished": finished,
                "running": [running.total, running.count, running.correct]}
        claim_model_dir()
        ckpt.save_training_state(model_dir / ckpt.TRAINING_STATE, model, optimizer, lanes, meta,
                                 averaged=average.tensors() if average else None, rng_states=rng_states)

    def stop_requested() -> int | None:
        """The signal that asked the run to stop, if any (agreed on by every rank under DDP)."""
        signum = stop.signum or 0
        if ddp_model is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([signum], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            signum = int(flag.item())
        return signum or None

    def interrupted(signum: int, finished: bool = False) -> RnnlabError:
        """Save at this step boundary (unless already saved); the error the CLI turns into 128+signum."""
        bar.close()
        if not finished:
            save_checkpoint()
        name = signal.Signals(signum).name
        return RnnlabError(f"interrupted by {name} at step {step}; checkpoint written to {model_dir}; "
                           f"continue with --resume", exit_code=128 + signum)

    def evaluated_weights():
        # With --ema, evaluation, early stopping and the kept weights all see the averaged weights.
        return average.swapped_in() if average else contextlib.nullcontext()

    def run_evaluation(kind: str) -> dict[str, Any]:
        nonlocal kept
        metrics, improved = {}, True  # no validation: the weights kept are the last
        if evaluate is not None:
            with evaluated_weights():
                # Rank 0's metrics on every rank: early stopping, the plateau schedule and the kept weights
                # then decide alike everywhere (a GPU's last bits may differ between ranks).
                metrics = distributed.from_main(evaluate())
                check_finite(metrics["loss"], model)
                improved = stopper.update(metrics["loss"], step, counts=kind != "final")
                if improved and writes:
                    claim_model_dir()
                    ckpt.save_weights(model_dir / ckpt.WEIGHTS, model)
                elif improved and model_dir is None:
                    kept = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if kind != "final":
                schedule.observe_validation(metrics["loss"])
        record = {"step": step, "epoch": epoch + (step_in_epoch / max(steps_per_epoch, 1)), "kind": kind,
                  **{f"val_{k}": v for k, v in metrics.items()}, "train_loss": running.mean(),
                  "train_accuracy": running.accuracy(), "lr": optimizer.param_groups[0]["lr"],
                  "best": improved, "seconds": round(elapsed_before + time.monotonic() - started, 2)}
        history.append(record)
        if writes:
            claim_model_dir()
            ckpt.append_metrics(model_dir, record)
        if is_main and hooks.on_eval:
            hooks.on_eval(record)
        if kind != "final":
            running.reset()
        return record

    total = schedule.total_steps
    bar = tqdm(total=total, initial=step, disable=(not is_main) or hooks.progress is False or None,
               unit="step", dynamic_ncols=True, leave=False)
    stopped = "budget"
    in_step = False
    try:
        while True:
            signum = stop_requested()
            if signum:
                raise interrupted(signum)
            if config.epochs is not None and epoch >= config.epochs:
                stopped = "epochs"
                break
            for batch in batches.epoch(epoch, step_in_epoch):
                if config.max_steps is not None and step >= config.max_steps:
                    stopped = "max_steps"
                    break
                # --max-time counts the whole run, resumed or not, like --max-steps.
                # (the slowest rank's clock under DDP: every rank stops at one step, with one learning rate;
                # agreed on only when a time budget reads it, one collective per step less otherwise)
                spent = elapsed_before + time.monotonic() - started
                if budget_s is not None:
                    spent = distributed.agreed_max(spent, device)
                if budget_s is not None and spent >= budget_s:
                    stopped = "max_time"
                    break
                progress = spent / budget_s if budget_s else None
                schedule.apply(optimizer, step, progress)
                tick = time.perf_counter()
                in_step = True
                loss, carry, correct, cross_entropy = loss_fn(net, batch, carry, device, config)
                optimizer_step(loss, optimizer, model.parameters(), config.clip)
                step += 1
                if average is not None:
                    average.update(step)
                step_in_epoch += 1
                in_step = False
                value = loss.detach().item()
                if not math.isfinite(value):
                    raise TrainingDivergedError(f"training diverged at step {step} (loss {value}); lower --lr "
                                                f"or set --clip")
                # train_loss stays the plain cross-entropy, comparable with and without AR/TAR.
                if cross_entropy is not loss:
                    value = cross_entropy.detach().item()
                running.add(value, batch.targets.numel(), None if correct is None else int(correct))
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}",
                                tok_s=f"{batch.targets.numel() / (time.perf_counter() - tick):,.0f}")
                if config.eval_every and step % config.eval_every == 0:
                    run_evaluation("step")
                    last_eval_step = step
                    if stopper.should_stop:
                        break
                # (a step that ends the epoch is saved after the epoch's evaluation, below: a resumed run
                # then starts the next epoch with that evaluation in its early-stopping state)
                if step % config.checkpoint_every == 0 and step_in_epoch < steps_per_epoch:
                    save_checkpoint()
                # Between steps: nothing of the next one is computed yet (batch, RNG, carried state).
                signum = stop_requested()
                if signum:
                    raise interrupted(signum)
            else:
                # The epoch ran to its end.
                if last_eval_step != step:
                    run_evaluation("epoch")
                    last_eval_step = step
                if hooks.on_epoch_end and is_main and config.sample_every and \
                        (epoch + 1) % config.sample_every == 0:
                    hooks.on_epoch_end(epoch + 1)
                epoch += 1
                step_in_epoch = 0
                carry = None
                if step % config.checkpoint_every == 0:
                    save_checkpoint()
                if stopper.should_stop:
                    stopped = "early_stopping"
                    break
                continue
            if stopper.should_stop:
                stopped = "early_stopping"
            break
    except KeyboardInterrupt:
        # Only where no handler could be installed (SIGINT is a flag otherwise): a step cut halfway
        # would save mixed state, so then the last checkpoint stands.
        bar.close()
        if in_step:
            raise RnnlabError(f"interrupted during step {step + 1}; continue from the last checkpoint in "
                              f"{model_dir} with --resume", exit_code=130) from None
        save_checkpoint()
        raise RnnlabError(f"interrupted at step {step}; checkpoint written to {model_dir}; continue with "
                          f"--resume", exit_code=130) from None
    bar.close()
    if stop.signum:
        raise interrupted(stop.signum)
    if last_eval_step != step and step > 0:
        run_evaluation("final")
    save_checkpoint(finished=True)
    if writes and (evaluate is None or not (model_dir / ckpt.WEIGHTS).exists()):
        with evaluated_weights():
            ckpt.save_weights(model_dir / ckpt.WEIGHTS, model)
    if kept is not None:
        model.load_state_dict(kept)
    if stop.signum:
        # Asked to stop while finishing: everything is saved (a finished checkpoint); --resume completes.
        raise interrupted(stop.signum, finished=True)
    evals = [r for r in history if "val_loss" in r]
    best = min(evals, key=lambda r: r["val_loss"]) if evals else None
    return RunResult(step=step, epoch=epoch, stopped=stopped, best=best, last=history[-1] if history else None,
                     seconds=elapsed_before + time.monotonic() - started, history=history)


class _Running:
    """Training loss and next-token accuracy averaged since the last evaluation."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total, self.count, self.correct = 0.0, 0, 0

    def add(self, loss: float, n: int, correct: int | None) -> None:
        self.total += loss * n
        self.count += n
        self.correct = None if correct is None or self.correct is None else self.correct + correct

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def accuracy(self) -> float | None:
        return self.correct / self.count if self.count and self.correct is not None else None
