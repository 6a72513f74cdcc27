"""LoRA: counts agree with peft, GPT-3's published figures, merging changes nothing, training moves
only the adapter and the head, strategy names round-trip, and the command line refuses bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from conftest import ROOT
from engine.core.lora import (LoRAConv2d, LoRALinear, LoraError, architecture, count_lora, inject_lora,
                         lora_layers, merge_lora)

warnings.filterwarnings("ignore", module="peft")


def peft_counts(model: nn.Module, rank: int, targets: list[str]) -> tuple[int, int]:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=rank, target_modules=targets)).get_nb_trainable_parameters()


class Holder(nn.Module):
    """One layer under a name, with a neighbour that must not be counted."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer
        self.other = nn.Linear(3, 5)


def gpt2_conv1d():
    from transformers.pytorch_utils import Conv1D

    return Conv1D(nf=48, nx=16)  # GPT-2's layer: weight (in 16, out 48)


@pytest.mark.parametrize("make", [lambda: nn.Linear(20, 7), lambda: nn.Linear(5, 300, bias=False),
                                  lambda: nn.Conv2d(3, 8, 3, padding=1), lambda: nn.Conv2d(4, 6, (1, 5)),
                                  lambda: nn.Conv1d(6, 4, 3), lambda: nn.Embedding(1000, 12),
                                  gpt2_conv1d],
                         ids=["linear", "linear-nobias", "conv2d", "conv2d-1x5", "conv1d", "embedding",
                              "gpt2-conv1d"])
@pytest.mark.parametrize("rank", [1, 3, 8])
def test_counts_equal_peft_on_real_modules(make, rank):
    model = Holder(make())
    base = sum(p.numel() for p in model.parameters())
    mine = count_lora(architecture(model), rank, ["layer"])
    assert mine.trainable > 0 and mine.total == base + mine.trainable
    assert (mine.trainable, mine.total) == peft_counts(model, rank, ["layer"])  # peft wraps in place


@pytest.mark.parametrize("preset,targets", [
    ("gpt2", ["c_attn"]), ("gpt2", ["c_attn", "c_proj", "c_fc", "wte"]),
    ("bert-base-uncased", ["query", "value"]), ("bert-base-uncased", ["dense", "word_embeddings"]),
    ("small-cnn", ["features.0.0", "features.2.0", "head"]),
])
def test_preset_counts_equal_peft_on_the_meta_model(preset, targets):
    from engine.experiments.lora_presets import PRESETS, count_preset

    rank = 4
    model = PRESETS[preset].build()  # a fresh model; peft wraps it in place
    mine = count_preset(preset, rank, targets)
    assert (mine.trainable, mine.total) == peft_counts(model, rank, targets)


def test_preset_totals_come_from_the_architecture():
    from engine.experiments.lora_presets import preset_architecture

    # published sizes: GPT-2 124M (tied output), BERT base 110M, Llama 2 7B
    assert preset_architecture("gpt2").total == 124_439_808
    assert preset_architecture("bert-base-uncased").total == 109_482_240
    assert preset_architecture("llama-2-7b").total == 6_738_415_616
    assert preset_architecture("small-cnn").total == 98_442


def test_gpt3_figures_of_the_lora_paper():
    from engine.experiments.lora_presets import count_preset

    qv = ["q_proj", "v_proj"]
    assert count_preset("gpt3-175b", 1, qv).trainable == 4_718_592  # "4.7M" at r = 1 on Wq, Wv
    assert count_preset("gpt3-175b", 8, qv).trainable == 37_748_736  # "37.7M" at r = 8
    # the checkpoint: 350 GB in 16 bits, ~35 MB for the r = 4 adapter (their section 4.2)
    count = count_preset("gpt3-175b", 4, qv)
    assert abs(count.base_total * 2 / 350e9 - 1) < 0.01
    assert 35e6 <= count.trainable * 2 <= 38e6


@pytest.mark.parametrize("targets,message", [
    (["nope"], "matches no module"), (["mlp"], "cannot wrap"), ([], "at least one target")])
def test_bad_targets_are_refused(targets, message):
    from engine.experiments.lora_presets import count_preset

    with pytest.raises(LoraError, match=message):
        count_preset("gpt2" if targets != ["mlp"] else "llama-2-7b", 4, targets)
    with pytest.raises(LoraError, match="positive integer"):
        count_preset("gpt2", 0, ["c_attn"])


def small_cnn(seed: int = 0):
    from engine.core.backbones import get_backbone

    torch.manual_seed(seed)
    return get_backbone("small_cnn").build(10)


