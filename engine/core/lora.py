"""LoRA: low-rank adapters on frozen layers, their exact parameter counts, merging, and memory.

LoRA keeps a layer's weight W (d_out, d_in) frozen and learns a low-rank update,
W' = W + (alpha / r) B A, with A (r, d_in) and B (d_out, r). B starts at zero, so a freshly
wrapped layer computes exactly what W computed; only A and B receive gradients.

What is here:
- `LoRALinear`, `LoRAConv2d`: the wrapped layers, written to be read (after microsoft/LoRA's
  loralib); `inject_lora` wraps a model's layers in place, `merge_lora` folds (alpha/r) B A back
  into W, `adapter_tensors` / `safetensors_bytes` measure what an adapter takes on disk.
- Counting: `architecture` lists every module LoRA can wrap with its shape; `count_lora` counts
  the adapter for a rank and target names, matched the way peft matches `target_modules`, so
  every count equals peft's `get_nb_trainable_parameters()` for the same model and config.
- Memory: `full_memory`, `lora_memory`, `qlora_memory` estimate training memory term by term,
  each term with its assumption; `PUBLISHED` holds the papers' figures to set beside them.

Not here: model architectures (`engine.experiments.lora_presets`), training (`engine.core.train`), strategies.
This module is a leaf: it imports nothing from the engine.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LoraError(ValueError):
    """A rank, target or layer LoRA cannot use; the message says what would work."""


def check_rank(rank) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise LoraError(f"the rank r must be a positive integer, got {rank!r}")
    return rank


# ---------------------------------------------------------------------------------------------
# Layers

class LoRALayer(nn.Module):
    """A frozen base layer plus the trainable low-rank pair (A, B), scaled by alpha / r."""

    def __init__(self, base: nn.Module, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.rank = check_rank(rank)
        self.alpha = float(alpha)
        self.scaling = self.alpha / self.rank
        for p in base.parameters():
            p.requires_grad_(False)

    def lora_parameters(self) -> list[nn.Parameter]:
        return [self.lora_A, self.lora_B]

    def delta_weight(self) -> torch.Tensor:
        raise NotImplementedError

    def merged(self) -> nn.Module:
        """The base layer with (alpha/r) B A added to its weight (a copy; self is unchanged)."""
        layer = copy.deepcopy(self.base)
        with torch.no_grad():
            layer.weight += self.delta_weight().to(layer.weight.dtype)
        return layer


class LoRALinear(LoRALayer):
    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__(base, rank, alpha)
        w = base.weight  # (d_out, d_in)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear, loralib and peft

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., d_in) -> (..., d_out)
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling  # via (..., r)

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scaling  # (d_out, d_in)


class LoRAConv2d(LoRALayer):
    """A is a convolution with the base's kernel, stride, padding and dilation from C_in to r
    channels, B a 1x1 convolution from r to C_out: together one convolution of rank r."""

    def __init__(self, base: nn.Conv2d, rank: int, alpha: float):
        if base.groups != 1 or base.padding_mode != "zeros":
            raise LoraError("LoRAConv2d wraps ungrouped, zero-padded convolutions only")
        super().__init__(base, rank, alpha)
        w = base.weight  # (C_out, C_in, kh, kw)
        self.lora_A = nn.Parameter(torch.empty(rank, *w.shape[1:], device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(w.shape[0], rank, 1, 1, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H', W')
        b = self.base
        down = F.conv2d(x, self.lora_A, None, b.stride, b.padding, b.dilation)  # (B, r, H', W')
        return b(x) + F.conv2d(down, self.lora_B) * self.scaling

    def delta_weight(self) -> torch.Tensor:  # (C_out, C_in, kh, kw)
        return torch.einsum("or,rikl->oikl", self.lora_B[:, :, 0, 0], self.lora_A) * self.scaling


def wrap(layer: nn.Module, rank: int, alpha: float) -> LoRALayer:
    if isinstance(layer, nn.Linear):
        return LoRALinear(layer, rank, alpha)
    if isinstance(layer, nn.Conv2d):
        return LoRAConv2d(layer, rank, alpha)
    raise LoraError(f"this engine trains LoRA on Linear and Conv2d layers, not {type(layer).__name__}")


def inject_lora(model: nn.Module, paths: Iterable[str], rank: int, alpha: float) -> dict[str, LoRALayer]:
    """Replace each module at `paths` (as in `named_modules`) by its LoRA wrapper, in place.

    Only the new A and B are trainable inside the wrappers; the caller decides about the rest."""
    wrapped = {}
    for path in paths:
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        layer = getattr(parent, child)
        if isinstance(layer, LoRALayer):
            raise LoraError(f"'{path}' already carries a LoRA adapter")
        wrapped[path] = wrap(layer, rank, alpha)
        setattr(parent, child, wrapped[path])
    return wrapped


def lora_layers(model: nn.Module) -> dict[str, LoRALayer]:
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALayer)}


def merge_lora(model: nn.Module) -> nn.Module:
    """A copy of `model` with every adapter folded into its base weight: plain layers again, the
    same function, no extra work at inference."""
    merged = copy.deepcopy(model)
    for path, layer in lora_layers(merged).items():
        parent_path, _, child = path.rpartition(".")
        parent = merged.get_submodule(parent_path) if parent_path else merged
        setattr(parent, child, layer.merged())
    return merged


def adapter_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter's tensors (every A and B), named as in the model's state dict."""
    return {f"{path}.{part}": getattr(layer, part).detach()
            for path, layer in lora_layers(model).items() for part in ("lora_A", "lora_B")}


