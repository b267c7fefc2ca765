"""The trainer's side of the method contract: optimizers, LR schedules, scalers, data-parallel
wrappers and the speed plan, behind the calls a method makes (optimize, parallel, autocast)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from pixmorph.config import TrainConfig
from pixmorph.methods.base import Method, OptimizerSpec, Runtime
from pixmorph.speed.plan import SpeedPlan, adam_options, set_adam_impl
from pixmorph.training.budget import budget_decay


def linear_decay(total_steps: int, decay_start: float) -> Callable[[int], float]:
    """LR factor: 1 for the first `decay_start` fraction of steps, then linearly down to 0."""
    start = int(total_steps * decay_start)
    span = max(1, total_steps - start)

    def factor(step: int) -> float:
        return 1.0 if step < start else max(0.0, 1.0 - (step - start) / span)

    return factor


def step_decay(every: int, gamma: float) -> Callable[[int], float]:
    """LR factor: multiplied by `gamma` every `every` steps."""

    def factor(step: int) -> float:
        return gamma ** (step // every)

    return factor


def lr_factor(
    t: TrainConfig, progress: Callable[[], float] | None = None
) -> Callable[[int], float]:
    """The LR schedule train.lr_policy names; with `progress` (time budget) linear spans it."""
    if t.lr_policy == "step":
        return step_decay(t.lr_step_every, t.lr_gamma)
    if t.lr_policy == "constant":
        return lambda step: 1.0
    if progress is not None:
        return budget_decay(progress, t.decay_start)
    return linear_decay(t.steps, t.decay_start)


def param_groups(spec: OptimizerSpec, lr: float) -> list[dict[str, Any]]:
    """The spec's parameters as Adam param groups; a group's "lr_scale" scales the LR."""
    items = list(spec.params)
    if not items or not isinstance(items[0], dict):
        return [{"params": items, "lr": lr}]
    groups = []
    for g in items:
        g = dict(g)
        g["lr"] = lr * g.pop("lr_scale", 1.0)
        groups.append(g)
    return groups


class TrainingRuntime(Runtime):
    """Builds and steps every optimizer a method declares, under the run's speed plan."""

    def __init__(
        self,
        method: Method,
        train: TrainConfig,
        plan: SpeedPlan,
        progress: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(method.device, plan.precision)
        self.plan = plan
        self.optimizers: dict[str, Optimizer] = {}
        self.schedulers: dict[str, LambdaLR] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        # data-parallel wrappers by id of the wrapped network; a plain dict, so state_dict keys
        # never gain a "module." prefix
        self._parallel: dict[int, nn.Module] = {}
        factor = lr_factor(train, progress)
        for name, spec in method.optimizers().items():
            lr = train.lr if spec.lr is None else spec.lr
            betas = spec.betas or (train.beta1, train.beta2)
            opt = torch.optim.Adam(
                param_groups(spec, lr),
                lr=lr,
                betas=betas,
                weight_decay=spec.weight_decay,
                **adam_options(plan.adam),
            )
            self.optimizers[name] = opt
            self.schedulers[name] = LambdaLR(opt, factor)
            self.scalers[name] = torch.amp.GradScaler(
                method.device.type, enabled=plan.precision == "fp16"
            )

    @property
    def batch_passes(self) -> bool:
        return self.plan.batch_passes

    def optimize(self, name: str, loss: Tensor) -> None:
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def parallel(self, net: nn.Module) -> nn.Module:
        return self._parallel.get(id(net), net)

    def end_step(self) -> None:
        """Advance every LR schedule by one step."""
        for sched in self.schedulers.values():
            sched.step()

    def completed(self, step: int) -> bool:
        """Whether every schedule has advanced past `step` (the step finished)."""
        return all(s.last_epoch >= step for s in self.schedulers.values())

    def learning_rates(self) -> dict[str, float]:
        """The current LR of each optimizer, for logging."""
        return {f"lr_{k}": o.param_groups[0]["lr"] for k, o in self.optimizers.items()}

    def distribute(self, method: Method, device_ids: list[int] | None = None) -> None:
        """Wrap every trained network in DistributedDataParallel (call once, after loading)."""
        from torch.nn.parallel import DistributedDataParallel

        trained = {
            id(p) for o in self.optimizers.values() for g in o.param_groups for p in g["params"]
        }
        for _, net in method.named_children():
            params = list(net.parameters())
            if params and all(id(p) in trained for p in params):
                self._parallel[id(net)] = DistributedDataParallel(net, device_ids=device_ids)

    def undistribute(self) -> None:
        """Drop the data-parallel wrappers (before the process group goes away)."""
        self._parallel.clear()

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, schedule and scaler state, as a checkpoint stores it."""
        return {
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict() returned."""
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
            set_adam_impl(o, self.plan.adam)  # the saved flags may name another device's kernel
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        for k, s in self.scalers.items():
            if state.get("scalers", {}).get(k):
                s.load_state_dict(state["scalers"][k])