def test_the_hand_written_layers_agree_with_peft_in_count_and_output():
    from peft import LoraConfig, get_peft_model

    paths = ["features.0.0", "features.2.0", "features.3.1"]
    mine = small_cnn()
    wrapped = inject_lora(mine, paths, rank=4, alpha=8)
    theirs = get_peft_model(small_cnn(), LoraConfig(r=4, lora_alpha=8, target_modules=paths))
    lora_numbers = sum(p.numel() for w in wrapped.values() for p in w.lora_parameters())
    assert (lora_numbers, sum(p.numel() for p in mine.parameters())) == theirs.get_nb_trainable_parameters()
    # the same A and B (B made non-zero) give the same function
    torch.manual_seed(1)
    for path, layer in wrapped.items():
        layer.lora_B.data.normal_()
        peft_layer = theirs.base_model.model.get_submodule(path)
        peft_layer.lora_A["default"].weight.data.copy_(layer.lora_A.data)
        peft_layer.lora_B["default"].weight.data.copy_(layer.lora_B.data)
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(mine(x), theirs(x), atol=1e-5)
        assert not torch.allclose(mine(x), small_cnn()(x), atol=1e-3)  # the adapter does act


def test_merging_gives_the_same_outputs():
    model = small_cnn()
    inject_lora(model, ["features.1.0", "features.3.1"], rank=2, alpha=4)
    torch.manual_seed(2)
    for layer in lora_layers(model).values():
        layer.lora_B.data.normal_()
    merged = merge_lora(model)
    assert not lora_layers(merged) and isinstance(merged.features[3][1], nn.Linear)
    assert sum(p.numel() for p in merged.parameters()) == 98_442  # the plain model's size again
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        before, after, plain = model(x), merged(x), small_cnn()(x)
    assert (before - after).abs().max() < 1e-4
    assert (before - plain).abs().max() > 1e-2  # so the check could fail


def test_a_new_adapter_starts_as_the_base_layer():
    for base in (nn.Linear(6, 4), nn.Conv2d(2, 3, 3, padding=1)):
        layer = (LoRALinear if isinstance(base, nn.Linear) else LoRAConv2d)(base, 3, 6)
        x = torch.rand(2, 6) if isinstance(base, nn.Linear) else torch.rand(2, 2, 5, 5)
        assert torch.equal(layer(x), base(x)) and layer.scaling == 2.0
        assert [p.requires_grad for p in base.parameters()] == [False, False]