def safetensors_bytes(tensors: dict[str, torch.Tensor], dtype: Optional[torch.dtype] = None) -> int:
    """Size of a safetensors file holding `tensors` (cast to `dtype`): data plus its header."""
    from safetensors.torch import save

    return len(save({k: (v if dtype is None else v.to(dtype)).detach().cpu().contiguous()
                     for k, v in tensors.items()}))


def short_layer_names(module: nn.Module) -> dict[str, str]:
    """Short names for the layers LoRA can wrap here: ungrouped Conv2d layers are conv1, conv2,
    ... in module order, Linear layers fc (just one) or fc1, fc2, ...; name -> module path."""
    convs = [n for n, m in module.named_modules() if isinstance(m, nn.Conv2d) and m.groups == 1
             and m.padding_mode == "zeros"]
    linears = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    names = {f"conv{i}": p for i, p in enumerate(convs, start=1)}
    names.update({"fc": linears[0]} if len(linears) == 1
                 else {f"fc{i}": p for i, p in enumerate(linears, start=1)})
    return names


# ---------------------------------------------------------------------------------------------
# Counting, as peft counts

@dataclass(frozen=True)
class LayerShape:
    name: str  # module path, as in model.named_modules()
    kind: str  # Linear, Conv1D (GPT-2's transposed linear), Embedding, Conv1d, Conv2d or Conv3d
    d_in: int  # input features, input channels, or the vocabulary size of an embedding
    d_out: int  # output features, output channels, or the embedding width
    kernel: int = 1  # number of kernel positions of a convolution (kh * kw), else 1
    groups: int = 1  # a convolution's groups

    @property
    def weights(self) -> int:
        return self.d_out * self.d_in * self.kernel // self.groups

    def lora_params(self, rank: int) -> int:
        """Parameters of A and B at rank r: A (r, d_in * kernel), B (d_out, r / groups)."""
        if rank % self.groups:
            raise LoraError(f"{self.name} is a convolution with groups={self.groups}: the rank "
                            "must be a multiple of its groups")
        return rank * self.d_in * self.kernel + self.d_out * rank // self.groups

    def shape_text(self) -> str:
        if self.kind == "Embedding":
            return f"{self.d_in:,} tokens → {self.d_out:,}"
        return f"{self.d_in:,} → {self.d_out:,}" + (f" ({self.kernel} kernel positions)"
                                                      if self.kernel > 1 else "")


def layer_shape(name: str, m: nn.Module) -> Optional[LayerShape]:
    """The shape of a module LoRA can wrap (the types peft's LoRA supports), else None."""
    if isinstance(m, nn.Embedding):
        return LayerShape(name, "Embedding", m.num_embeddings, m.embedding_dim)
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return LayerShape(name, f"Conv{len(m.kernel_size)}d", m.in_channels, m.out_channels,
                          math.prod(m.kernel_size), m.groups)
    if isinstance(m, nn.Linear):
        return LayerShape(name, "Linear", m.in_features, m.out_features)
    if type(m).__name__ == "Conv1D" and hasattr(m, "nf"):  # transformers' GPT-2 layer: W is (in, out)
        d_in, d_out = m.weight.shape
        return LayerShape(name, "Conv1D", d_in, d_out)
    return None


