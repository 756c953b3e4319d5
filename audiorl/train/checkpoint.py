"""Checkpoints: one directory per save, written atomically, loaded without unpickling code.

Layout of ``<exp_dir>/checkpoints/``::

    step_<N>/model.safetensors   weights (safetensors: no code, mmap-able, shared tensors de-duplicated)
    step_<N>/optimizer.pt        optimizer.state_dict()
    step_<N>/scheduler.pt        scheduler.state_dict()
    step_<N>/trainer_state.pt    step, epoch, batches consumed, RNG states (every rank), valid history
    step_<N>/extra_state.pt      Task.extra_state() (only when the task has some)
    step_<N>/config.yaml         the resolved config
    step_<N>/meta.json           step, valid loss (for picking the best N), time; written last
    latest                       "step_<N>", replaced after the directory is in place

A save writes into ``.tmp_step_<N>.<pid>/``, fsyncs every file and the directory, then renames it to
``step_<N>`` (atomic on POSIX) and only then updates ``latest``. A kill at any moment leaves either the
previous state or the new one; leftover ``.tmp_*`` dirs are removed at the next start. The ``.pt``
files hold only tensors and plain containers and are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any, Iterable

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import _remove_duplicate_names, load_file, load_model, save_file
from torch import nn

from audiorl.config import dump_yaml, flatten
from audiorl.log import get_logger

logger = get_logger(__name__)

FILES = ("model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.pt", "config.yaml", "meta.json")
_STEP_RE = re.compile(r"^step_(\d+)$")


class CheckpointError(RuntimeError):
    """A missing, incomplete or incompatible checkpoint; the message says what to do."""


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module inside DistributedDataParallel (or torch.compile's wrapper)."""
    from torch.nn.parallel import DistributedDataParallel
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


# ----------------------------------------------------------------------------------------------------
# Finding checkpoints
# ----------------------------------------------------------------------------------------------------

def is_complete(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and all((p / f).is_file() for f in FILES)


def list_checkpoints(root: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete ``step_<N>`` checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), root / d) for d in os.listdir(root) if (m := _STEP_RE.match(d))]
    return sorted((s, p) for s, p in found if is_complete(p))


def find_latest(root: str | os.PathLike) -> Path | None:
    """The checkpoint ``latest`` names if complete, else the highest complete step, else None."""
    root = Path(root)
    pointer = root / "latest"
    if pointer.is_file():
        cand = root / pointer.read_text().strip()
        if is_complete(cand):
            return cand
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def resolve_resume(root: str | os.PathLike, resume: str) -> Path | None:
    """Apply ``train.resume``: auto | latest | never | <checkpoint dir>. Returns the dir or None."""
    latest = find_latest(root)
    if resume == "auto":
        return latest
    if resume == "latest":
        if latest is None:
            raise CheckpointError(f"train.resume=latest but {root} holds no complete checkpoint; use "
                                  "resume=auto to start fresh when there is none")
        return latest
    if resume == "never":
        if latest is not None:
            raise CheckpointError(f"train.resume=never but {latest} exists: use a fresh exp dir, remove "
                                  f"{root}, or resume=auto")
        return None
    p = Path(resume)
    if not p.exists():
        raise CheckpointError(f"requested checkpoint {p} does not exist (train.resume); "
                              f"available: {[str(q) for _, q in list_checkpoints(root)] or 'none'}")
    if not is_complete(p):
        missing = [f for f in FILES if not (p / f).is_file()]
        raise CheckpointError(f"requested checkpoint {p} is incomplete (missing {', '.join(missing)}); "
                              "pick another one or resume=auto")
    return p


# ----------------------------------------------------------------------------------------------------
# RNG state (weights_only-safe: tensors, ints, tuples)
# ----------------------------------------------------------------------------------------------------

