""""Show the PyTorch code": the plain PyTorch that sets up exactly the configuration on screen.

The code is derived from the strategy itself, not written beside it: `strategy_code` builds the
model, lets the strategy freeze parameters and make its optimizer groups, then writes the
statements that reproduce that state (what is frozen, one Adam group per group with its
learning rate, a re-initialisation or a schedule where the strategy has one). The snippet runs
as shown in this app's environment and yields the same parameter groups, which the tests check
by executing it.

Not here: training (the snippet stops where a training loop would begin) or LoRA, whose
code the LoRA lab shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.core.backbones import count_parameters, feature_blocks, get_backbone
from engine.core.strategies import (CopyLayers, Discriminative, GradualUnfreeze,
                               LinearProbeThenFineTune, Strategy, get_strategy)


class CodegenError(ValueError):
    """A strategy this page cannot write out."""


@dataclass(frozen=True)
class GroupSummary:
    name: str  # the strategy's name for the group, e.g. "head" or "block 3"
    lr: float  # the group's learning rate
    parameters: int  # weights in the group
    trainable_at_start: int  # of those, trainable at step 0 (a schedule may unfreeze more)


def describe_groups(strategy_name: str, backbone: str, lr: float, backbone_lr: float,
                    n_classes: int = 10) -> list[GroupSummary]:
    """The optimizer groups a strategy makes on a fresh model: names, rates, exact sizes."""
    model = get_backbone(backbone).build(n_classes)
    summaries = []
    for i, group in enumerate(get_strategy(strategy_name).param_groups(model, lr, backbone_lr)):
        trainable, total = count_parameters(group["params"])
        summaries.append(GroupSummary(group.get("name", f"group {i + 1}"), float(group["lr"]),
                                      total, trainable))
    return summaries


def _module_refs(model, blocks) -> list[tuple[str, torch.nn.Module]]:
    return [(f"blocks[{i}]", b) for i, b in enumerate(blocks)] + [("model.head", model.head)]


def _cover(params: list, refs) -> list[str]:
    """Expressions of whole modules whose parameters are exactly `params` (in order), or []."""
    ids = [id(p) for p in params]
    used, out = [], []
    for expr, module in refs:
        own = [id(p) for p in module.parameters()]
        if own and all(i in ids for i in own):
            used.extend(own)
            out.append(expr)
    return out if sorted(used) == sorted(ids) else []


@dataclass(frozen=True)
class LearningRates:
    """The rates a snippet names, so each group's rate is written as the strategy computes it."""
    lr: float  # the head's rate, written `lr` in the snippet
    backbone_lr: float  # the pretrained layers' rate, written `backbone_lr`
    blocks: int  # feature blocks: the powers a discriminative rate may use

    def expression(self, strategy: Strategy, value: float) -> str:
        """How the snippet writes a group's rate: by name, as the strategy's arithmetic, or
        as the number itself."""
        if value == self.lr:
            return "lr"
        if value == self.backbone_lr:
            return "backbone_lr"
        if isinstance(strategy, Discriminative):  # the same arithmetic as the strategy's
            for k in range(1, self.blocks + 1):
                if self.lr * strategy.factor ** k == value:
                    return f"lr * {strategy.factor!r} ** {k}"
        return repr(value)


def _reinit_lines(k: int) -> list[str]:
    return ["", f"# blocks {k + 1}.. start again from random weights",
            f"for block in blocks[{k}:]:",
            "    for module in block.modules():",
            "        if hasattr(module, 'reset_parameters'):",
            "            module.reset_parameters()"]


def _freeze_lines(refs) -> list[str]:
    """Freeze everything, then unfreeze the whole modules the strategy trains at the start."""
    trainable = [expr for expr, m in refs
                 if all(p.requires_grad for p in m.parameters()) and any(True for _ in m.parameters())]
    lines = ["", "# what trains at the start: everything else is frozen (no gradient, never updated)",
             "for p in model.parameters():", "    p.requires_grad_(False)"]
    if trainable:
        lines += [f"for module in [{', '.join(trainable)}]:",
                  "    for p in module.parameters():", "        p.requires_grad_(True)"]
    return lines


def _optimizer_lines(strategy: Strategy, groups: list[dict], refs, rates: LearningRates) -> list[str]:
    """One Adam group per strategy group, each written as the whole modules it holds."""
    lines = ["", "optimizer = torch.optim.Adam(["]
    for group in groups:
        cover = _cover(list(group["params"]), refs)
        if not cover:
            raise CodegenError(f"{strategy.name}: group '{group.get('name')}' is not made of whole blocks")
        params = (f"{cover[0]}.parameters()" if len(cover) == 1
                  else f"[p for m in [{', '.join(cover)}] for p in m.parameters()]")
        lines.append(f"    {{'params': {params}, 'lr': {rates.expression(strategy, group['lr'])}}},"
                     f"  # {group.get('name', '')}")
    return lines + ["])"]


def _schedule_lines(strategy: Strategy) -> list[str]:
    """The `before_step` hook of a strategy whose trainable set changes during training."""
    if isinstance(strategy, GradualUnfreeze):
        return ["", "def before_step(step, steps, steps_per_epoch):",
                "    \"\"\"Call before each optimizer step: one more block joins per stage, top first.\"\"\"",
                "    stage = max(1, steps_per_epoch, steps // (len(blocks) + 1))",
                "    unfrozen = min(len(blocks), step // stage)",
                "    for block in blocks[len(blocks) - unfrozen:]:",
                "        for p in block.parameters():",
                "            p.requires_grad_(True)"]
    if isinstance(strategy, LinearProbeThenFineTune):
        return ["", "def before_step(step, steps, steps_per_epoch):",
                "    \"\"\"Call before each optimizer step: the probe phase ends halfway.\"\"\"",
                "    if step == steps // 2:",
                "        for p in model.features.parameters():",
                "            p.requires_grad_(True)"]
    return []


def strategy_code(strategy_name: str, backbone: str = "small_cnn", lr: float = 3e-3,
                  backbone_lr: float = 3e-4, n_classes: int = 10) -> str:
    """Runnable PyTorch for the strategy's set-up on `backbone` (raises CodegenError)."""
    strategy: Strategy = get_strategy(strategy_name)
    if strategy_name.startswith("lora:"):
        raise CodegenError("LoRA's code is shown in the LoRA lab")
    model = get_backbone(backbone).build(n_classes)
    groups = strategy.param_groups(model, lr, backbone_lr)
    blocks = feature_blocks(model.features)
    refs = _module_refs(model, blocks)
    lines = [
        "import torch",
        "from engine.core.backbones import feature_blocks, get_backbone",
        "",
        f"model = get_backbone({backbone!r}).build(n_classes={n_classes})",
    ]
    if strategy.uses_pretrained:
        lines.append("# in the lesson, model.features holds the pretrained weights here")
    lines.append(f"blocks = feature_blocks(model.features)  # {len(blocks)} blocks, input side first")
    lines.append(f"lr, backbone_lr = {lr!r}, {backbone_lr!r}  # the head's rate, the pretrained layers' rate")
    if isinstance(strategy, CopyLayers) and strategy.k < len(blocks):
        lines += _reinit_lines(strategy.k)
    lines += _freeze_lines(refs)
    lines += _optimizer_lines(strategy, groups, refs, LearningRates(lr, backbone_lr, len(blocks)))
    lines += _schedule_lines(strategy)
    return "\n".join(lines) + "\n"
