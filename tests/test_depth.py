"""How much of the network trains: partial fine-tuning, discriminative rates, gradual unfreezing,
LP-FT, Yosinski-style layer copying, and the PyTorch code the page shows for each."""

import pytest
import torch

from engine.core.backbones import feature_blocks, get_backbone
from engine.study.codegen import CodegenError, describe_groups, strategy_code
from engine.core.strategies import StrategyError, get_strategy
from engine.core.train import fit

LR, BACKBONE_LR = 3e-3, 3e-4
DEPTH_STRATEGIES = ["scratch", "probe", "finetune", "partial:0", "partial:1", "partial:3",
                    "discriminative:0.5", "discriminative:0.38", "gradual", "lpft",
                    "copy-frozen:0", "copy-frozen:2", "copy-tuned:2", "copy-tuned:4"]


def model_and_groups(name, seed=0):
    torch.manual_seed(seed)
    model = get_backbone("small_cnn").build(10)
    return model, get_strategy(name).param_groups(model, LR, BACKBONE_LR)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def digits(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("name", DEPTH_STRATEGIES)
def test_names_round_trip(name):
    assert get_strategy(name).name == name


@pytest.mark.parametrize("bad", ["partial:-1", "partial:two", "partial:01", "discriminative:0",
                                 "discriminative:1.5", "discriminative:nan", "discriminative:0.50",
                                 "copy-frozen:", "copy-tuned:x", "gradual:2"])
def test_malformed_names_are_refused(bad):
    with pytest.raises(StrategyError):
        get_strategy(bad)


def test_more_blocks_than_the_backbone_has_is_refused():
    with pytest.raises(StrategyError, match="4 blocks"):
        model_and_groups("partial:5")


@pytest.mark.parametrize("name,frozen_blocks", [("partial:1", [0, 1, 2]), ("partial:3", [0]),
                                                ("copy-frozen:2", [0, 1]), ("probe", [0, 1, 2, 3])])
def test_frozen_parameters_stay_bit_identical(name, frozen_blocks):
    model, groups = model_and_groups(name)
    blocks = feature_blocks(model.features)
    before = [snapshot(blocks[i]) for i in frozen_blocks]
    trained_before = snapshot(model.head)
    x, y = digits()
    fit(model, groups, x, y, steps=8, batch_size=16, seed=0)
    for i, state in zip(frozen_blocks, before):
        for key, value in blocks[i].state_dict().items():
            assert torch.equal(value, state[key]), f"block {i + 1} changed under {name}"
    assert any(not torch.equal(v, trained_before[k]) for k, v in model.head.state_dict().items())


def test_discriminative_rates_shrink_by_the_factor_per_block():
    _, groups = model_and_groups("discriminative:0.5")
    rates = [g["lr"] for g in groups]
    assert rates == [LR * 0.5 ** 4, LR * 0.5 ** 3, LR * 0.5 ** 2, LR * 0.5, LR]
    assert [g["name"] for g in groups] == ["block 1", "block 2", "block 3", "block 4", "head"]


def test_partial_groups_and_trainable_counts():
    summary = describe_groups("partial:2", "small_cnn", LR, BACKBONE_LR)
    assert [(s.name, s.lr) for s in summary] == [("last 2 blocks", BACKBONE_LR), ("head", LR)]
    assert summary[0].parameters == (32 * 64 * 9 + 64) + (64 * 9 * 128 + 128)  # conv3 + fc
    assert summary[1].parameters == 128 * 10 + 10


def trainable_blocks(model):
    return [all(p.requires_grad for p in b.parameters()) for b in feature_blocks(model.features)]


def test_gradual_unfreezing_follows_its_schedule():
    model, _ = model_and_groups("gradual")
    steps, per_epoch = 50, 10  # 4 blocks: a stage is max(10, 50 // 5) = 10 steps
    hook = get_strategy("gradual").schedule(model, steps, per_epoch)
    seen = {}
    for step in range(steps):
        hook(step, steps)
        seen[step] = trainable_blocks(model)
    assert seen[0] == [False, False, False, False]
    assert seen[9] == [False, False, False, False]
    assert seen[10] == [False, False, False, True]  # the top block first
    assert seen[25] == [False, False, True, True]
    assert seen[49] == [True, True, True, True]


def test_gradual_unfreezing_in_training_leaves_a_block_alone_until_its_turn():
    model, groups = model_and_groups("gradual")
    blocks = feature_blocks(model.features)
    bottom, top = snapshot(blocks[0]), snapshot(blocks[3])
    x, y = digits(n=20)
    steps = 10  # stage = max(1, 20 // 16 -> 2, 10 // 5) = 2: the bottom block joins at step 8
    fit(model, groups, x, y, steps=steps - 3, batch_size=16, seed=0,
        before_step=get_strategy("gradual").schedule(model, steps, 2))
    assert all(torch.equal(v, bottom[k]) for k, v in blocks[0].state_dict().items())
    assert any(not torch.equal(v, top[k]) for k, v in blocks[3].state_dict().items())


def test_lpft_is_a_probe_for_the_first_half_then_fine_tunes():
    model, groups = model_and_groups("lpft")
    features = snapshot(model.features)
    hook = get_strategy("lpft").schedule(model, 12, 1)
    x, y = digits()
    fit(model, groups, x, y, steps=6, batch_size=16, seed=0, before_step=hook)
    assert all(torch.equal(v, features[k]) for k, v in model.features.state_dict().items())
    assert not any(p.requires_grad for p in model.features.parameters())
    hook(6, 12)
    assert all(p.requires_grad for p in model.parameters())


def test_copying_reinitialises_the_blocks_above_k_from_the_seed():
    torch.manual_seed(0)
    pretrained = get_backbone("small_cnn").build(10)
    state = pretrained.state_dict()

    def copied(seed):
        torch.manual_seed(seed)
        model = get_backbone("small_cnn").build(10)
        model.load_state_dict(state)
        get_strategy("copy-tuned:2").param_groups(model, LR, BACKBONE_LR)
        return model

    a, b, c = copied(1), copied(1), copied(2)
    blocks_a, blocks_b, blocks_c = (feature_blocks(m.features) for m in (a, b, c))
    pre = feature_blocks(pretrained.features)
    for i in (0, 1):  # copied
        assert torch.equal(blocks_a[i][0].weight, pre[i][0].weight)
    for i in (2, 3):  # re-initialised: new values, the same for the same seed
        w = lambda blocks: next(blocks[i].parameters())
        assert not torch.equal(w(blocks_a), w(pre))
        assert torch.equal(w(blocks_a), w(blocks_b)) and not torch.equal(w(blocks_a), w(blocks_c))


def param_names(model, params):
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for p in params]


@pytest.mark.parametrize("name", DEPTH_STRATEGIES)
def test_the_shown_code_runs_and_makes_the_same_groups(name):
    code = strategy_code(name, lr=LR, backbone_lr=BACKBONE_LR)
    namespace = {}
    exec(compile(code, f"<{name}>", "exec"), namespace)  # exactly the text the page shows
    shown_model, optimizer = namespace["model"], namespace["optimizer"]
    model, groups = model_and_groups(name)
    assert len(optimizer.param_groups) == len(groups)
    for shown, ours in zip(optimizer.param_groups, groups):
        assert shown["lr"] == ours["lr"]
        assert param_names(shown_model, shown["params"]) == param_names(model, ours["params"])
    assert ([p.requires_grad for p in shown_model.parameters()]
            == [p.requires_grad for p in model.parameters()])
    if get_strategy(name).schedule(model, 20, 2) is not None:
        assert "def before_step" in code


def test_lora_code_lives_in_the_lora_lab():
    with pytest.raises(CodegenError):
        strategy_code("lora:r4")
