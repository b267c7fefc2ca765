"""Speed settings for training and inference: channels_last, fused Adam, torch.compile.

Every fast path here must give the same gradients as plain fp32 NCHW eager training (up to
rounding); tests/test_speed.py compares them. Precision (fp32/bf16/fp16) is chosen in device.py.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from pixmorph.config import TrainConfig
from pixmorph.device import resolve_precision
from pixmorph.errors import ConfigError
from pixmorph.speed.allocator import resolve_allocator, reuse_freed_memory
from pixmorph.speed.smallconv import SMALL_MAP_CONVS, restore_torch_convs, use_matmul_for_small_maps

log = logging.getLogger(__name__)

ADAM_IMPLS = ("auto", "fused", "foreach", "loop")


@dataclass(frozen=True)
class SpeedPlan:
    """The resolved speed settings of a run (no `auto` left)."""

    precision: str = "fp32"  # fp32 | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    adam: str = "foreach"  # fused | foreach | loop
    small_maps: bool = False  # convolutions on small maps as one matmul (smallconv.py)
    allocator: str = "system"  # reuse | system (allocator.py)
    batch_passes: bool = True  # passes through one network as one batch (Method.batches_passes)
    origin: str = "rules"  # how the `auto` values were chosen (calibrate.py), for the log


# torch.compile costs 1-3 minutes at the first step and saves ~0.2 s of a ~1.9 s CycleGAN step
# at 128x128 on the benchmark CPU in bf16: `auto` compiles from this many steps on. In fp32 on a
# CPU it lost: a compiled CycleGAN-128 step's best of 6 was 13-19 % slower than eager with
# AVX2 kernels (docs/speed.md), so `auto` compiles CPU runs only in bf16.
COMPILE_MIN_STEPS = 2000


def resolve_speed(
    train: TrainConfig, device: torch.device, image_size: int = 256, compile_helps: bool = False
) -> SpeedPlan:
    """Turn the `auto` speed settings of `train` into what is fastest on `device`.

    `compile_helps`: the method's networks are of a kind compiling speeds up (Method.compile_pays).
    """
    precision = resolve_precision(train.precision, device, image_size)
    channels_last = train.channels_last
    if channels_last == "auto":
        # measured on CPU: channels_last slows eager training, with or without bf16 (it pays
        # for inference only). On CUDA it is the layout tensor cores want under bf16/fp16.
        channels_last = device.type == "cuda" and precision != "fp32"
    small_maps = train.small_maps
    if small_maps == "auto":
        # measured on CPU (benchmarks/train_speed.py); GPU libraries handle small maps well
        small_maps = device.type == "cpu"
    compile_ = train.compile
    if compile_ == "auto":
        long_run = train.steps >= COMPILE_MIN_STEPS
        pays_here = device.type == "cuda" or (device.type == "cpu" and precision != "fp32")
        compile_ = compile_helps and long_run and pays_here
        compile_ = compile_ and compile_unavailable() is None
    return SpeedPlan(
        precision,
        bool(channels_last),
        bool(compile_),
        resolve_adam(train.adam, device),
        bool(small_maps),
        resolve_allocator(train.allocator, device.type),
        # measured on a CPU in bf16 (Zen 4): three larger CycleGAN passes beat six by 8 %; with
        # AVX2 fp32 kernels neither won; on an unmeasured class calibration times both
        train.batch_passes is not False,
    )


def resolve_adam(impl: str, device: torch.device) -> str:
    """`auto`: the fused (single-kernel) Adam where torch has one for the device, else foreach."""
    if impl not in ADAM_IMPLS:
        raise ConfigError(f"train.adam={impl!r}: choose one of {', '.join(ADAM_IMPLS)}")
    if impl == "auto":
        return "fused" if device.type in _fused_adam_devices() else "foreach"
    return impl


def _fused_adam_devices() -> list[str]:
    """Device types this torch has fused optimizer kernels for (CPU since torch 2.4)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        return list(_get_fused_kernels_supported_devices())
    except ImportError:  # torch moved it: CUDA has had fused Adam the longest
        return ["cuda"]


def adam_options(impl: str) -> dict[str, bool]:
    """Keyword arguments for torch.optim.Adam that select an implementation."""
    if impl == "fused":
        return {"fused": True}
    if impl == "foreach":
        return {"foreach": True}
    return {"foreach": False, "fused": False}  # the plain per-parameter loop


