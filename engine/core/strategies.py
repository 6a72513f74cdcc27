"""Training strategies: which parameters train, from which starting point, at which learning rate.

A strategy never runs a training loop. It decides whether the model starts from pretrained
weights, freezes parameters (`requires_grad=False`) and returns the optimizer's parameter groups;
`engine.core.train.fit` is the one loop every strategy shares. New strategies (partial fine-tuning,
gradual unfreezing, LoRA, ...) subclass `Strategy` and register in `STRATEGIES`.

Strategies with a setting are named `family:setting` (for example `lora:r4`): a family registers
a parser in `FAMILIES` with `register_family`, and `get_strategy` builds the strategy from its
name, so such a name works everywhere a plain one does (specs, URLs, the CLI, the store).

The families: `probe:block<k>` (a linear probe on the output of the first k feature blocks),
`partial:<k>`, `discriminative:<factor>`, `copy-frozen:<k>`, `copy-tuned:<k>` and
`lora:r<rank>` (a rank-r adapter on every conv and dense layer of the features) or
`lora:r<rank>@<layer>+<layer>` (only the named ones: conv1, conv2, conv3, fc on the small CNN).

Not here: the training loop (`engine.core.train`), the LoRA layers themselves and their counts
(`engine.core.lora`), the models (`engine.core.backbones`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from engine.core.backbones import Classifier, feature_blocks, small_cnn_features
from engine.core.lora import inject_lora, short_layer_names


class StrategyError(ValueError):
    """An unknown strategy name."""


@dataclass(frozen=True)
class Strategy:
    name: str  # the key used in specs, URLs, the CLI and the result store
    label: str  # what the learner reads on charts and tables
    description: str  # one sentence for the page
    uses_pretrained: bool  # start from the source-pretrained features (else random init)
    frozen_features: bool  # the feature extractor never changes, so its outputs can be cached

    def param_groups(self, model: Classifier, lr: float, backbone_lr: float) -> list[dict]:
        """Set requires_grad on every parameter and return the optimizer's parameter groups.

        A strategy may also change the model in place here (LoRA wraps layers)."""
        raise NotImplementedError

    def schedule(self, model: Classifier, steps: int,
                 steps_per_epoch: int) -> Optional[Callable[[int, int], None]]:
        """A `before_step(step, steps)` hook for `train.fit` when the trainable set changes
        during training (gradual unfreezing, LP-FT); None when it is fixed."""
        return None

    def features_view(self) -> str:
        """Which frozen features a `frozen_features` strategy's head reads: "" for the whole
        feature extractor's output (shared by every such strategy of a sweep), else a name for
        another view of it (`probe:block<k>`: "block<k>")."""
        return ""


def _set_trainable(module: nn.Module, trainable: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(trainable)


class Scratch(Strategy):
    def param_groups(self, model, lr, backbone_lr):
        _set_trainable(model, True)
        return [{"params": list(model.parameters()), "lr": lr, "name": "all layers"}]


SCRATCH = Scratch("scratch", "From scratch",
                  "Random initial weights; every layer learns from the target labels alone.",
                  uses_pretrained=False, frozen_features=False)


class LinearProbe(Strategy):
    def param_groups(self, model, lr, backbone_lr):
        _set_trainable(model.features, False)
        _set_trainable(model.head, True)
        return [{"params": list(model.head.parameters()), "lr": lr, "name": "head"}]


PROBE = LinearProbe("probe", "Linear probe",
                    "Pretrained layers frozen; only a new linear head is trained on their features.",
                    uses_pretrained=True, frozen_features=True)


POOL_GRID = 2  # an earlier block's (B, C, H, W) map is average-pooled to C x 2 x 2 for its probe


class _BlockOutput(Exception):
    """Carries block k's output out of the forward pass, so the blocks above never run."""

    def __init__(self, output: torch.Tensor):
        super().__init__()
        self.output = output