def get_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state(), "cuda": []}
    try:
        import numpy as np
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        # numpy arrays are not weights_only-loadable: store the key array as an int64 tensor.
        state["numpy"] = (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"].cpu())
    if "numpy" in state:
        import numpy as np
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if state.get("cuda") and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            logger.warning("checkpoint has CUDA RNG states for %d devices, this process sees %d: CUDA RNG "
                           "not restored (resume is not bit-exact)", len(state["cuda"]), torch.cuda.device_count())


# ----------------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------------

def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _readable(path: Path) -> None:
    """safetensors creates files 0600; give them the umask's usual mode like every other file here."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _torch_save(obj: Any, path: Path) -> None:
    with open(path, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _remove_dir(path: Path) -> None:
    """Rename first so that a half-deleted directory never looks like a checkpoint."""
    trash = path.parent / f".trash_{path.name}.{os.getpid()}.{time.monotonic_ns()}"
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _save_weights(state: dict[str, torch.Tensor], file: Path) -> None:
    """safetensors' save_model on a state dict: tied tensors are stored once (the dropped names in metadata)."""
    state = dict(state)
    metadata: dict[str, str] = {}
    for kept, dropped in _remove_duplicate_names(state).items():
        for name in dropped:
            metadata[name] = kept
            del state[name]
    save_file({k: v.contiguous() for k, v in state.items()}, str(file), metadata=metadata or None)


def save_checkpoint(root: str | os.PathLike, step: int, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    scheduler: Any | None, trainer_state: dict[str, Any], config: Any,
                    extra_state: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
                    model_state: dict[str, torch.Tensor] | None = None,
                    optimizer_state: dict[str, Any] | None = None) -> Path:
    """Write ``root/step_<step>`` atomically and point ``root/latest`` at it. Call on rank 0 only.

    ``model_state`` / ``optimizer_state``: already gathered full states (FSDP, audiorl/train/fsdp.py) to write
    instead of ``model.state_dict()`` / ``optimizer.state_dict()``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f".tmp_step_{step}.{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    weights = model_state if model_state is not None else unwrap(model).state_dict()
    _save_weights(weights, tmp / "model.safetensors")  # de-duplicates tied weights
    _readable(tmp / "model.safetensors")
    _fsync_path(tmp / "model.safetensors")
    if optimizer_state is None:
        optimizer_state = optimizer.state_dict() if optimizer is not None else {}
    _torch_save(optimizer_state, tmp / "optimizer.pt")
    _torch_save(scheduler.state_dict() if scheduler is not None else {}, tmp / "scheduler.pt")
    _torch_save(trainer_state, tmp / "trainer_state.pt")
    if extra_state:
        _torch_save(extra_state, tmp / "extra_state.pt")
    _write_text(tmp / "config.yaml", dump_yaml(config) if config is not None else "{}\n")
    _write_text(tmp / "meta.json", json.dumps({"step": step, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                               **(meta or {})}) + "\n")
    _fsync_path(tmp)
    if final.exists():  # re-saving a step (resumed from an older checkpoint): replace it
        _remove_dir(final)
    os.rename(tmp, final)
    pointer_tmp = root / f".latest.{os.getpid()}"
    _write_text(pointer_tmp, final.name + "\n")
    os.replace(pointer_tmp, root / "latest")
    _fsync_path(root)
    return final


def cleanup_partial(root: str | os.PathLike) -> None:
    """Remove temporary/trash directories left by a killed run."""
    root = Path(root)
    if not root.is_dir():
        return
    for d in os.listdir(root):
        if d.startswith((".tmp_step_", ".trash_", ".latest.")):
            p = root / d
            logger.info("removing leftover %s from an interrupted run", p)
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def read_meta(ckpt: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(ckpt) / "meta.json").read_text())


def prune_checkpoints(root: str | os.PathLike, keep_last_n: int,
                      protect: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Delete all but the newest ``keep_last_n`` checkpoints, sparing ``protect`` and ``latest``'s target."""
    if keep_last_n <= 0:
        return []
    found = list_checkpoints(root)
    keep = {p.resolve() for _, p in found[-keep_last_n:]} | {Path(p).resolve() for p in protect}
    latest = find_latest(root)
    if latest is not None:
        keep.add(latest.resolve())
    removed = []
    for _, p in found:
        if p.resolve() not in keep:
            _remove_dir(p)
            removed.append(p)
    return removed


# ----------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------

def _weights_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p / "model.safetensors" if p.is_dir() else p


def _shape_report(file: Path, model: nn.Module) -> list[str]:
    """Differences between the tensors in ``file`` and ``model.state_dict()``, one line each."""
    sd = model.state_dict()
    with safe_open(str(file), framework="pt") as fh:
        shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    problems = [f"{k}: {list(shapes[k])} in the checkpoint vs {list(v.shape)} in the model"
                for k, v in sd.items() if k in shapes and tuple(v.shape) != shapes[k]]
    # Tied weights are saved once: a model key is present if any key sharing its storage is.
    groups: dict[tuple, list[str]] = {}
    for k, v in sd.items():
        groups.setdefault((v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape), v.device), []).append(k)
    missing = [ks[0] for ks in groups.values() if not any(k in shapes for k in ks)]
    unexpected = [k for k in shapes if k not in sd]
    if missing:
        problems.append(f"missing in the checkpoint: {', '.join(missing[:5])}"
                        + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
    if unexpected:
        problems.append(f"not in the model: {', '.join(unexpected[:5])}"
                        + (f" (+{len(unexpected) - 5} more)" if len(unexpected) > 5 else ""))
    return problems


def config_diff(ckpt: str | os.PathLike, config: Any) -> list[tuple[str, Any, Any]]:
    """(key, value in checkpoint, value now) for every differing config key."""
    path = Path(ckpt) / "config.yaml"
    if config is None or not path.is_file():
        return []
    import yaml
    old = flatten(yaml.safe_load(path.read_text()) or {})
    new = flatten(yaml.safe_load(dump_yaml(config)) or {})  # round-trip so tuples compare as lists
    return [(k, old.get(k, "<absent>"), new.get(k, "<absent>")) for k in sorted(set(old) | set(new))
            if old.get(k, "<absent>") != new.get(k, "<absent>")]


def check_compatible(ckpt: str | os.PathLike, model: nn.Module, config: Any = None) -> None:
    """Raise CheckpointError (not a size-mismatch traceback) when the weights cannot load into ``model``."""
    model = unwrap(model)
    file = _weights_file(ckpt)
    if not file.is_file():
        raise CheckpointError(f"{file} does not exist")
    problems = _shape_report(file, model)
    diffs = config_diff(ckpt, config) if Path(ckpt).is_dir() else []
    if problems:
        if diffs:
            head = "; ".join(f"{k}={a} but the config says {b}" for k, a, b in diffs[:3])
            more = f" (+{len(diffs) - 3} more config differences)" if len(diffs) > 3 else ""
            msg = f"checkpoint {ckpt} has {head}{more}"
        else:
            msg = f"checkpoint {ckpt} does not match the model built from this config (did the model code change?)"
        details = "\n  ".join(problems[:8] + ([f"... {len(problems) - 8} more"] if len(problems) > 8 else []))
        raise CheckpointError(f"{msg}: use a matching config or a fresh exp dir\n  {details}")
    if diffs:
        logger.warning("resuming from %s with a different config: %s", ckpt,
                       "; ".join(f"{k}: {a} -> {b}" for k, a, b in diffs[:10]))


def load_model_weights(model: nn.Module, path: str | os.PathLike, config: Any = None) -> None:
    """Load weights strictly from a checkpoint dir or a .safetensors file, with readable errors."""
    check_compatible(path, model, config)
    load_model(unwrap(model), str(_weights_file(path)), strict=True)


def _load_pt(path: Path) -> Any:
    # weights_only: only tensors and plain containers; a checkpoint can never run code on load.
    return torch.load(path, map_location="cpu", weights_only=True)


def load_optimizer(optimizer: torch.optim.Optimizer, ckpt: str | os.PathLike, model: nn.Module) -> None:
    """Load ``ckpt/optimizer.pt``: torch's id-keyed format (DDP / one process) or the name-keyed full state an FSDP
    run writes (audiorl/train/fsdp.py), which loads into a sharded or a plain model alike."""
    from audiorl.train import fsdp

    sd = _load_pt(Path(ckpt) / "optimizer.pt")
    by_name = any(isinstance(k, str) for k in sd.get("state", {}))
    if by_name:
        fsdp.load_optimizer_state(unwrap(model), optimizer, sd)
    elif fsdp.is_fsdp(model) and sd.get("state"):
        raise CheckpointError(f"{ckpt}/optimizer.pt was written without FSDP (parameter ids, not names) and cannot "
                              "be loaded into a sharded model: resume with train.distributed=ddp, or start a fresh "
                              f"run from its weights (train.init_from={ckpt})")
    else:
        optimizer.load_state_dict(sd)


def load_checkpoint(ckpt: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any | None = None, config: Any = None, weights: bool = True) -> dict[str, Any]:
    """Restore model/optimizer/scheduler in place; return ``{"trainer_state", "extra_state", "meta"}``.

    ``weights=False``: the model already holds them (FSDP loads the weights before sharding the model)."""
    ckpt = Path(ckpt)
    if not is_complete(ckpt):
        raise CheckpointError(f"{ckpt} is not a complete checkpoint directory")
    if weights:
        load_model_weights(model, ckpt, config)
    if optimizer is not None:
        try:
            load_optimizer(optimizer, ckpt, model)
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"optimizer state in {ckpt} does not fit this model's parameters ({e}): "
                                  "use a matching config or a fresh exp dir") from None
    if scheduler is not None:
        scheduler.load_state_dict(_load_pt(ckpt / "scheduler.pt"))
    extra = ckpt / "extra_state.pt"
    return {"trainer_state": _load_pt(ckpt / "trainer_state.pt"),
            "extra_state": _load_pt(extra) if extra.is_file() else {},
            "meta": read_meta(ckpt)}