@pytest.mark.parametrize("name,changed", [
    ("lora:r2", {"features.0.0.lora_A", "features.0.0.lora_B", "features.1.0.lora_A",
                 "features.1.0.lora_B", "features.2.0.lora_A", "features.2.0.lora_B",
                 "features.3.1.lora_A", "features.3.1.lora_B", "head.weight", "head.bias"}),
    ("lora:r4@conv3+fc", {"features.2.0.lora_A", "features.2.0.lora_B", "features.3.1.lora_A",
                          "features.3.1.lora_B", "head.weight", "head.bias"}),
])
def test_training_changes_only_the_adapter_and_the_head(name, changed):
    from engine.core.strategies import get_strategy
    from engine.core.train import fit

    model = small_cnn()
    groups = get_strategy(name).param_groups(model, 3e-3, 3e-4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    fit(model, groups, x, y, steps=4, batch_size=16, seed=0)
    moved = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert moved == changed
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == changed


def test_strategy_names_round_trip_and_bad_ones_are_refused():
    from engine.experiments.lora_presets import strategy_parameters
    from engine.core.strategies import StrategyError, get_strategy, lora_name
    from engine.experiments.sweep import SweepSpec

    for name in ("lora:r1", "lora:r16", "lora:r4@conv3+fc", "lora:r2@fc"):
        assert get_strategy(name).name == name
    assert lora_name(4, ["fc", "conv3"]) == "lora:r4@conv3+fc"
    assert lora_name(4, ["conv1", "conv2", "conv3", "fc"]) == "lora:r4"
    for bad, message in (("lora:r0", "from 1 to"), ("lora:rx", "lora:r<rank>"), ("lora:4", "lora:r<rank>"),
                         ("lora:r4@conv9", "conv9"), ("lora:r4@fc+conv3", "is written 'lora:r4@conv3+fc'")):
        with pytest.raises(StrategyError, match=re.escape(message)):
            get_strategy(bad)
    assert "lora:r8" in SweepSpec(strategies=("probe", "lora:r8")).strategies
    # counted on the built model: head 1,290; LoRA 1,257 per rank on conv1..fc; 98,442 in all
    assert strategy_parameters("probe") == (1_290, 98_442)
    assert strategy_parameters("lora:r1") == (1_290 + 1_257, 98_442 + 1_257)
    assert strategy_parameters("lora:r4@fc")[0] == 1_290 + 4 * (576 + 128)


def test_memory_estimates_hold_their_terms_and_the_anchors():
    from engine.core.lora import PUBLISHED
    from engine.experiments.lora_presets import memory_estimates

    llama = memory_estimates("llama-2-7b", 8, ["q_proj", "v_proj"], "bf16", 1, 512, True)
    assert llama.full.total > llama.lora.total > llama.qlora.total
    assert [e.method for e in llama.methods()] == ["Full fine-tuning", "LoRA", "QLoRA"]
    assert all(t.assumption for e in llama.methods() for t in e.terms)
    assert [t.label for t in llama.full.terms][-1] == "activations"
    gpt3 = memory_estimates("gpt3-175b", 4, ["q_proj", "v_proj"], "bf16", 1, 2048, True)
    assert abs(gpt3.lora.total / PUBLISHED["gpt3_lora_train"].value - 1) < 0.1  # ~350 GB
    q65 = memory_estimates("llama-65b", 8, ["q_proj", "v_proj"], "bf16", 1, 512, True).qlora
    assert q65.total < PUBLISHED["qlora_65b"].value  # fits one 48 GB GPU


def test_merge_check_on_a_trained_adapter(pretrained, fresh_store):
    from engine.experiments.lora_merge import MergeCheckConfig, stored_check
    from engine.experiments.protocol import run_experiment
    from engine.experiments.sweep import SweepSpec, plan_runs

    config = MergeCheckConfig("lora:r2@conv3+fc", 1, seed=0)
    assert stored_check(config, fresh_store) is None
    assert run_experiment(config, fresh_store).trained == 1
    check = stored_check(config, fresh_store)
    assert check.strategy == "lora:r2@conv3+fc" and check.labels_per_class == 1 and check.seed == 0
    assert check.max_abs_diff < 1e-3 and abs(check.accuracy - check.merged_accuracy) < 0.5
    assert check.lora_params == 2 * (288 + 64 + 576 + 128)
    assert check.lora_params * 4 < check.lora_bytes < check.lora_params * 4 + 1_000  # data + header
    assert check.lora_bytes < check.full_bytes / 20
    assert run_experiment(config, fresh_store).trained == 0  # stored: nothing retrained
    # the run it trains is the trade-off sweep's run of the same strategy, size and seed
    run = plan_runs(SweepSpec(strategies=("lora:r2@conv3+fc",), labels_per_class=(1,), seeds=1))[0]
    assert config.plan() == run
    assert MergeCheckConfig("lora:r2@conv3+fc", 1, seed=2).plan().seed == 2


@pytest.mark.parametrize("bad,message", [
    ({"strategy": "finetune"}, "not a LoRA strategy"), ({"strategy": "lora:r0"}, "rank"),
    ({"labels_per_class": -1}, "labels_per_class"), ({"seed": 1.5}, "seed"),
])
def test_a_merge_check_refuses_what_it_cannot_run(bad, message):
    from engine.experiments.lora_merge import MergeCheckConfig

    with pytest.raises(ValueError, match=message):
        MergeCheckConfig(**bad)


def test_merge_check_keys_are_pinned():
    """A stored merge check is found again by the same settings: its keys may not drift."""
    from engine.experiments.lora_merge import MergeCheckConfig

    config = MergeCheckConfig("lora:r4", 10)
    assert config.key() == "lora-merge-7650a96cf1d2825fe96a"
    assert [u.key for u in config.units()] == ["lora-merge:72aa0e55e8b13618ae7b"]


@pytest.mark.parametrize("args,message", [
    (["--preset", "gpt-5", "--rank", "4", "--targets", "q_proj"], "unknown preset 'gpt-5'"),
    (["--preset", "gpt3-175b", "--rank", "4", "--targets", "query"], "target 'query' matches no module"),
    (["--preset", "gpt3-175b", "--rank", "0", "--targets", "q_proj"], "positive integer"),
    (["--preset", "small-cnn", "--rank", "2", "--targets", "head", "--alpha", "0"], "--alpha"),
])
def test_the_command_line_refuses_in_one_line(args, message, capsys):
    from engine.__main__ import main

    assert main(["lora-params", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_the_command_line_prints_one_json_line():
    proc = subprocess.run([sys.executable, "-m", "engine", "lora-params", "--preset", "gpt3-175b",
                           "--rank", "8", "--targets", "q_proj,v_proj", "--alpha", "16"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["trainable"] == 37_748_736 and out["total"] == 174_604_259_328 + 37_748_736
    assert abs(out["percent"] - 100 * 37_748_736 / out["total"]) < 1e-12