def set_adam_impl(opt: torch.optim.Optimizer, impl: str) -> None:
    """Re-apply an implementation after load_state_dict (which restores the saved flags)."""
    fused = impl == "fused"
    for group in opt.param_groups:
        group["fused"] = fused
        group["foreach"] = impl == "foreach"
    for p, state in opt.state.items():
        step = state.get("step")
        if isinstance(step, Tensor):
            # the fused kernel keeps its step count on the parameter's device, the others on CPU
            state["step"] = step.to(p.device if fused else "cpu", torch.float32)


# --- channels_last -----------------------------------------------------------------------


class _ToChannelsLast(torch.autograd.Function):
    """A channels_last copy whose backward hands on the gradient in NCHW layout."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        # always a new tensor: an output that aliases the input could not take in-place ops
        return x.clone(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad.contiguous()


class SafeInstanceNorm2d(nn.InstanceNorm2d):
    """InstanceNorm2d for channels_last networks whose backward never sees a channels_last grad.

    torch 2.13/2.14 on CPU return wrong input gradients from instance_norm at batch size 1 when
    the incoming gradient is channels_last (relative error ~1.4); an NCHW gradient is right.
    instance_norm returns NCHW anyway, so the copy to channels_last here is the one the next
    convolution would make. Values and parameters are those of nn.InstanceNorm2d.
    """

    def forward(self, x: Tensor) -> Tensor:
        y = super().forward(x)
        if y.dim() != 4 or torch.compiler.is_compiling():
            return y  # compiled graphs get these gradients right (measured)
        return _ToChannelsLast.apply(y)


def make_instance_norm_safe(net: nn.Module) -> int:
    """Turn every nn.InstanceNorm2d of `net` into SafeInstanceNorm2d; returns how many."""
    n = 0
    for m in net.modules():
        if type(m) is nn.InstanceNorm2d:
            # a subclass adding no state: weights, buffers and state_dict keys stay the same
            m.__class__ = SafeInstanceNorm2d
            n += 1
    return n


def to_channels_last(net: nn.Module) -> nn.Module:
    """Store the 4-D weights of `net` channels_last, keeping its gradients right; returns net."""
    make_instance_norm_safe(net)
    return net.to(memory_format=torch.channels_last)


# --- torch.compile -----------------------------------------------------------------------


def compile_unavailable() -> str | None:
    """Why torch.compile cannot run here, or None when it may."""
    try:
        import torch._dynamo
    except Exception as e:  # a stripped-down torch build
        return f"torch.compile is missing ({e})"
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python version"
    return None


def compile_with_fallback(
    net: nn.Module, backend: str | Callable = "inductor", inductor: dict[str, Any] | None = None
) -> nn.Module:
    """Compile net.forward in place; if compiling fails, warn once and run eagerly.

    Only `forward` is replaced (an instance attribute), so state_dict keys, hooks and
    checkpoints are those of the eager network. Backward graphs are compiled together with the
    first forward, so a backward that cannot compile also falls back there.
    """
    reason = compile_unavailable()
    if reason:
        log.warning("compile was asked for, but %s; continuing without compile", reason)
        return net
    eager = net.forward
    compiled = torch.compile(eager, backend=backend)
    name = type(net).__name__

    def forward(*args: Any, **kwargs: Any) -> Any:
        try:
            with _eager_backward_lowering(), _inductor_settings(inductor):
                return compiled(*args, **kwargs)
        except Exception as e:
            out = eager(*args, **kwargs)  # a genuine error in the network raises here as well
            log.warning(
                "torch.compile failed for %s (%s: %s); continuing without compile",
                name,
                type(e).__name__,
                " ".join(str(e).split())[:300],
            )
            del net.forward  # back to the class's own forward for good
            return out

    net.forward = forward
    return net


def _inductor_settings(settings: dict[str, Any] | None):
    """Inductor settings in force while a call compiles (torch.compile's `options` did not
    apply `freezing` in torch 2.13: measured no faster than without)."""
    if not settings:
        return contextlib.nullcontext()
    from torch._inductor import config as inductor_config

    return inductor_config.patch(settings)


def _eager_backward_lowering():
    """Compile backward graphs with the forward, so their failures surface in the try above."""
    try:
        from torch._functorch import config as functorch_config

        return functorch_config.patch(force_non_lazy_backward_lowering=True)
    except (ImportError, AttributeError):  # other torch versions: backward stays lazy
        return contextlib.nullcontext()


def is_compiled(net: nn.Module) -> bool:
    """Whether compile_with_fallback left a compiled forward on `net`."""
    return "forward" in vars(net)


# --- whole methods -----------------------------------------------------------------------


def networks(model: nn.Module) -> dict[str, nn.Module]:
    """The direct sub-networks (children with parameters) of a method."""
    return {
        name: child
        for name, child in model.named_children()
        if any(True for _ in child.parameters())
    }


def apply_plan(model: nn.Module, plan: SpeedPlan) -> nn.Module:
    """Apply channels_last and compile to every sub-network of a method; returns model."""
    log.info(
        "speed: precision %s, channels_last %s, compile %s, adam %s, small_maps %s, allocator %s,"
        " batch_passes %s (%s)",
        plan.precision,
        plan.channels_last,
        plan.compile,
        plan.adam,
        plan.small_maps,
        plan.allocator,
        plan.batch_passes,
        plan.origin,
    )
    if plan.allocator == "reuse":
        reuse_freed_memory()
    if plan.compile:
        log.info("compiling the networks: the first steps take 1-3 minutes (train.compile=false)")
    for child in networks(model).values():
        if plan.small_maps:
            use_matmul_for_small_maps(child)
        if plan.channels_last:
            to_channels_last(child)
        if plan.compile:
            compile_with_fallback(child)
    return model


# --- inference ---------------------------------------------------------------------------


def inference_channels_last(net: nn.Module, precision: str, device: torch.device) -> bool:
    """Whether channels_last speeds up inference of `net` (measured; see docs/speed.md).

    It pays with bf16/fp16 only. On a CPU instance_norm returns NCHW whatever it is given, so
    a network with instance norms would change layout at every one of them: slower (resnet_9blocks
    1.4-2.3x over fp32 with it, 2.0-2.6x without; unet_256 with batch norm 1.5-3.0x with it).
    """
    if precision == "fp32":
        return False
    if device.type == "cuda":
        return True
    return not any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def prepare_for_inference(net: nn.Module, precision: str, channels_last: bool) -> nn.Module:
    """Store an eval-mode network's weights in `precision` and/or channels_last, in place.

    Weights cast once beat autocast, which casts every weight again on every call. Hooks cast
    the input to the network's dtype and layout and hand back fp32 NCHW, so callers see no
    difference. strip_inference_speedups undoes all of it.
    """
    dtype = DTYPES[precision]
    if dtype == torch.float32 and not channels_last:
        return net
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        make_instance_norm_safe(net)
    net.to(dtype=dtype, memory_format=fmt)
    if dtype != torch.float32 and next(net.parameters()).device.type == "cpu":
        # fp32 keeps torch's own kernels, so --precision fp32 stays bit-for-bit
        use_matmul_for_small_maps(net)
        for m in net.modules():
            w = getattr(m, "weight", None)
            if isinstance(m, SMALL_MAP_CONVS) and w is not None and w.numel() >= 1 << 20:
                # the big inner layers run as matmuls, which want the stored [out, in*k*k] rows
                w.data = w.data.contiguous()

    def cast_input(module: nn.Module, args: tuple) -> tuple:
        return tuple(
            a.to(dtype=dtype, memory_format=fmt) if isinstance(a, Tensor) and a.dim() == 4 else a
            for a in args
        )

    def fp32_output(module: nn.Module, args: tuple, out: Any) -> Any:
        if isinstance(out, Tensor):
            return out.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        return out

    net._pixmorph_hooks = (  # type: ignore[attr-defined]
        net.register_forward_pre_hook(cast_input),
        net.register_forward_hook(fp32_output),
    )
    return net


def compile_for_inference(net: nn.Module) -> nn.Module:
    """Compile an eval-mode network with its weights frozen into the graph; returns net.

    Inductor's freezing folds the weights in as constants and lays them out once for the CPU's
    convolution kernels (on the benchmark CPU: unet_256, bf16, one 256x256 image, ~38 ms
    against ~55 ms eager). It costs 10-60 s at the first image and again for each new input
    shape. torch's own convolutions compile best, so the small-map matmuls are undone first.
    The weights must not change afterwards: the graph holds them.
    """
    restore_torch_convs(net)
    return compile_with_fallback(net, inductor={"freezing": True})


def strip_inference_speedups(net: nn.Module) -> nn.Module:
    """Undo prepare_for_inference and to_channels_last: fp32 NCHW, plain modules; returns net."""
    for hook in getattr(net, "_pixmorph_hooks", ()):
        hook.remove()
    if hasattr(net, "_pixmorph_hooks"):
        del net._pixmorph_hooks
    restore_torch_convs(net)
    for m in net.modules():
        if type(m) is SafeInstanceNorm2d:
            m.__class__ = nn.InstanceNorm2d
        if "forward" in vars(m):  # a compiled forward
            del m.forward
    return net.to(dtype=torch.float32, memory_format=torch.contiguous_format)
