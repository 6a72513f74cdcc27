"""Training strategies: which parameters train, from which starting point, at which learning rate.

A strategy never runs a training loop. It decides whether the model starts from pretrained
weights, freezes parameters (`requires_grad=False`) and returns the optimizer's parameter groups;
`engine.train.fit` is the one loop every strategy shares. New strategies (partial fine-tuning,
gradual unfreezing, LoRA, ...) subclass `Strategy` and register in `STRATEGIES`.

Strategies with a setting are named `family:setting` (for example `lora:r4`): a family registers
a parser in `FAMILIES` with `register_family`, and `get_strategy` builds the strategy from its
name, so such a name works everywhere a plain one does (specs, URLs, the CLI, the store).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from torch import nn

from engine.backbones import Classifier


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

    def schedule(self, model: Classifier, steps: int) -> Optional[Callable[[int, int], None]]:
        """A `before_step(step, steps)` hook for `train.fit` when the trainable set changes
        during training (gradual unfreezing, LP-FT); None when it is fixed."""
        return None


def _set_trainable(module: nn.Module, trainable: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(trainable)


class Scratch(Strategy):
    def param_groups(self, model, lr, backbone_lr):
        _set_trainable(model, True)
        return [{"params": list(model.parameters()), "lr": lr, "name": "all layers"}]


class LinearProbe(Strategy):
    def param_groups(self, model, lr, backbone_lr):
        _set_trainable(model.features, False)
        _set_trainable(model.head, True)
        return [{"params": list(model.head.parameters()), "lr": lr, "name": "head"}]


class FineTune(Strategy):
    def param_groups(self, model, lr, backbone_lr):
        _set_trainable(model, True)
        return [
            {"params": list(model.features.parameters()), "lr": backbone_lr, "name": "pretrained layers"},
            {"params": list(model.head.parameters()), "lr": lr, "name": "head"},
        ]


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Scratch("scratch", "From scratch",
                "Random initial weights; every layer learns from the target labels alone.",
                uses_pretrained=False, frozen_features=False),
        LinearProbe("probe", "Linear probe",
                    "Pretrained layers frozen; only a new linear head is trained on their features.",
                    uses_pretrained=True, frozen_features=True),
        FineTune("finetune", "Fine-tune",
                 "Starts from the pretrained weights and trains everything: the new head at the "
                 "full learning rate, the pretrained layers at a smaller one.",
                 uses_pretrained=True, frozen_features=False),
    )
}


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
