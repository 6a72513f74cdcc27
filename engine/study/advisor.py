"""The strategy advisor: a team's situation in, a recommended transfer strategy with reasons out.

`advise(inputs)` is a pure function of an `AdvisorInputs` (labelled examples, classes, how far
the target domain is from the pretraining data, model size, compute, storage, number of tasks).
It applies the practical decision rules in a fixed order and returns a `Recommendation`: the
strategy, the reasons (each naming the rule and the input that triggered it), cautions, and
links to the app's experiments that show the effect, as query parameters those pages accept.

The rules, in the order they are applied:
1. Model size and compute: a billion-parameter model is adapted with prompts (a handful of
   labels, or no GPU) or low-rank adapters (LoRA; QLoRA on a single GPU); full fine-tuning of
   it needs a cluster, plenty of labels and storage, and one task.
2. Labelled data, for a model of up to a few hundred million parameters: under about 1,000
   labels freeze the backbone (feature extraction, a linear probe); thousands allow partial
   fine-tuning of the later layers; tens of thousands allow full fine-tuning with small,
   discriminative learning rates; millions in a far domain make training from scratch worth
   comparing.
3. Domain distance: the farther the target, the more layers need to change, and the greater
   the risk of negative transfer; a close domain lets frozen features go further.
4. Compute: on a CPU, prefer strategies that backpropagate through fewer layers.
5. Tasks and storage: many tasks with little storage favour one shared frozen model with a
   small per-task part (a head, or adapters) over a full copy per task.

Not here: any widget (the advisor page) or training (the experiments it links to).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.datasets import ALL_LABELS, labels_list_text

DOMAINS = {
    "near": "Close: the same kind of data the model was pretrained on (photos to other photos, "
            "web English to English reviews)",
    "related": "Related but shifted: the same modality with a different look or vocabulary "
               "(natural photos to X-rays, web text to legal contracts)",
    "far": "Far: a different modality or a very different world (English text to ECG "
           "signals, photographs to spectrograms)",
}
MODEL_SIZES = {
    "small": "Up to a few hundred million parameters (ResNet, EfficientNet, ViT-B, BERT-base)",
    "large": "Billions of parameters (a large language or vision-language model)",
}
COMPUTE = {"cpu": "CPU only", "one_gpu": "One GPU", "cluster": "Several GPUs or a cluster"}
STORAGE = {"ample": "A full copy of the model per task is affordable",
           "tight": "Only one copy of the model fits; per-task files must be small"}

STRATEGIES = {
    "prompting": "Zero- or few-shot prompting (in-context learning)",
    "probe": "Feature extraction: a linear probe on the frozen backbone",
    "partial": "Partial fine-tuning: freeze the early layers, train the later ones",
    "lora": "Low-rank adapters (LoRA) on a frozen model",
    "qlora": "QLoRA: LoRA adapters on a 4-bit quantised frozen model",
    "finetune": "Full fine-tuning with small, discriminative learning rates",
    "scratch": "Training from scratch, compared against fine-tuning",
}

FEW = 100  # labelled examples below which a large model is first tried with prompts alone
SMALL = 1_000  # below: freeze most of the backbone
MEDIUM = 10_000  # at or above: full fine-tuning is on the table
HUGE = 1_000_000  # at or above, in a far domain: training from scratch is worth comparing
MAX_EXAMPLES = 10**12
MAX_TASKS = 10_000

CURVE_LABELS = (1, 2, 5, 10, 20, 50)  # the Transfer curves page's sizes (ALL_LABELS besides)
SOURCE_LABELS = (1, 5, 20, 50)  # sizes for the Which source? link
LINK_SEEDS = "3"


@dataclass(frozen=True)
class AdvisorInputs:
    labelled_examples: int  # labelled target examples available, all classes together
    classes: int = 2  # classes of the target task (for labels per class)
    domain: str = "near"  # key of DOMAINS: how far the target is from the pretraining data
    model_size: str = "small"  # key of MODEL_SIZES
    compute: str = "one_gpu"  # key of COMPUTE
    storage: str = "ample"  # key of STORAGE: can every task keep its own full copy?
    tasks: int = 1  # tasks the same pretrained model must serve

    def __post_init__(self):
        for name, value, low, high in (("labelled examples", self.labelled_examples, 0,
                                        MAX_EXAMPLES), ("classes", self.classes, 2, 100_000),
                                       ("tasks", self.tasks, 1, MAX_TASKS)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number from {low:,} to {high:,}, "
                                 f"got {value!r}")
        for name, value, allowed in (("domain", self.domain, DOMAINS),
                                     ("model size", self.model_size, MODEL_SIZES),
                                     ("compute", self.compute, COMPUTE),
                                     ("storage", self.storage, STORAGE)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")

    @property
    def per_class(self) -> int:
        return self.labelled_examples // self.classes


@dataclass(frozen=True)
class ExperimentLink:
    page: str  # "transfer_curves" or "which_source": a lesson of this app
    label: str  # the link's text
    why: str  # what the experiment shows for this situation
    params: tuple[tuple[str, str], ...]  # query parameters, only values the page accepts

    def query(self) -> dict[str, str]:
        return dict(self.params)


@dataclass(frozen=True)
class Recommendation:
    strategy: str  # key of STRATEGIES
    reasons: tuple[str, ...]  # why, one decision rule each
    cautions: tuple[str, ...]  # what to watch or test
    links: tuple[ExperimentLink, ...]  # experiments in this app that show the effect

    @property
    def title(self) -> str:
        return STRATEGIES[self.strategy]


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _large_model(x: AdvisorInputs, reasons: list[str], cautions: list[str]) -> str:
    if x.labelled_examples < FEW or x.compute == "cpu":
        if x.labelled_examples < FEW:
            reasons.append(f"With {_count(x.labelled_examples, 'labelled example')}, a large "
                           "pretrained model is best tried first with the task described in the "
                           "prompt (zero-shot) or a few examples placed in it (few-shot): no "
                           "weights change, so nothing can overfit.")
        if x.compute == "cpu":
            reasons.append("On a CPU alone, training a billion-parameter model, even only its "
                           "adapters, takes far too long; use it through prompts, or pick a "
                           "smaller backbone and a probe.")
        cautions.append("Prompted models can be brittle: measure accuracy on a labelled test "
                        "set, and vary the wording and the order of the examples.")
        if x.labelled_examples >= FEW:
            cautions.append("With a GPU, these labels would support LoRA or QLoRA adapters.")
        return "prompting"
    full_ok = (x.compute == "cluster" and x.storage == "ample" and x.tasks == 1
               and x.labelled_examples >= MEDIUM and x.domain == "far")
    if full_ok:
        reasons.append(f"A far domain with {_count(x.labelled_examples, 'labelled example')}, a "
                       "cluster, room to store a full copy, and a single task: the one case "
                       "where updating every weight of a large model is both affordable and "
                       "likely to pay off.")
        cautions.append("Compare against LoRA at a fraction of the cost before committing; "
                        "full fine-tuning also risks forgetting what pretraining taught.")
        return "finetune"
    reasons.append("Full fine-tuning of billions of parameters needs optimizer state and "
                   "gradients for every weight and a full copy per task. LoRA freezes the "
                   "model and trains two small matrices per adapted layer: often well under "
                   "1% of the parameters, and no slower at inference once merged.")
    if x.labelled_examples < MEDIUM:
        reasons.append(f"With {_count(x.labelled_examples, 'labelled example')} (fewer than "
                       f"{MEDIUM:,}), a small trainable part also overfits less than updating "
                       "everything.")
    if x.compute == "one_gpu":
        reasons.append("On one GPU, QLoRA keeps the frozen weights in 4-bit NormalFloat and "
                       "trains 16-bit LoRA adapters through them; that is how a 65-billion-"
                       "parameter model was fine-tuned on a single 48 GB GPU.")
        return "qlora"
    return "lora"


def _small_model(x: AdvisorInputs, reasons: list[str], cautions: list[str]) -> str:
    n = _count(x.labelled_examples, "labelled example")
    if x.labelled_examples >= HUGE and x.domain == "far":
        reasons.append(f"{n} in a domain far from the pretraining data: enough to learn good "
                       "features from the target alone, so training from scratch may match or "
                       "beat transfer. Run both and compare.")
        return "scratch"
    if x.labelled_examples < SMALL:
        reasons.append(f"{n} (fewer than {SMALL:,}): updating millions of pretrained weights "
                       f"with so few labels (about {x.per_class:,} per class) invites "
                       "overfitting. Freeze the backbone and train only a new head on its "
                       "features.")
        strategy = "probe"
    elif x.labelled_examples < MEDIUM:
        if x.domain == "near":
            reasons.append(f"{n} in a domain close to the pretraining data: the frozen features "
                           "already fit, so a probe is strong and cheap. Step up to partial "
                           "fine-tuning only if validation accuracy asks for it.")
            strategy = "probe"
        else:
            reasons.append(f"{n} (thousands) in a shifted domain: enough to adapt the later, "
                           "task-specific layers while the early, general ones (edges, textures) "
                           "stay frozen.")
            strategy = "partial"
    else:
        reasons.append(f"{n} (tens of thousands or more): enough to update every layer. Use a "
                       "learning rate 10 to 100 times below pretraining's, smaller still for "
                       "the early layers (discriminative learning rates), so the pretrained "
                       "features are refined rather than overwritten.")
        strategy = "finetune"
        if x.domain == "near":
            reasons.append("In a close domain, partial fine-tuning or even a probe may come "
                           "within a point or two at a fraction of the cost; try them first.")
    if x.domain == "far" and strategy in ("probe", "partial"):
        reasons.append("The domain is far, so frozen early features may not fit: continued "
                       "pretraining on unlabelled target data, or a source closer to the "
                       "target, can matter more than the choice of strategy.")
    if x.compute == "cpu" and strategy == "finetune":
        reasons.append("On a CPU, every fine-tuning step runs the whole backbone forwards and "
                       "backwards; training only the later layers (partial fine-tuning) costs "
                       "far less.")
        strategy = "partial"
    return strategy


def advise(x: AdvisorInputs) -> Recommendation:
    """The recommended strategy for a situation, with reasons, cautions and experiment links."""
    reasons: list[str] = []
    cautions: list[str] = []
    if x.model_size == "large":
        strategy = _large_model(x, reasons, cautions)
    else:
        strategy = _small_model(x, reasons, cautions)
    if x.tasks > 1:
        if x.storage == "tight" and strategy in ("partial", "finetune"):
            reasons.append(f"{_count(x.tasks, 'task')} and room for one model only: a full copy "
                           "per task will not fit. Keep one frozen backbone and store a small "
                           "set of adapter (LoRA) weights per task, loaded as needed.")
            strategy = "lora"
        elif strategy in ("lora", "qlora"):
            reasons.append(f"{_count(x.tasks, 'task')}: one frozen base model serves them all, "
                           "with one small adapter file per task swapped in at inference.")
        elif strategy == "probe":
            reasons.append(f"{_count(x.tasks, 'task')}: the frozen backbone is shared, so each "
                           "task only adds its own small head.")
    if x.domain != "near":
        cautions.append("Domain shift is the main risk: validate on data from the deployment "
                        "setting (other sites, devices, time periods), not just a random split.")
    if x.domain == "far":
        cautions.append("Watch for negative transfer: if the transferred model does worse than "
                        "the same model trained from scratch, the source is hurting.")
    if strategy in ("finetune", "partial"):
        cautions.append("Fine-tuning can erase what pretraining taught (catastrophic "
                        "forgetting): keep the learning rate small, stop early, and if the "
                        "old abilities matter, mix in old data (replay) or penalise changes to "
                        "important weights (EWC).")
    cautions.append("Keep a from-scratch or zero-shot baseline and a linear probe as reference "
                    "points: they tell you what the extra cost is buying.")
    return Recommendation(strategy, tuple(reasons), tuple(cautions), experiment_links(x, strategy))


def experiment_links(x: AdvisorInputs, strategy: str) -> tuple[ExperimentLink, ...]:
    """Links to this app's experiments at the learner's scale (labels per class up to theirs)."""
    per_class = max(x.per_class, 1)
    labels = [k for k in CURVE_LABELS if k <= per_class] + ([ALL_LABELS] if per_class >= 100 else [])
    strategies = "scratch,probe" if strategy in ("probe", "prompting") else "scratch,probe,finetune"
    links = [ExperimentLink(
        "transfer_curves", "Transfer curves at your scale",
        "From scratch against the pretrained strategies at up to your labels per class, on the "
        "digit lesson: see where frozen features win and where fine-tuning catches up.",
        (("strategies", strategies), ("labels", labels_list_text(labels)), ("seeds", LINK_SEEDS)))]
    if x.domain != "near":
        source_labels = [k for k in SOURCE_LABELS if k <= per_class] or [1]
        links.append(ExperimentLink(
            "which_source", "Which source? with the same labels",
            "The same target probed on features from a close source, a far one and none: how "
            "much domain match is worth.",
            (("labels", labels_list_text(source_labels)), ("seeds", LINK_SEEDS))))
    return tuple(links)