# ----------------------------------------------------------------------------------------------------
# Averaging
# ----------------------------------------------------------------------------------------------------

def average_checkpoints(paths: Iterable[str | os.PathLike]) -> dict[str, torch.Tensor]:
    """Element-wise mean of model weights (float tensors in float64, cast back; ints floor-divided)."""
    paths = list(paths)
    if not paths:
        raise ValueError("average_checkpoints: no checkpoints given")
    acc: dict[str, torch.Tensor] = {}
    for i, p in enumerate(paths):
        sd = load_file(str(_weights_file(p)))
        if i == 0:
            ref_keys = set(sd)
            acc = {k: v.double() if v.is_floating_point() else v.clone().long() for k, v in sd.items()}
            dtypes = {k: v.dtype for k, v in sd.items()}
            continue
        if set(sd) != ref_keys:
            raise CheckpointError(f"cannot average {p} with {paths[0]}: different tensor names "
                                  f"({sorted(set(sd) ^ ref_keys)[:5]})")
        for k, v in sd.items():
            if v.shape != acc[k].shape:
                raise CheckpointError(f"cannot average {p} with {paths[0]}: {k} is {list(v.shape)} vs "
                                      f"{list(acc[k].shape)}")
            acc[k] += v.double() if v.is_floating_point() else v.long()
    n = len(paths)
    return {k: (v / n if v.is_floating_point() else torch.div(v, n, rounding_mode="floor")).to(dtypes[k])
            for k, v in acc.items()}