@dataclass(frozen=True)
class Architecture:
    layers: tuple[LayerShape, ...]  # every module LoRA can wrap, in module order
    others: tuple[tuple[str, str], ...]  # (path, class name) of every other module
    total: int  # parameters of the model, each shared tensor once, no adapter
    quantizable: int  # weights of Linear/Conv1D layers except the output layer (QLoRA's 4-bit part)

    def target_names(self) -> list[str]:
        """The names a target can use: each layer's own name, made unique by as many parent
        names as it takes when it is just a number (`features.0.0`, `downsample.0`)."""
        names = []
        for layer in self.layers:
            parts = layer.name.split(".")
            k = 1
            while k < len(parts) and parts[-k].isdigit():
                k += 1
            names.append(".".join(parts[-k:]))
        return list(dict.fromkeys(names))


def architecture(model: nn.Module, output_layer: str = "") -> Architecture:
    """Shapes of every module of `model` LoRA can wrap (works on the meta device)."""
    layers, others = [], []
    for name, m in model.named_modules():
        shape = layer_shape(name, m) if name else None
        if shape is not None:
            layers.append(shape)
        else:
            others.append((name, type(m).__name__))
    quantizable = sum(s.weights for s in layers
                      if s.kind in ("Linear", "Conv1D") and s.name != output_layer)
    return Architecture(tuple(layers), tuple(others), sum(p.numel() for p in model.parameters()),
                        quantizable)


def matches(path: str, target: str) -> bool:
    """peft's rule for a list of target names: the path itself, or a path ending in '.target'."""
    return path == target or path.endswith("." + target)


@dataclass(frozen=True)
class LoraCount:
    rank: int
    targets: tuple[str, ...]
    modules: tuple[tuple[LayerShape, int], ...]  # every wrapped module, its LoRA parameters
    base_total: int  # the model's own parameters

    @property
    def trainable(self) -> int:
        return sum(n for _, n in self.modules)

    @property
    def total(self) -> int:  # as peft reports it: the model plus the adapter
        return self.base_total + self.trainable

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total

    def breakdown(self) -> list[dict]:
        """One row per kind of module (layer numbers replaced by *): how many, their shape, and
        their LoRA parameters each and together."""
        rows: dict[tuple, dict] = {}
        for shape, n in self.modules:
            pattern = re.sub(r"\.\d+\.", ".*.", f".{shape.name}.").strip(".")
            key = (pattern, shape.kind, shape.d_in, shape.d_out, shape.kernel, n)
            row = rows.setdefault(key, {"module": pattern, "type": shape.kind,
                                        "shape": shape.shape_text(), "count": 0,
                                        "weights each": shape.weights, "LoRA each": n})
            row["count"] += 1
        for row in rows.values():
            row["LoRA total"] = row["count"] * row["LoRA each"]
        return list(rows.values())


def target_paths(arch: Architecture, targets: Sequence[str]) -> list[str]:
    """Paths of the modules `targets` select; LoraError for a target that selects nothing or a
    module LoRA cannot wrap (peft refuses both)."""
    targets = [t.strip() for t in targets if t and t.strip()]
    if not targets:
        raise LoraError("choose at least one target module")
    names = ", ".join(arch.target_names())
    for t in targets:
        blocked = [(p, kind) for p, kind in arch.others if p and matches(p, t)]
        if blocked:
            raise LoraError(f"target '{t}' selects {blocked[0][0]} ({blocked[0][1]}), which LoRA "
                            f"cannot wrap; choose among: {names}")
        if not any(matches(s.name, t) for s in arch.layers):
            raise LoraError(f"target '{t}' matches no module of this model; choose among: {names}")
    return [s.name for s in arch.layers if any(matches(s.name, t) for t in targets)]


def count_lora(arch: Architecture, rank: int, targets: Sequence[str]) -> LoraCount:
    """Exact LoRA parameter count for `targets` at rank r (no bias on B, peft's default)."""
    check_rank(rank)
    chosen = set(target_paths(arch, targets))
    modules = tuple((s, s.lora_params(rank)) for s in arch.layers if s.name in chosen)
    return LoraCount(rank, tuple(dict.fromkeys(t.strip() for t in targets if t.strip())),
                     modules, arch.total)


# ---------------------------------------------------------------------------------------------
# Memory

