"""Look inside a guessing-game training run while it learns (or sits at chance).

Trains a config for ``--batches`` batches and, every ``--every`` batches, prints one row:
the training loss, the gradient norm of each part of the model (policy, read-out, the rest,
mean over the last ``--every`` batches), and, on fixed probe episodes, the last guess's
error per output column (1.0 = guessing 0; column 0's owner is the expert that receives
the error), how far each column's guess moves during the lifetime, and the state norm of
the experts that own an output vs the others. A plateau at chance shows up as columns that
do not move, or gradients that vanish.

    python benchmarks/plateau_probe.py --config guessing_game_random --seed 0 --batches 600
"""

from __future__ import annotations

import argparse
import math

import lightning.pytorch as pl
import torch

from badger_graph.cli import _lightning_cli, quiet_lightning


class Probe(pl.Callback):
    """Collects gradient norms each batch and probes the agent every ``every`` batches."""

    def __init__(self, every: int, probe_agents: int, probe_seed: int) -> None:
        self.every, self.probe_agents, self.probe_seed = every, probe_agents, probe_seed
        self.grads: dict[str, list[float]] = {}
        self.losses: list[float] = []
        self.rows: list[dict] = []

    def on_after_backward(self, trainer, module) -> None:
        parts: dict[str, float] = {}
        for name, p in module.named_parameters():
            if p.grad is None:
                continue
            part = name.split(".")[1] if name.startswith("agent.") else name.split(".")[0]
            parts[part] = parts.get(part, 0.0) + float(p.grad.pow(2).sum())
        for part, sq in parts.items():
            self.grads.setdefault(part, []).append(math.sqrt(sq))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if outputs is not None and "loss" in outputs:
            self.losses.append(float(outputs["loss"]))
        step = trainer.global_step
        if step % self.every:
            return
        row = {"batch": step, "loss": sum(self.losses) / max(1, len(self.losses))}
        row.update({f"grad {k}": sum(v) / len(v) for k, v in sorted(self.grads.items())})
        self.grads, self.losses = {}, []
        was = module.training
        module.eval()
        with torch.no_grad():
            life = module.lifetime(self.probe_seed, self.probe_agents)
        module.train(was)
        target = life.episode.target  # [B, d]
        last = life.actions[-1]
        col_err = ((last - target).pow(2).mean(0) / target.pow(2).mean(0)).tolist()
        moves = life.actions.std(0).mean(0).tolist()  # per column: movement over the lifetime
        h = life.state.h.norm(dim=-1)
        owner = life.state.output_owners()[0]
        is_owner = torch.zeros_like(h, dtype=torch.bool)
        is_owner[owner] = True
        for j, (e, m) in enumerate(zip(col_err, moves, strict=True)):
            row[f"err col{j}"] = e
            row[f"move col{j}"] = m
        row["|h| owners"] = float(h[is_owner].mean())
        row["|h| others"] = float(h[~is_owner].mean()) if bool((~is_owner).any()) else float("nan")
        row["final error"] = float(life.errors[-1].mean())
        self.rows.append(row)
        print(" | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in row.items()), flush=True)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--seed", type=int, default=0, help="seed_everything and data.seed")
    p.add_argument("--batches", type=int, default=600)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--probe_agents", type=int, default=512)
    p.add_argument("--out", default="runs/plateau_probe")
    p.add_argument("flags", nargs="*", help="more `badger fit` flags, after --")
    a = p.parse_args()
    args = [
        "--config", a.config, "--seed_everything", str(a.seed), "--data.seed", str(a.seed),
        "--trainer.max_steps", str(a.batches), "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", f"{a.out}/seed_{a.seed}",
        "--trainer.limit_val_batches", "0",
        *a.flags,
    ]  # fmt: skip
    cli = _lightning_cli(args, run=False)
    probe = Probe(a.every, a.probe_agents, probe_seed=10_000 + a.seed)
    cli.trainer.callbacks.append(probe)
    with quiet_lightning():
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)


if __name__ == "__main__":
    main()
