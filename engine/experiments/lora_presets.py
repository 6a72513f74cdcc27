"""Architectures for the LoRA lab, built from their published hyperparameters, and the lab's
measurements on the lesson's own model.

Every preset is built from its architecture and counted from its module shapes; no total is
stored anywhere. Transformer presets are `transformers` configs with the published
hyperparameters written below, instantiated on the meta device (shapes without memory, nothing
downloaded), so their module names are those of the Hugging Face implementation. The ResNets
are torchvision's (the same names as timm's), also on the meta device. GPT-3 175B has no
implementation there, so `GPT3` below is its shape table as modules, with projections named
q_proj, k_proj, v_proj, out_proj, fc_in and fc_out. `small-cnn` is the engine's own lesson model.

Also here, for the lab's page and command line: `count_preset`, the memory estimates of full
fine-tuning, LoRA and QLoRA (`memory_estimates`, with their activation term `activation_term`)
and the exact trainable-parameter count of a strategy on the built lesson model
(`strategy_parameters`). Not here: drawing (the page's business) and the merge check, which
trains (`engine.experiments.lora_merge`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from engine.core.backbones import count_parameters, get_backbone
from engine.core.lora import (BYTES, Architecture, LoraCount, LoraError, MemoryEstimate, MemoryTerm,
                              architecture, count_lora, full_memory, lora_memory, qlora_memory)


class GPT3(nn.Module):
    """GPT-3's shapes (Brown et al. 2020, table 2.1): a learned position embedding, pre-norm
    blocks of four d x d attention projections and a 4d MLP, all with biases; the output layer
    shares the token embedding. Never run, only counted."""

    def __init__(self, d_model: int = 12288, n_layers: int = 96, vocab: int = 50257, n_ctx: int = 2048):
        super().__init__()
        self.wte = nn.Embedding(vocab, d_model)
        self.wpe = nn.Embedding(n_ctx, d_model)
        self.h = nn.ModuleList(GPT3Block(d_model) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one tensor, counted once


class GPT3Block(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))
        self.ln_2 = nn.LayerNorm(d)
        self.fc_in, self.fc_out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)


@dataclass(frozen=True)
class TransformerShape:
    layers: int  # transformer blocks (encoder and decoder together for mT0)
    hidden: int
    heads: int
    seq: int  # the longest sequence the model reads (ViT-B/16: always 196 patches + 1)
    fixed_seq: bool = False  # the sequence length is set by the architecture (ViT)


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    build: Callable[[], nn.Module]  # the model on the meta device
    output_layer: str  # module path of the output layer (QLoRA keeps it in 16 bits)
    default_targets: tuple[str, ...]
    target_sets: tuple[tuple[str, tuple[str, ...]], ...]  # (label, targets) for the rank chart
    about: str  # where the hyperparameters come from
    transformer: Optional[TransformerShape] = None
    image: Optional[tuple[int, int, int]] = None  # (C, H, W) input of a CNN


def _hf(model_class: str, config_class: str, **hyper) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import transformers

        config = getattr(transformers, config_class)(**hyper)
        with torch.device("meta"):
            return getattr(transformers, model_class)(config)
    return build


def _mt0_large() -> nn.Module:
    """mT0 large as published: its output layer is a matrix of its own (the checkpoint's config
    says tie_word_embeddings false), which transformers 5 ties to the input embedding when it
    builds mT5 from a config; untie it."""
    model = _hf("MT5ForConditionalGeneration", "MT5Config", vocab_size=250112, d_model=1024,
                d_kv=64, d_ff=2816, num_layers=24, num_decoder_layers=24, num_heads=16,
                feed_forward_proj="gated-gelu")()
    model.lm_head.weight = nn.Parameter(torch.empty_like(model.lm_head.weight))
    return model


def _torchvision(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        with torch.device("meta"):
            return getattr(torchvision.models, name)(weights=None)
    return build


def _gpt3() -> nn.Module:
    with torch.device("meta"):
        return GPT3()


LESSON_CLASSES = 10  # the lesson's target, the UCI digits, has ten classes


def _small_cnn() -> nn.Module:
    return get_backbone("small_cnn").build(LESSON_CLASSES)


_LLAMA = dict(vocab_size=32000, hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
              tie_word_embeddings=False)
_ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
_LLAMA_SETS = (("q, v", ("q_proj", "v_proj")), ("q, k, v, o", _ATTN),
               ("every linear layer in the blocks", (*_ATTN, "gate_proj", "up_proj", "down_proj")))
_BERT_SETS = (("query, value", ("query", "value")), ("query, key, value", ("query", "key", "value")),
              ("every linear layer in the blocks", ("query", "key", "value", "dense")))

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("gpt3-175b", "GPT-3 175B", _gpt3, "lm_head", ("q_proj", "v_proj"),
           (("Wq, Wv", ("q_proj", "v_proj")), ("Wq, Wk, Wv, Wo", ("q_proj", "k_proj", "v_proj", "out_proj")),
            ("attention and MLP", ("q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"))),
           "Brown et al. 2020: d_model 12288, 96 layers, 96 heads, 2048-token context, 50257 tokens",
           TransformerShape(96, 12288, 96, 2048)),
    Preset("llama-2-7b", "Llama 2 7B", _hf("LlamaForCausalLM", "LlamaConfig", **_LLAMA,
                                           intermediate_size=11008, num_key_value_heads=32,
                                           max_position_embeddings=4096),
           "lm_head", ("q_proj", "v_proj"), _LLAMA_SETS,
           "hidden 4096, 32 layers, 32 heads, MLP 11008, 32000 tokens, 4096-token context",
           TransformerShape(32, 4096, 32, 4096)),
    Preset("llama-3-8b", "Llama 3 8B", _hf("LlamaForCausalLM", "LlamaConfig", **dict(
        _LLAMA, vocab_size=128256), intermediate_size=14336, num_key_value_heads=8,
        max_position_embeddings=8192, rope_theta=500000.0),
           "lm_head", ("q_proj", "v_proj"), _LLAMA_SETS,
           "hidden 4096, 32 layers, 32 query and 8 key/value heads, MLP 14336, 128256 tokens",
           TransformerShape(32, 4096, 32, 8192)),
    Preset("mistral-7b", "Mistral 7B (v0.1)", _hf("MistralForCausalLM", "MistralConfig", **_LLAMA,
                                                  intermediate_size=14336, num_key_value_heads=8,
                                                  max_position_embeddings=32768, sliding_window=4096),
           "lm_head", ("q_proj", "v_proj"), _LLAMA_SETS,
           "hidden 4096, 32 layers, 32 query and 8 key/value heads, MLP 14336, 32000 tokens",
           TransformerShape(32, 4096, 32, 8192)),
    Preset("llama-65b", "LLaMA 65B (QLoRA's largest model)", _hf(
        "LlamaForCausalLM", "LlamaConfig", **dict(_LLAMA, hidden_size=8192, num_hidden_layers=80,
                                                  num_attention_heads=64),
        intermediate_size=22016, num_key_value_heads=64, max_position_embeddings=2048),
           "lm_head", ("q_proj", "v_proj"), _LLAMA_SETS,
           "Touvron et al. 2023: hidden 8192, 80 layers, 64 heads, MLP 22016, 32000 tokens",
           TransformerShape(80, 8192, 64, 2048)),
    Preset("bert-base-uncased", "BERT base (uncased)", _hf("BertModel", "BertConfig"), "",
           ("query", "value"), _BERT_SETS,
           "hidden 768, 12 layers, 12 heads, MLP 3072, 30522 tokens, with the pooler",
           TransformerShape(12, 768, 12, 512)),
    Preset("roberta-base", "RoBERTa base", _hf("RobertaModel", "RobertaConfig", vocab_size=50265,
                                               max_position_embeddings=514, type_vocab_size=1,
                                               pad_token_id=1), "",
           ("query", "value"), _BERT_SETS,
           "hidden 768, 12 layers, 12 heads, MLP 3072, 50265 tokens, with the pooler",
           TransformerShape(12, 768, 12, 512)),
    Preset("gpt2", "GPT-2 (124M)", _hf("GPT2LMHeadModel", "GPT2Config"), "lm_head",
           ("c_attn",), (("c_attn (q, k, v together)", ("c_attn",)),
                         ("attention", ("c_attn", "c_proj")),
                         ("attention and MLP", ("c_attn", "c_proj", "c_fc"))),
           "768 wide, 12 layers, 12 heads, 50257 tokens, 1024-token context; output layer tied",
           TransformerShape(12, 768, 12, 1024)),
    Preset("mt0-large", "mT0 large", _mt0_large,
           "lm_head", ("q", "v"), (("q, v", ("q", "v")), ("q, k, v, o", ("q", "k", "v", "o")),
                                   ("attention and MLP", ("q", "k", "v", "o", "wi_0", "wi_1", "wo"))),
           "mT5 large: d_model 1024, 24 encoder and 24 decoder layers, 16 heads, 250112 tokens",
           TransformerShape(48, 1024, 16, 512)),
    Preset("vit-b-16", "ViT-B/16 (ImageNet, 1000 classes)", _hf(
        "ViTForImageClassification", "ViTConfig", num_labels=1000), "classifier",
           ("q_proj", "v_proj"), (("q, v", ("q_proj", "v_proj")), ("q, k, v, o", _ATTN),
                                  ("attention and MLP", (*_ATTN, "fc1", "fc2"))),
           "224x224 images in 16x16 patches, hidden 768, 12 layers, 12 heads, MLP 3072",
           TransformerShape(12, 768, 12, 197, fixed_seq=True)),
    Preset("resnet18", "ResNet-18", _torchvision("resnet18"), "fc", ("conv1", "conv2"),
           (("conv2 (every block's second 3x3)", ("conv2",)), ("conv1, conv2", ("conv1", "conv2")),
            ("every convolution and fc", ("conv1", "conv2", "downsample.0", "fc"))),
           "torchvision's architecture (He et al. 2016), 1000 classes", image=(3, 224, 224)),
    Preset("resnet50", "ResNet-50", _torchvision("resnet50"), "fc", ("conv1", "conv2", "conv3"),
           (("conv2 (every block's 3x3)", ("conv2",)), ("conv1, conv2, conv3", ("conv1", "conv2", "conv3")),
            ("every convolution and fc", ("conv1", "conv2", "conv3", "downsample.0", "fc"))),
           "torchvision's architecture (He et al. 2016), 1000 classes", image=(3, 224, 224)),
    Preset("small-cnn", "The lesson's small CNN", _small_cnn, "head",
           ("features.0.0", "features.1.0", "features.2.0", "features.3.1"),
           (("fc", ("features.3.1",)), ("conv3, fc", ("features.2.0", "features.3.1")),
            ("conv1, conv2, conv3, fc", ("features.0.0", "features.1.0", "features.2.0", "features.3.1"))),
           "three 3x3 convolutions (16, 32, 64 channels), a 128-unit dense layer, a 10-class head",
           image=(1, 28, 28)),
)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise LoraError(f"unknown preset '{name}'; choose from: {', '.join(PRESETS)}")
    return PRESETS[name]


@functools.lru_cache(maxsize=len(PRESETS))
def preset_architecture(name: str) -> Architecture:
    """The preset's LoRA-wrappable modules and totals, from its model (built once)."""
    preset = get_preset(name)
    return architecture(preset.build(), preset.output_layer)