BYTES = {"fp32": 4, "bf16": 2}  # bytes per number
ADAM_BYTES = 8  # Adam keeps two moments per trainable parameter, each in fp32
TRAINABLE_BYTES = 4 + 4 + ADAM_BYTES  # a trainable fp32 parameter: value, gradient, two moments
# QLoRA's adapters compute in bfloat16 (Dettmers et al. 2023, eq. 5: X^BF16 L1^BF16 L2^BF16):
# value and gradient in 2 bytes each, Adam's two moments in fp32
QLORA_TRAINABLE_BYTES = 2 + 2 + ADAM_BYTES
# QLoRA's NormalFloat4 with double quantization: a 4-bit code per weight, an 8-bit scale per block
# of 64 weights, and an fp32 constant per 256 such blocks.
NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)


@dataclass(frozen=True)
class MemoryTerm:
    label: str
    bytes: float
    assumption: str


@dataclass(frozen=True)
class MemoryEstimate:
    method: str  # "Full fine-tuning", "LoRA", "QLoRA"
    terms: tuple[MemoryTerm, ...]

    @property
    def total(self) -> float:
        return sum(t.bytes for t in self.terms)


def full_memory(n_params: int, weights: str, activations: MemoryTerm) -> MemoryEstimate:
    """Every weight trains with Adam."""
    b = BYTES[weights]
    terms = [MemoryTerm("weights", n_params * b, f"every weight in {weights} ({b} bytes)"),
             MemoryTerm("gradients", n_params * b, f"one {weights} gradient per weight"),
             MemoryTerm("Adam states", n_params * ADAM_BYTES,
                        "two fp32 moments per weight (8 bytes)")]
    if weights == "bf16":
        terms.append(MemoryTerm("fp32 master weights", n_params * 4, "mixed precision keeps an "
                                "fp32 copy of every weight for the update (4 bytes)"))
    return MemoryEstimate("Full fine-tuning", (*terms, activations))


def lora_memory(n_params: int, n_lora: int, weights: str, activations: MemoryTerm) -> MemoryEstimate:
    """The base is frozen: no gradients, no optimizer state; only the adapter trains."""
    b = BYTES[weights]
    return MemoryEstimate("LoRA", (
        MemoryTerm("frozen weights", n_params * b, f"every base weight in {weights} ({b} bytes), "
                   "with no gradient and no optimizer state"),
        MemoryTerm("adapter", n_lora * TRAINABLE_BYTES, "A and B in fp32 with their gradients "
                   "and Adam's two moments (16 bytes each)"),
        activations))


def qlora_memory(n_params: int, n_quantized: int, n_lora: int, activations: MemoryTerm) -> MemoryEstimate:
    """The frozen base in 4-bit NF4 (its linear layers; the rest in bf16), the adapter as LoRA."""
    return MemoryEstimate("QLoRA", (
        MemoryTerm("4-bit weights", n_quantized * NF4_BITS / 8,
                   f"linear layers' weights in NF4 with double quantization ({NF4_BITS:.3f} bits "
                   "each), output layer excluded"),
        MemoryTerm("other weights", (n_params - n_quantized) * 2,
                   "embeddings, norms, biases and the output layer in bf16 (2 bytes)"),
        MemoryTerm("adapter", n_lora * QLORA_TRAINABLE_BYTES, "A and B in bf16 as the QLoRA paper "
                   "computes them (its eq. 5), bf16 gradients and Adam's two fp32 moments (12 "
                   "bytes each)"),
        activations))


@dataclass(frozen=True)
class Published:
    what: str
    stated: str  # the figure as the paper states it
    value: float  # the same in bytes
    source: str


# Figures as the papers state them, to set beside the estimates; they are not computed here.
_LORA_PAPER = "Hu et al. 2021 (LoRA), section 4.2"
PUBLISHED = {
    "gpt3_full_train": Published("GPT-3 175B, full fine-tuning: training memory", "1.2 TB", 1.2e12,
                                 _LORA_PAPER),
    "gpt3_lora_train": Published("GPT-3 175B, LoRA: training memory", "350 GB", 350e9, _LORA_PAPER),
    "gpt3_full_ckpt": Published("GPT-3 175B: checkpoint", "350 GB", 350e9, _LORA_PAPER),
    "gpt3_lora_ckpt": Published("GPT-3 175B, LoRA at r = 4 on Wq and Wv: checkpoint", "about 35 MB",
                                35e6, _LORA_PAPER),
    "qlora_65b": Published("A 65B model fine-tuned with QLoRA: GPU memory", "fits one 48 GB GPU",
                           48e9, "Dettmers et al. 2023 (QLoRA), abstract"),
}