class EarlierBlock(nn.Module):
    """The output of one feature block, (B, C, H, W) average-pooled to (B, C * 4), or (B, D)
    as it is. The whole feature extractor is called and stopped right after that block, so
    whatever it does before the block (resizing, activations without weights) still happens."""

    def __init__(self, features: nn.Module, block: nn.Module):
        super().__init__()
        self.features = features
        self.block = block
        self.pool = nn.AdaptiveAvgPool2d(POOL_GRID)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def stop(_module, _inputs, output):
            raise _BlockOutput(output)

        handle = self.block.register_forward_hook(stop)
        try:
            self.features(x)
            raise RuntimeError("the chosen block never ran")
        except _BlockOutput as found:
            out = found.output
        finally:
            handle.remove()
        return (self.pool(out) if out.dim() == 4 else out).flatten(1)  # (B, D_k)


def _first_conv_channels(features: nn.Module) -> int:
    conv = next((m for m in features.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise StrategyError("a probe on an earlier block needs a convolutional backbone")
    return conv.in_channels


@dataclass(frozen=True)
class BlockProbe(Strategy):
    """`probe:block<k>`: a linear probe on the output of the first k feature blocks (counted
    from the input as `feature_blocks` does) instead of the last. Everything stays frozen and
    only a new head trains on the pooled block output (CS231n: for a target far from the
    source, probe earlier layers, whose features are more generic)."""
    k: int = 1

    def param_groups(self, model, lr, backbone_lr):
        blocks = feature_blocks(model.features)
        if not 1 <= self.k < len(blocks):
            raise StrategyError(f"{self.name}: this backbone has {len(blocks)} blocks; probe one "
                                f"from 1 to {len(blocks) - 1} (the last is the plain probe)")
        model.features = EarlierBlock(model.features, blocks[self.k - 1]).eval()
        _set_trainable(model, False)
        with torch.no_grad():  # the width of the pooled output (any image size the blocks accept)
            probe = torch.zeros(1, _first_conv_channels(model.features), 64, 64,
                                device=model.head.weight.device)
            width = model.features(probe).shape[1]
        model.feature_dim = width
        model.replace_head(model.head.out_features)  # drawn from the run's seed, under its lock
        return [{"params": list(model.head.parameters()), "lr": lr, "name": "head"}]

    def features_view(self) -> str:
        return f"block{self.k}"


def block_probe(k: int) -> BlockProbe:
    return BlockProbe(f"probe:block{k}", f"Linear probe on block {k}",
                      f"Pretrained layers frozen; a new linear head trains on the output of "
                      f"feature block {k} (average-pooled to a {POOL_GRID}x{POOL_GRID} grid), "
                      "not on the last block's.",
                      uses_pretrained=True, frozen_features=True, k=k)


def _parse_block_probe(setting: str) -> BlockProbe:
    digits = setting[len("block"):] if setting.startswith("block") else ""
    if not digits.isdigit() or str(int(digits)) != digits or not 1 <= int(digits) <= 99:
        raise StrategyError(f"'probe:{setting}': write probe:block<k>, k a whole number from 1, "
                            "e.g. probe:block3")
    return block_probe(int(digits))


class FineTune(Strategy):
    def param_groups(self, model, lr, backbone_lr):
        _set_trainable(model, True)
        return [
            {"params": list(model.features.parameters()), "lr": backbone_lr, "name": "pretrained layers"},
            {"params": list(model.head.parameters()), "lr": lr, "name": "head"},
        ]


FINETUNE = FineTune("finetune", "Fine-tune",
                    "Starts from the pretrained weights and trains everything: the new head at the "
                    "full learning rate, the pretrained layers at a smaller one.",
                    uses_pretrained=True, frozen_features=False)


def _blocks(model: Classifier, k: int, name: str) -> list[nn.Module]:
    blocks = feature_blocks(model.features)
    if k > len(blocks):
        raise StrategyError(f"{name}: this backbone has {len(blocks)} blocks, not {k}")
    return blocks


def _params(modules) -> list[nn.Parameter]:
    return [p for m in modules for p in m.parameters()]


def _block_groups(blocks: list[nn.Module], lrs: list[float], model: Classifier, lr: float) -> list[dict]:
    """One group per feature block (bottom up) with its learning rate, then the head."""
    groups = [{"params": list(b.parameters()), "lr": r, "name": f"block {i + 1}"}
              for i, (b, r) in enumerate(zip(blocks, lrs))]
    return groups + [{"params": list(model.head.parameters()), "lr": lr, "name": "head"}]


class GradualUnfreeze(Strategy):
    """Every block is in the optimizer from the start; only `requires_grad` changes. A frozen
    parameter gets no gradient, and Adam leaves a parameter without a gradient untouched."""

    def param_groups(self, model, lr, backbone_lr):
        blocks = feature_blocks(model.features)
        _set_trainable(model.features, False)
        _set_trainable(model.head, True)
        return _block_groups(blocks, [backbone_lr] * len(blocks), model, lr)

    def schedule(self, model, steps, steps_per_epoch):
        blocks = feature_blocks(model.features)
        # one block per epoch (ULMFiT); when an epoch is only a step or two, a stage lasts
        # 1/(blocks + 1) of training instead, so each stage still trains for a while
        stage = max(1, steps_per_epoch, steps // (len(blocks) + 1))

        def before_step(step: int, _steps: int) -> None:
            if step % stage == 0:
                unfrozen = min(len(blocks), step // stage)
                for block in blocks[len(blocks) - unfrozen:]:
                    _set_trainable(block, True)
        return before_step


GRADUAL = GradualUnfreeze("gradual", "Gradual unfreezing",
                          "ULMFiT's schedule: the head trains alone first, then one more pretrained "
                          "block joins each epoch, from the top down, at the smaller learning rate.",
                          uses_pretrained=True, frozen_features=False)


class LinearProbeThenFineTune(Strategy):
    """LP-FT (Kumar et al., 2022): a good head first, so fine-tuning does not start by pushing
    large, random-head gradients into the pretrained features."""

    def param_groups(self, model, lr, backbone_lr):
        _set_trainable(model.features, False)
        _set_trainable(model.head, True)
        return [{"params": list(model.features.parameters()), "lr": backbone_lr, "name": "pretrained layers"},
                {"params": list(model.head.parameters()), "lr": lr, "name": "head"}]

    def schedule(self, model, steps, steps_per_epoch):
        switch = steps // 2

        def before_step(step: int, _steps: int) -> None:
            if step == switch:
                _set_trainable(model.features, True)
        return before_step


LPFT = LinearProbeThenFineTune("lpft", "LP-FT",
                               "A linear probe for the first half of training, then fine-tuning "
                               "of everything from that trained head.",
                               uses_pretrained=True, frozen_features=False)


@dataclass(frozen=True)
class PartialFineTune(Strategy):
    """`partial:<k>`: the last k feature blocks fine-tune (smaller learning rate), the first ones
    stay frozen; k = 0 is a linear probe, k = all blocks is fine-tuning."""
    k: int = 0

    def param_groups(self, model, lr, backbone_lr):
        blocks = _blocks(model, self.k, self.name)
        _set_trainable(model, False)
        tuned = blocks[len(blocks) - self.k:] if self.k else []
        for module in [*tuned, model.head]:
            _set_trainable(module, True)
        groups = [{"params": _params(tuned), "lr": backbone_lr, "name": f"last {self.k} blocks"}] if tuned else []
        return groups + [{"params": list(model.head.parameters()), "lr": lr, "name": "head"}]


@dataclass(frozen=True)
class Discriminative(Strategy):
    """`discriminative:<factor>`: the head at lr, the top block at lr x factor, each block below
    at the rate of the one above times factor again (ULMFiT divides by 2.6: factor 0.38)."""
    factor: float = 0.5

    def param_groups(self, model, lr, backbone_lr):
        blocks = feature_blocks(model.features)
        _set_trainable(model, True)
        n = len(blocks)
        return _block_groups(blocks, [lr * self.factor ** (n - i) for i in range(n)], model, lr)


@dataclass(frozen=True)
class CopyLayers(Strategy):
    """`copy-frozen:<k>` / `copy-tuned:<k>` (Yosinski et al., 2014): the first k blocks keep their
    pretrained weights, the blocks above are re-initialised at random, and the copied blocks
    are either frozen or fine-tuned (at the smaller learning rate); the rest train at lr."""
    k: int = 0
    tuned: bool = False

    def param_groups(self, model, lr, backbone_lr):
        blocks = _blocks(model, self.k, self.name)
        copied, fresh = blocks[:self.k], blocks[self.k:]
        for module in fresh:  # random again, drawn from the run's seed (see SweepContext)
            for sub in module.modules():
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()
        _set_trainable(model, True)
        for module in copied:
            _set_trainable(module, self.tuned)
        groups = []
        if copied and self.tuned:
            groups.append({"params": _params(copied), "lr": backbone_lr, "name": f"first {self.k} blocks (copied)"})
        if fresh:
            groups.append({"params": _params(fresh), "lr": lr, "name": f"blocks {self.k + 1}+ (re-initialised)"})
        return groups + [{"params": list(model.head.parameters()), "lr": lr, "name": "head"}]


LORA_ALPHA = 8.0  # alpha of every LoRA strategy, fixed across ranks as in the LoRA paper
LORA_MAX_RANK = 256  # the largest rank a `lora:r<rank>` name may ask for
_LORA_SETTING = re.compile(r"r(\d+)(?:@([A-Za-z0-9_]+(?:\+[A-Za-z0-9_]+)*))?")


@dataclass(frozen=True)
class LoRA(Strategy):
    """`lora:r<rank>` / `lora:r<rank>@<layer>+<layer>` (Hu et al., 2021): the pretrained layers
    stay frozen; a trainable low-rank update (alpha/r)·B·A sits beside the chosen ones."""
    rank: int = 4  # r: A is (r, d_in), B is (d_out, r)
    layers: tuple[str, ...] = ()  # short layer names (conv1, ..., fc); empty: every one
    alpha: float = LORA_ALPHA  # the update is scaled by alpha / r

    def param_groups(self, model, lr, backbone_lr):
        """Freeze everything, wrap the chosen feature layers, train A and B at the pretrained
        layers' learning rate (they change those layers) and the new head at the full one (a
        target's head is new and random, so it must learn, as peft's `modules_to_save` does)."""
        _set_trainable(model, False)
        names = short_layer_names(model.features)
        missing = [layer for layer in self.layers if layer not in names]
        if missing:
            raise StrategyError(f"{self.name}: this backbone has no layer '{missing[0]}'; its "
                                f"LoRA layers are {', '.join(names)}")
        wrapped = inject_lora(model.features, [names[k] for k in self.layers or names],
                              self.rank, self.alpha)
        _set_trainable(model.head, True)
        return [{"params": [p for w in wrapped.values() for p in w.lora_parameters()],
                 "lr": backbone_lr, "name": "LoRA matrices A, B"},
                {"params": list(model.head.parameters()), "lr": lr, "name": "head"}]


# the plain strategies (no setting), in the order pages list them
STRATEGIES: dict[str, Strategy] = {s.name: s for s in (SCRATCH, PROBE, FINETUNE, GRADUAL, LPFT)}


# family name -> parser of the setting after the colon (raises StrategyError when invalid)
FAMILIES: dict[str, Callable[[str], Strategy]] = {}


def register_family(family: str, parse: Callable[[str], Strategy]) -> None:
    """Make `family:setting` names resolve through `parse(setting)`."""
    FAMILIES[family] = parse


def get_strategy(name: str) -> Strategy:
    if not isinstance(name, str):
        raise StrategyError(f"a strategy is named by a string, got {name!r}")
    if name in STRATEGIES:
        return STRATEGIES[name]
    family, sep, setting = name.partition(":")
    if sep and family in FAMILIES:
        strategy = FAMILIES[family](setting)
        if strategy.name != name:
            raise StrategyError(f"strategy '{name}' is written '{strategy.name}'")
        return strategy
    known = ", ".join([*STRATEGIES, *(f"{f}:..." for f in FAMILIES)])
    raise StrategyError(f"unknown strategy '{name}'; choose from: {known}")


def strategy_order(name: str) -> tuple:
    """Sort key giving the canonical order of strategies in a spec: plain ones in registry
    order, then families in registration order, settings by name."""
    if name in STRATEGIES:
        return (list(STRATEGIES).index(name), 0, "")
    family = name.partition(":")[0]
    families = list(FAMILIES)
    return (len(STRATEGIES) + (families.index(family) if family in families else len(families)),
            1, name)


def _parse_int(family: str, setting: str, what: str) -> int:
    if not setting.isdigit() or str(int(setting)) != setting or int(setting) > 99:
        raise StrategyError(f"'{family}:{setting}': write {family}:<{what}>, a whole number from 0, "
                            f"e.g. {family}:2")
    return int(setting)


def partial(k: int) -> PartialFineTune:
    return PartialFineTune(f"partial:{k}", f"Fine-tune last {k} blocks" if k else "Last 0 blocks (probe)",
                           f"The first blocks stay frozen; the last {k} pretrained blocks fine-tune "
                           "at the smaller learning rate, with a new head.",
                           uses_pretrained=True, frozen_features=k == 0, k=k)


def discriminative(factor: float) -> Discriminative:
    return Discriminative(f"discriminative:{factor:g}", f"Discriminative LR x{factor:g}",
                          f"Fine-tunes everything; each block down learns at {factor:g} times the "
                          "rate of the block above it (the head at the full rate).",
                          uses_pretrained=True, frozen_features=False, factor=factor)


def _parse_discriminative(setting: str) -> Discriminative:
    try:
        factor = float(setting)
    except ValueError:
        factor = float("nan")
    if not 0 < factor <= 1:  # also refuses NaN
        raise StrategyError(f"'discriminative:{setting}': the factor must be a number in (0, 1], "
                            "e.g. discriminative:0.38")
    if f"{factor:g}" != setting:
        raise StrategyError(f"'discriminative:{setting}' is written 'discriminative:{factor:g}'")
    return discriminative(factor)


def copy_layers(k: int, tuned: bool) -> CopyLayers:
    how = "fine-tuned" if tuned else "frozen"
    return CopyLayers(f"copy-{'tuned' if tuned else 'frozen'}:{k}", f"Copy {k} blocks, {how}",
                      f"The first {k} blocks copied from the pretrained network and {how}; the "
                      "blocks above re-initialised and trained from scratch.",
                      uses_pretrained=True, frozen_features=False, k=k, tuned=tuned)


@functools.lru_cache(maxsize=1)
def lora_layer_names() -> tuple[str, ...]:
    """Short names of the small CNN's layers LoRA can wrap, in order (built on the meta device,
    so the global random state is untouched)."""
    with torch.device("meta"):
        return tuple(short_layer_names(small_cnn_features()))


def lora_name(rank: int, layers=()) -> str:
    """The canonical strategy name: lora:r4, or lora:r4@conv3+fc for some layers only."""
    known = lora_layer_names()
    chosen = tuple(k for k in known if k in set(layers))
    return f"lora:r{rank}" + (f"@{'+'.join(chosen)}" if chosen and chosen != known else "")


def _parse_lora(setting: str) -> LoRA:
    match = _LORA_SETTING.fullmatch(setting)
    if match is None:
        raise StrategyError(f"'lora:{setting}' is not a LoRA strategy: write lora:r<rank> or "
                            "lora:r<rank>@<layer>+<layer>, e.g. lora:r4 or lora:r4@conv3+fc")
    rank = int(match.group(1))
    if not 1 <= rank <= LORA_MAX_RANK:
        raise StrategyError(f"the LoRA rank must be an integer from 1 to {LORA_MAX_RANK}, got {rank}")
    known = lora_layer_names()
    layers = match.group(2).split("+") if match.group(2) else []
    unknown = [layer for layer in layers if layer not in known]
    if unknown:
        raise StrategyError(f"'{unknown[0]}' is not a layer LoRA can wrap; choose among "
                            f"{', '.join(known)}")
    chosen = tuple(k for k in known if k in layers)
    chosen = () if chosen == known else chosen  # every layer is the plain lora:r<rank>
    where = ", ".join(chosen) if chosen else "every conv and dense layer"
    return LoRA(lora_name(rank, chosen), f"LoRA r={rank}" + (f" on {'+'.join(chosen)}" if chosen else ""),
                f"Pretrained layers frozen; a trainable rank-{rank} update (alpha/r)·B·A beside "
                f"{where}, and the new head trains.",
                uses_pretrained=True, frozen_features=False, rank=rank, layers=chosen)


# registration order is the order of families in a spec (`strategy_order`): keep it
register_family("partial", lambda s: partial(_parse_int("partial", s, "k")))
register_family("discriminative", _parse_discriminative)
register_family("copy-frozen", lambda s: copy_layers(_parse_int("copy-frozen", s, "k"), False))
register_family("copy-tuned", lambda s: copy_layers(_parse_int("copy-tuned", s, "k"), True))
register_family("lora", _parse_lora)
register_family("probe", _parse_block_probe)  # last: the order of the families above is kept