def count_preset(name: str, rank: int, targets) -> LoraCount:
    return count_lora(preset_architecture(name), rank, targets)


# ---------------------------------------------------------------------------------------------
# Activations: the memory term that does not depend on the method

@functools.lru_cache(maxsize=len(PRESETS))
def _cnn_activations_per_image(name: str) -> int:
    """Numbers output by every layer with weights (convolution, batch norm, linear) for one
    image, from a forward pass on the meta device."""
    preset = get_preset(name)
    model = preset.build().to("meta")
    total = [0]
    hooks = [m.register_forward_hook(lambda mod, inp, out: total.__setitem__(0, total[0] + out.numel()))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    with torch.no_grad():
        model(torch.empty(1, *preset.image, device="meta"))
    for h in hooks:
        h.remove()
    return total[0]


def activation_term(name: str, batch: int, seq: int, checkpointing: bool, weights: str) -> MemoryTerm:
    """What the backward pass keeps, at `batch` examples of `seq` tokens, in the weights' precision."""
    preset, b = get_preset(name), BYTES[weights]
    t = preset.transformer
    if t is None:
        n = _cnn_activations_per_image(name) * batch
        return MemoryTerm("activations", n * b, f"every convolution, batch-norm and linear output "
                          f"for {batch} image{'s' if batch != 1 else ''} of "
                          f"{'x'.join(map(str, preset.image))}, kept for the backward pass "
                          "(ReLU and pooling outputs not counted; no checkpointing)")
    s = t.seq if t.fixed_seq else seq
    per_block = s * batch * t.hidden * (34 + 5 * t.heads * s / t.hidden) * b / 2
    source = (f"Korthikanti et al. 2022: s·b·h·(34 + 5·a·s/h) bytes per block in 16 bits; "
              f"s = {s} tokens, b = {batch}, h = {t.hidden}, a = {t.heads}, {t.layers} blocks")
    if name == "mt0-large":
        source += " (24 encoder + 24 decoder blocks, cross-attention's extra not counted)"
    if checkpointing:
        kept = 2 * s * batch * t.hidden * t.layers * b / 2
        return MemoryTerm("activations", kept + per_block,
                          "gradient checkpointing: each block's input kept (2·s·b·h bytes in 16 "
                          "bits), one block's activations rebuilt at a time; " + source)
    return MemoryTerm("activations", per_block * t.layers, "every block's activations kept; " + source)


@dataclass(frozen=True)
class MemoryEstimates:
    """One preset's training memory by method, each with the same activation term."""

    full: MemoryEstimate  # full fine-tuning: gradients and Adam states for every weight
    lora: MemoryEstimate  # LoRA: the frozen model in its precision, Adam for A and B only
    qlora: MemoryEstimate  # QLoRA: frozen linear layers in 4-bit NormalFloat, LoRA beside them

    def methods(self) -> tuple[MemoryEstimate, ...]:
        """The three, in the order the page draws them."""
        return self.full, self.lora, self.qlora


def memory_estimates(name: str, rank: int, targets, weights: str = "bf16", batch: int = 1,
                     seq: int = 512, checkpointing: bool = True) -> MemoryEstimates:
    """Full fine-tuning, LoRA and QLoRA of a preset, with the same activation term."""
    if weights not in BYTES:
        raise LoraError(f"weights are fp32 or bf16, got {weights!r}")
    for value, what in ((batch, "batch size"), (seq, "sequence length")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LoraError(f"the {what} must be a positive integer, got {value!r}")
    arch, count = preset_architecture(name), count_preset(name, rank, targets)
    acts = activation_term(name, batch, seq, checkpointing, weights)
    qacts = activation_term(name, batch, seq, checkpointing, "bf16")  # QLoRA computes in bf16
    return MemoryEstimates(full=full_memory(arch.total, weights, acts),
                           lora=lora_memory(arch.total, count.trainable, weights, acts),
                           qlora=qlora_memory(arch.total, arch.quantizable, count.trainable, qacts))


# ---------------------------------------------------------------------------------------------
# The lesson's model: exact counts

def strategy_parameters(strategy: str, backbone: str = "small_cnn",
                        n_classes: int = LESSON_CLASSES) -> tuple[int, int]:
    """(trainable, total) parameters of `strategy` on the built backbone, counted after the
    strategy has set it up (LoRA's adapters included)."""
    from engine.core.strategies import get_strategy

    model = get_backbone(backbone).build(n_classes)
    get_strategy(strategy).param_groups(model, 1e-3, 1e-4)
    return count_parameters(model)