def best_checkpoints(root: str | os.PathLike, n: int) -> list[tuple[int, float, Path]]:
    """The ``n`` complete checkpoints with the lowest recorded valid loss: (step, loss, path)."""
    scored = []
    for step, p in list_checkpoints(root):
        loss = read_meta(p).get("valid_loss")
        if loss is not None:
            scored.append((float(loss), step, p))
    return [(s, l, p) for l, s, p in sorted(scored)[:n]]


def write_best_average(exp_dir: str | os.PathLike, n: int) -> Path | None:
    """Average the best ``n`` checkpoints by valid loss into ``valid.loss.ave<n>_best.safetensors``."""
    exp_dir = Path(exp_dir)
    best = best_checkpoints(exp_dir / "checkpoints", n)
    if not best:
        logger.warning("average_best_n=%d: no checkpoint has a valid loss (no Task.valid?); nothing averaged", n)
        return None
    out = exp_dir / f"valid.loss.ave{n}_best.safetensors"
    info_path = out.with_suffix(".json")
    if out.is_file() and info_path.is_file():
        # Same checkpoints as last time (a rerun of a finished stage): keep the file and its mtime.
        done = json.loads(info_path.read_text()).get("averaged", [])
        if [(d["step"], d["path"]) for d in done] == [(s, str(p)) for s, _, p in best]:
            logger.info("%s is up to date (steps %s)", out, [s for s, _, _ in best])
            return out
    tmp = out.with_name(out.name + ".tmp")
    save_file(average_checkpoints([p for _, _, p in best]), str(tmp))
    _readable(tmp)
    os.replace(tmp, out)
    info = {"criterion": "valid.loss", "mode": "min", "requested": n,
            "averaged": [{"step": s, "valid_loss": l, "path": str(p)} for s, l, p in best]}
    _write_text(info_path, json.dumps(info, indent=1) + "\n")
    logger.info("averaged %d checkpoints (steps %s) -> %s", len(best), [s for s, _, _ in best], out)
    return out


def final_weights(exp_dir: str | os.PathLike) -> Path | None:
    """The weights a finished training stage is decoded with: the best-N average its ``config.yaml`` asks for
    (``train.average_best_n``), else the latest checkpoint; None if there is neither. Another run's average with a
    different N in the same dir is never picked by mistake (a lexical or mtime choice among ave*_best files would)."""
    exp_dir = Path(exp_dir)
    n = 0
    cfg = exp_dir / "config.yaml"
    if cfg.is_file():
        n = int(((yaml.safe_load(cfg.read_text()) or {}).get("train") or {}).get("average_best_n") or 0)
    ave = exp_dir / f"valid.loss.ave{n}_best.safetensors"
    if n > 0 and ave.is_file():
        return ave
    return find_latest(exp_dir / "checkpoints")
