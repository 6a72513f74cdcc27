"""The strategy advisor: a team's situation in, a recommended transfer strategy with reasons out.

`advise(inputs)` is a pure function of an `AdvisorInputs` (labelled examples, classes, the kind
of data, how far it is from the pretraining data, model size, compute, storage, number of
tasks). It applies the practical decision rules below and returns a `Recommendation`: the
strategy, the reasons, cautions, and links to the app's experiments that show the effect, as
query parameters those pages accept. Each reason is written for the strategy finally
recommended: a rule that changes the strategy (compute, storage) replaces the reasons of the
choice it overrides instead of appending to them, so no reason argues for advice not given.

The rules, in the order they are applied:
1. Labels for every class: with fewer labelled examples than classes (none at all, or classes
   without a single example) no supervised method learns every class. Zero-shot
   classification with a foundation model that knows the classes by name (CLIP for images, a
   prompted language model for text) is possible when the data is close to what such models
   saw; CLIP is weak on specialised data (Radford et al., 2021: satellite images, tumour
   patches), so for a shifted or far domain, and for signals, the way forward is a model
   pretrained on that domain, or labelling some data first.
2. Model size: a billion-parameter model is prompted (images or text close to its pretraining,
   with a handful of labels or no GPU), used through its frozen embeddings (signals, which have
   no prompt interface), adapted with LoRA (in 16 bits on one GPU; QLoRA where the 16-bit
   weights do not fit), or fully fine-tuned with a cluster, plenty of labels, room for a full
   copy and one task. In a far domain without those means, size alone is no head start: start
   from a backbone pretrained closer to the data, and rule 3 applies.
3. Labelled data, for a model of up to a few hundred million parameters (RULES_OF_THUMB):
   under about 1,000 labels, or under 10 per class, a linear probe on the frozen backbone;
   thousands, still a probe in a close domain, fine-tuning of the later layers (or LoRA on a
   transformer) in a shifted one, and of every layer in a far one (another modality's early
   layers need to adapt too: Gong et al., 2021, fine-tuned an ImageNet network whole on audio
   spectrograms); tens of thousands, full fine-tuning with small, discriminative learning
   rates; millions in a far domain, training from scratch compared against fine-tuning.
4. Compute: a CPU favours strategies that backpropagate through fewer layers. Full
   fine-tuning becomes fine-tuning of the later layers; training from scratch, which takes
   about a day on one GPU at that scale and weeks on a CPU, becomes a probe first, the
   comparison moving to a GPU.
5. Tasks and storage: several tasks with room for one model only rule out a separately trained
   model (or trained later layers) per task: one shared frozen backbone with a small head per
   task (on a CPU), or with LoRA adapters per task (with a GPU, where they learn more than a
   head).

Not here: any widget (the advisor page) or training (the experiments it links to).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from engine.core.datasets import ALL_LABELS
from engine.experiments.lessons.catalog import lesson_of
from engine.experiments.lessons.curves import CurveSettings
from engine.experiments.lessons.sources import SourceSettings

MODALITIES = {
    "images": "Images (photos, medical scans, and signals drawn as spectrograms)",
    "text": "Text",
    "signals": "Other signals as recorded (ECG, raw audio waveforms, sensor time series)",
}
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
    "large": "Billions of parameters (a large language, vision-language or other foundation "
             "model)",
}
COMPUTE = {"cpu": "CPU only", "one_gpu": "One GPU", "cluster": "Several GPUs or a cluster"}
STORAGE = {"ample": "A full copy of the model per task is affordable",
           "tight": "Only one copy of the model fits; per-task files must be small"}

STRATEGIES = {
    "label_first": "Label some data first (or find a model pretrained on your domain)",
    "zeroshot": "Zero-shot classification with a pretrained foundation model (no training)",
    "prompting": "Zero- or few-shot prompting (in-context learning)",
    "probe": "Feature extraction: a linear probe on the frozen backbone",
    "partial": "Partial fine-tuning: freeze the early layers, train the later ones",
    "lora": "Low-rank adapters (LoRA) on a frozen model",
    "qlora": "QLoRA: LoRA adapters on a 4-bit quantised frozen model",
    "finetune": "Full fine-tuning with small, discriminative learning rates",
    "scratch": "Training from scratch, compared against fine-tuning",
}
TRAINED = ("probe", "partial", "lora", "qlora", "finetune", "scratch")  # strategies that train

FEW = 100  # labelled examples below which a large model is first tried with prompts alone
FEW_PER_CLASS = 10  # labels per class below which the backbone stays frozen, whatever the total
SMALL = 1_000  # below: freeze the backbone
MEDIUM = 10_000  # at or above: full fine-tuning is on the table
HUGE = 1_000_000  # at or above, in a far domain: training from scratch is worth comparing
MAX_EXAMPLES = 10**12
MAX_TASKS = 10_000

# The labels rule as the pipeline exercise and the advisor page state it; `_by_labels` applies it.
RULES_OF_THUMB = (
    "Rules of thumb: no labels, no supervised training, so use a foundation model zero-shot "
    "where your data is close to what it saw (CLIP for photos, a prompted language model for "
    "text) and otherwise a model pretrained on your domain, or label some data first; fewer "
    f"than about {SMALL:,} labels, or fewer than {FEW_PER_CLASS} labels per class, freeze the backbone and "
    "train a head (a linear probe); thousands, a probe is still the strong, cheap start in a "
    "domain close to the pretraining data, a shifted domain calls for fine-tuning the later "
    "layers (or LoRA on a transformer), and a far one for fine-tuning every layer; tens of "
    "thousands, full fine-tuning with small learning rates.")

# what the early, general layers of a backbone detect, by kind of data
EARLY_FEATURES = {"images": "edges, textures", "text": "word pieces, local syntax",
                  "signals": "short waveform shapes"}
# what the labels alone would call for, as a phrase, when compute or storage rules it out
WANTED = {"partial": "fine-tuning the later layers", "finetune": "full fine-tuning",
          "scratch": "training a network from scratch"}

CURVE_LABELS = (1, 2, 5, 10, 20, 50)  # the Transfer curves page's sizes (ALL_LABELS besides)
FIRST_LABELS = (1, 2, 5, 10)  # sizes for the link shown before there is a label per class
SOURCE_LABELS = (1, 5, 20, 50)  # sizes for the Which source? link
LINK_SEEDS = 3


@dataclass(frozen=True)
class AdvisorInputs:
    labelled_examples: int  # labelled target examples available, all classes together
    classes: int = 2  # classes of the target task (for labels per class)
    domain: str = "near"  # key of DOMAINS: how far the target is from the pretraining data
    model_size: str = "small"  # key of MODEL_SIZES
    compute: str = "one_gpu"  # key of COMPUTE
    storage: str = "ample"  # key of STORAGE: can every task keep its own full copy?
    tasks: int = 1  # tasks the same pretrained model must serve
    modality: str = "images"  # key of MODALITIES: the kind of data the target task has

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
                                     ("storage", self.storage, STORAGE),
                                     ("kind of data", self.modality, MODALITIES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")

    @property
    def per_class(self) -> int:
        return self.labelled_examples // self.classes

    def to_query(self) -> dict[str, str]:
        """The situation as link parameters (`QUERY_FIELDS`): a reload or a shared link
        gives the same advice."""
        return {param: str(getattr(self, name)) for param, name in QUERY_FIELDS.items()}

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple[Optional["AdvisorInputs"], list[str]]:
        """The situation a link holds; None without one, or when its values cannot be used
        (then a notice says why)."""
        found = {name: params[param] for param, name in QUERY_FIELDS.items() if param in params}
        if not found:
            return None, []
        try:
            for name in ("labelled_examples", "classes", "tasks"):
                if name in found:
                    found[name] = int(str(found[name]).strip())
            return cls(**{**DEFAULT_QUERY, **found}), []
        except (TypeError, ValueError) as err:
            return None, [f"its situation was not used ({err})"]


# link parameter -> AdvisorInputs field
QUERY_FIELDS = {"examples": "labelled_examples", "classes": "classes", "kind": "modality",
                "domain": "domain", "model": "model_size", "compute": "compute",
                "tasks": "tasks", "storage": "storage"}
DEFAULT_QUERY = {"labelled_examples": 0}  # the one field without a default


@dataclass(frozen=True)
class ExperimentLink:
    settings: Any  # a lesson section's settings (`engine.experiments.lessons`): what it opens
    label: str  # the link's text
    why: str  # what the experiment shows for this situation

    @property
    def page(self) -> str:
        """The lesson whose section the settings are (its page's file stem)."""
        return lesson_of(type(self.settings))

    def query(self) -> dict[str, str]:
        """The link's parameters: the section's own link form of the settings."""
        return self.settings.to_query()


@dataclass(frozen=True)
class Recommendation:
    strategy: str  # key of STRATEGIES
    reasons: tuple[str, ...]  # why, each following from the inputs and agreeing with `strategy`
    cautions: tuple[str, ...]  # what to watch or test
    links: tuple[ExperimentLink, ...]  # experiments in this app that show the effect

    @property
    def title(self) -> str:
        return STRATEGIES[self.strategy]


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else ("es" if word.endswith("s") else "s"))


# --- rule 1: labels for every class ----------------------------------------------------------

def _zero_shot_how(x: AdvisorInputs) -> Optional[str]:
    """How this kind of data is classified with no labels, or None where it cannot be."""
    if x.domain != "near" or x.modality == "signals":
        return None
    if x.modality == "images":
        return ("For images, a vision-language model such as CLIP classifies zero-shot: it "
                "scores each image against a text prompt per class name (\"a photo of a ...\"), "
                "with no training.")
    return ("For text, an instruction-following language model classifies zero-shot when the "
            "prompt describes the task and names the classes; among smaller models, one trained "
            "on natural-language inference can score \"This text is about ...\" for each class.")


def _too_few_labels(x: AdvisorInputs, reasons: list[str], cautions: list[str]) -> str:
    n = x.labelled_examples
    if n == 0:
        reasons.append("With no labelled examples of your classes, no supervised method can "
                       "learn them: a probe, fine-tuning, LoRA and training from scratch all "
                       "learn from labels. (Unsupervised domain adaptation needs labelled data "
                       "of the same classes from another domain.)")
    else:
        reasons.append(f"With {_count(n, 'labelled example')} for {x.classes:,} classes, at "
                       f"least {_count(x.classes - n, 'class')} have no example at all: no classifier "
                       "learns a class it has never seen.")
    how = _zero_shot_how(x)
    if how is None:
        why_not = {
            "far": "your data is far from what such models were pretrained on, so zero-shot is "
                   "unlikely to work",
            "related": ("generic zero-shot models are weak on specialised data (CLIP's "
                        "zero-shot accuracy was far below a supervised model's on satellite "
                        "images and tumour patches; Radford et al., 2021); look for a model "
                        "pretrained on your domain (a medical or remote-sensing one, say) and "
                        "measure it") if x.modality == "images" else (
                        "a general language model prompted zero-shot misses the vocabulary and "
                        "conventions of a specialised domain; look for a model pretrained on "
                        "your domain's text (a biomedical or legal one, say) and measure it"),
        }.get(x.domain, "for signals such as ECG or sensor data there is no foundation model "
                        "that knows your classes by name")
        if x.modality == "signals":
            why_not = ("for signals such as ECG or sensor data there is no foundation model "
                       "that knows your classes by name")
        reasons.append(f"Generic zero-shot classification is not the way here: {why_not}. Label "
                       "some data first: a few examples per class already let a linear probe on "
                       "a pretrained backbone show what more labels would buy.")
        reasons.append("Meanwhile, if you have plenty of unlabelled data, it can pretrain a "
                       "backbone on your own kind of data (self-supervised), and the labels you "
                       "add later go further from there.")
        cautions.append("Label across the real range of your data (sites, devices, time "
                        "periods), not only the easy cases.")
        return "label_first"
    reasons.append(how)
    if n:
        reasons.append("The labels you have are best kept as a test set, to measure the "
                       "zero-shot accuracy.")
    cautions.append("Zero-shot accuracy varies widely with the task and with how the classes are "
                    "named in the prompts: label a small test set (a few dozen examples per "
                    "class) and measure it before relying on it.")
    if x.modality == "images":
        cautions.append("Once there are a dozen or more labels per class, a linear probe on "
                        "CLIP's image features usually beats its zero-shot accuracy.")
    return "zeroshot"


# --- rule 2: a billion-parameter model -------------------------------------------------------

def _per_task(x: AdvisorInputs, strategy: str) -> Optional[str]:
    """What several tasks share under a strategy that leaves the pretrained model frozen."""
    if x.tasks == 1:
        return None
    tasks = _count(x.tasks, "task")
    if strategy in ("lora", "qlora"):
        return (f"{tasks}: one frozen base model serves them all, with one small adapter file "
                "per task swapped in at inference.")
    if strategy == "prompting":
        return f"{tasks}: one model serves them all, each task with its own prompt."
    if strategy == "probe":
        return (f"{tasks}: the frozen backbone is shared, so each task only adds its own small "
                "head.")
    return None


def _full_finetune_pays(x: AdvisorInputs) -> bool:
    """A large model far from its pretraining, with the labels, compute and storage for it."""
    return (x.domain == "far" and x.modality != "signals" and x.compute == "cluster"
            and x.storage == "ample" and x.tasks == 1 and x.labelled_examples >= MEDIUM)


def _prompting(x: AdvisorInputs, reasons: list[str], cautions: list[str]) -> str:
    model = "language model" if x.modality == "text" else "vision-language model"
    if x.labelled_examples < FEW:
        reasons.append(f"With {_count(x.labelled_examples, 'labelled example')}, a large "
                       f"pretrained {model} is best tried first with the task described in the "
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


def _embeddings(x: AdvisorInputs, reasons: list[str], cautions: list[str]) -> str:
    reasons.append("Signals have no prompt interface: a foundation model pretrained on signals "
                   "like yours is used through its embeddings. Each example goes through the "
                   "frozen model once, and a linear head trains on the stored embeddings in "
                   "seconds.")
    if x.labelled_examples < FEW:
        reasons.append(f"With {_count(x.labelled_examples, 'labelled example')}, a head on "
                       "frozen embeddings is also all the labels support without overfitting.")
    if x.compute == "cpu":
        reasons.append("On a CPU alone, training a billion-parameter model, even only its "
                       "adapters, takes far too long; one forward pass per example is slow but "
                       "happens only once.")
        if x.labelled_examples >= FEW:
            cautions.append("With a GPU, these labels would support LoRA or QLoRA adapters.")
    return "probe"


def _full_copy_pays(x: AdvisorInputs) -> bool:
    """A large model with the labels, compute and storage to update every weight for one task."""
    return (x.compute == "cluster" and x.storage == "ample" and x.tasks == 1
            and x.labelled_examples >= HUGE)


def _adapters(x: AdvisorInputs, reasons: list[str]) -> str:
    copies = " and a full copy per task" if x.tasks > 1 else ""
    reasons.append("Full fine-tuning of billions of parameters needs optimizer state and "
                   f"gradients for every weight{copies}. LoRA freezes the model and trains two "
                   "small matrices per adapted layer: often well under 1% of the parameters, "
                   "and no slower at inference once merged.")
    if x.labelled_examples < MEDIUM:
        reasons.append(f"With {_count(x.labelled_examples, 'labelled example')} (fewer than "
                       f"{MEDIUM:,}), a small trainable part also overfits less than updating "
                       "everything.")
    if x.compute == "one_gpu":
        reasons.append("On one GPU, LoRA with the frozen weights in 16 bits fits a model of "
                       "about 7 billion parameters on a 24 GB card (14 GB of weights, the rest "
                       "for activations and the small adapters). For a model whose 16-bit "
                       "weights do not fit, QLoRA keeps them in 4-bit NormalFloat and trains "
                       "16-bit adapters through them: that is how a 65-billion-parameter model "
                       "was fine-tuned on one 48 GB GPU (Dettmers et al., 2023).")
    return "lora"


def _large_model(x: AdvisorInputs, reasons: list[str], cautions: list[str]) -> str:
    if x.domain == "far":
        if _full_finetune_pays(x):
            reasons.append(f"A far domain with {_count(x.labelled_examples, 'labelled example')}"
                           ", a cluster, room to store a full copy, and a single task: updating "
                           "every weight is affordable, and a domain this far needs every layer "
                           "to adapt, which LoRA's few trained weights do less. Even a distant "
                           "start can beat random weights once every layer is fine-tuned (Gong "
                           "et al., 2021: an ImageNet network fine-tuned whole on audio "
                           "spectrograms).")
            cautions.append("Whether this model's start beats a smaller one pretrained closer "
                            "to your data, or training from scratch, is what to measure: run "
                            "them side by side before committing.")
            return "finetune"
        reasons.append("Your data is far from what this model was pretrained on (another "
                       "modality or a very different world): a prompt cannot call on knowledge "
                       "it does not have, and without the means to fine-tune every weight its "
                       "size alone is no head start, since what transfers is how close the "
                       "pretraining data is. Start from a backbone pretrained as close to your "
                       "data as you can find (a smaller one is cheaper to adapt), and adapt it "
                       "as your labels allow.")
        return _small_model(x, reasons)
    if _full_copy_pays(x):
        reasons.append(f"{_count(x.labelled_examples, 'labelled example')} for a single task, a "
                       "cluster and room for a full copy: enough data to update every weight, "
                       "and the means to. Full fine-tuning learns the most from that many "
                       "labels; LoRA is the cheaper run to compare it with.")
        return "finetune"
    if x.labelled_examples >= FEW and x.compute != "cpu":
        strategy = _adapters(x, reasons)
    elif x.modality == "signals":
        strategy = _embeddings(x, reasons, cautions)
    else:
        strategy = _prompting(x, reasons, cautions)
    note = _per_task(x, strategy)
    if note:
        reasons.append(note)
    return strategy


# --- rules 3 to 5: a model of up to a few hundred million parameters -------------------------

def _by_labels(x: AdvisorInputs) -> str:
    """What the labels and the domain alone call for (RULES_OF_THUMB)."""
    if x.labelled_examples >= HUGE and x.domain == "far" and x.per_class >= FEW_PER_CLASS:
        return "scratch"
    if x.labelled_examples < SMALL or x.per_class < FEW_PER_CLASS:
        return "probe"
    if x.labelled_examples < MEDIUM:
        return {"near": "probe", "related": "partial", "far": "finetune"}[x.domain]
    return "finetune"


def _label_reason(x: AdvisorInputs, wanted: str) -> str:
    """Why the labels call for `wanted`, when nothing overrides it."""
    n = _count(x.labelled_examples, "labelled example")
    if wanted == "scratch":
        return (f"{n} in a domain far from the pretraining data: enough to learn good features "
                "from the target alone, so training from scratch may match or beat transfer. "
                "Run both and compare.")
    if x.labelled_examples < SMALL or x.per_class < FEW_PER_CLASS:
        few = (f"fewer than {SMALL:,}" if x.labelled_examples < SMALL else
               f"only about {x.per_class:,} per class over {x.classes:,} classes: few-shot")
        return (f"{n} ({few}): updating millions of pretrained weights with so few labels per "
                f"class (about {x.per_class:,}) invites overfitting. Freeze the backbone and "
                "train only a new head on its features.")
    if wanted == "probe":
        return (f"{n} in a domain close to the pretraining data: the frozen features already "
                "fit, so a probe is the strong, cheap start. Step up to fine-tuning the later "
                "layers (or LoRA on a transformer) only if validation accuracy asks for it.")
    if wanted == "partial":
        return (f"{n} (thousands) in a shifted domain: enough to fine-tune the later, "
                "task-specific layers (or LoRA adapters on a transformer) while the early, "
                f"general ones ({EARLY_FEATURES[x.modality]}) stay frozen.")
    if x.domain == "far" and x.labelled_examples < MEDIUM:
        return (f"{n} (thousands) in a far domain: the early layers were tuned to another kind "
                f"of data ({EARLY_FEATURES[x.modality]} of the pretraining data), so they need "
                "to adapt too: fine-tune every layer, with small, discriminative learning "
                "rates. A far start fine-tuned whole can still beat random weights (Gong et al., "
                "2021: an ImageNet network on audio spectrograms).")
    return (f"{n} (tens of thousands or more): enough to update every layer. Use a learning "
            "rate several times below pretraining's (BERT pretrains at 1e-4 and fine-tunes at "
            "2e-5 to 5e-5; Devlin et al., 2019), smaller still for the early layers "
            "(discriminative learning rates), so the pretrained features are refined rather "
            "than overwritten.")


def _one_model_for_many_tasks(x: AdvisorInputs, wanted: str, reasons: list[str]) -> str:
    """Rule 5: several tasks, room for one model, labels that would train more than a head."""
    reasons.append(f"{_count(x.labelled_examples, 'labelled example')} would support "
                   f"{WANTED[wanted]} for a single task, but {_count(x.tasks, 'task')} with "
                   "room for one model only rule out a separately trained model per task (even "
                   "its later layers alone hold much of a network's weights).")
    if x.compute == "cpu":
        reasons.append("Share one frozen backbone and give each task its own small head (a "
                       "linear probe on the shared features): the heads are the only per-task "
                       "files, and on a CPU each example goes through the backbone once and "
                       "only the heads train. If a task needs more, LoRA adapters on its last "
                       "blocks alone keep its file small and backpropagate through those "
                       "blocks only.")
        return "probe"
    reasons.append("Share one frozen backbone and store a small set of LoRA adapter weights "
                   "per task (often well under 1% of the model's), loaded as needed: unlike a "
                   "head alone, adapters change the backbone's features, so they use those "
                   "labels better. A head per task on the shared backbone (a linear probe) is "
                   "the cheaper fallback and may come close where the frozen features already "
                   "fit.")
    if wanted == "scratch":
        reasons.append("With that many labels in a far domain, the shared backbone itself is "
                       "worth training first on all the tasks' data together, before the "
                       "adapters.")
    return "lora"


def _on_a_cpu(x: AdvisorInputs, wanted: str, reasons: list[str]) -> str:
    """Rule 4: the labels call for training every layer, and there is only a CPU."""
    n = _count(x.labelled_examples, "labelled example")
    if wanted == "finetune":
        reasons.append(f"{n} (tens of thousands or more) would support full fine-tuning with a "
                       "GPU. On a CPU, every full fine-tuning step runs the whole backbone "
                       "forwards and backwards; fine-tuning only the later layers, with the "
                       "frozen early layers' outputs computed once, costs far less and usually "
                       "keeps most of the gain.")
        return "partial"
    reasons.append(f"{n} in a domain far from the pretraining data: enough to learn good "
                   "features from the target alone, so a network trained from scratch may "
                   "match or beat transfer. But that means tens of passes over all "
                   f"{x.labelled_examples:,} examples: for a mid-sized network, about a day "
                   "on one GPU, and weeks on a CPU, which trains typically 10 to 50 times "
                   "slower.")
    reasons.append("The practical path on a CPU: start with a linear probe (each example goes "
                   "through the frozen backbone once, and the head trains in minutes); then run "
                   "the from-scratch comparison on a GPU, or first train a smaller network on a "
                   "subset to see whether it is worth it.")
    return "probe"


# Where a small pretrained backbone comes from, by the kind of data: a spectrogram is a signal
# drawn as an image, so the two choices lead to different starting points, and each says so.
STARTING_POINTS = {
    "images": "Where to start: an ImageNet-pretrained CNN or vision transformer. Signals drawn "
              "as spectrograms count as images here: ImageNet networks fine-tuned on log-mel "
              "spectrograms are a common, strong baseline for sound classification, but it is a "
              "far transfer (the filters learned photographs), so expect training more layers "
              "to pay off more than it would on photos, and compare with a model pretrained on "
              "audio if one fits your sounds.",
    "text": "Where to start: a pretrained text encoder (a BERT-style model) of a size your "
            "compute can run, pretrained on text as close to yours as you can find.",
    "signals": "Where to start: a model pretrained on the same kind of recording (raw audio, "
               "ECG, accelerometer data), if one exists; an image network cannot read a raw "
               "waveform. Drawn as a spectrogram, your signal becomes an image: choose Images "
               "above, and the advice turns to ImageNet networks on spectrograms.",
}


def _small_model(x: AdvisorInputs, reasons: list[str]) -> str:
    wanted = _by_labels(x)
    if x.tasks > 1 and x.storage == "tight" and wanted != "probe":
        strategy = _one_model_for_many_tasks(x, wanted, reasons)
    elif x.compute == "cpu" and wanted in ("finetune", "scratch"):
        strategy = _on_a_cpu(x, wanted, reasons)
    else:
        strategy = wanted
        reasons.append(_label_reason(x, wanted))
        if wanted == "finetune" and x.domain == "near":
            reasons.append("In a close domain, a probe or fine-tuning only the later layers may "
                           "come within a point or two at a fraction of the cost: run them as "
                           "baselines to see what full fine-tuning adds.")
        if x.tasks > 1 and wanted != "probe":
            reasons.append(f"{_count(x.tasks, 'task')} with room for a full copy each: every "
                           "task keeps its own trained model. One shared frozen backbone with "
                           "a head or LoRA adapters per task would save that storage, at some "
                           "cost in accuracy.")
        elif x.tasks > 1:
            reasons.append(_per_task(x, strategy))
    if x.domain == "far" and strategy in ("probe", "partial"):
        reasons.append("The domain is far, so frozen early features may not fit: continued "
                       "pretraining on unlabelled target data, or a source closer to the "
                       "target, can matter more than the choice of strategy.")
    elif x.modality == "text" and x.domain != "near" and strategy in TRAINED:
        reasons.append("With unlabelled text from your domain, continue pretraining the model "
                       "on it before fine-tuning: domain-adaptive pretraining improved every "
                       "domain tested, most where the domain was far from the original "
                       "pretraining text (Gururangan et al., 2020).")
    return strategy


# --- the advice --------------------------------------------------------------------------------

def _cautions(x: AdvisorInputs, strategy: str) -> list[str]:
    """The cautions every recommendation of `strategy` in this situation carries."""
    cautions = []
    if x.domain != "near":
        cautions.append("Domain shift is the main risk: validate on data from the deployment "
                        "setting (other sites, devices, time periods), not just a random split.")
    if x.domain == "far" and strategy in TRAINED:
        cautions.append("Watch for negative transfer: if the transferred model does worse than "
                        "the same model trained from scratch, the source is hurting.")
    if strategy in ("finetune", "partial"):
        cautions.append("Fine-tuning can erase what pretraining taught (catastrophic "
                        "forgetting): keep the learning rate small, stop early, and if the "
                        "old abilities matter, mix in old data (replay) or penalise changes to "
                        "important weights (EWC).")
    if strategy == "probe":
        cautions.append("Keep a from-scratch baseline as a reference point: it tells you what "
                        "the pretrained features are buying.")
    elif strategy == "scratch":
        cautions.append("Keep a linear probe as a reference point too: it shows what the "
                        "pretrained features give at almost no cost.")
    elif strategy in TRAINED:
        zero_shot = ", a zero-shot one" if _zero_shot_how(x) else ""
        cautions.append(f"Keep a from-scratch baseline{zero_shot} and a linear probe as "
                        "reference points: they tell you what the extra cost is buying.")
    return cautions


def advise(x: AdvisorInputs) -> Recommendation:
    """The recommended strategy for a situation, with reasons, cautions and experiment links."""
    reasons: list[str] = []
    cautions: list[str] = []
    if x.per_class == 0:
        strategy = _too_few_labels(x, reasons, cautions)
    elif x.model_size == "large":
        strategy = _large_model(x, reasons, cautions)
    else:
        strategy = _small_model(x, reasons)
        if strategy != "scratch":  # a pretrained backbone is part of the advice: which kind
            reasons.append(STARTING_POINTS[x.modality])
    cautions += _cautions(x, strategy)
    return Recommendation(strategy, tuple(reasons), tuple(cautions), experiment_links(x, strategy))


def experiment_links(x: AdvisorInputs, strategy: str) -> tuple[ExperimentLink, ...]:
    """Links to this app's experiments at the learner's scale (labels per class up to theirs;
    before there is a label per class, the first few sizes: how many to label)."""
    if x.per_class == 0:
        curves = ExperimentLink(
            CurveSettings(("scratch", "probe"), FIRST_LABELS, LINK_SEEDS),
            "Transfer curves: what the first labels buy",
            "From scratch against a linear probe at 1 to 10 labels per class, on the digit "
            "lesson: how few labels a pretrained backbone needs to be worth training.")
    else:
        labels = [k for k in CURVE_LABELS if k <= x.per_class] + (
            [ALL_LABELS] if x.per_class >= 100 else [])
        strategies = ("scratch", "probe") if strategy in ("probe", "prompting") else \
            ("scratch", "probe", "finetune")
        curves = ExperimentLink(
            CurveSettings(strategies, tuple(labels), LINK_SEEDS), "Transfer curves at your scale",
            "From scratch against the pretrained strategies at up to your labels per class, on "
            "the digit lesson: measure at which sizes each strategy's lead over scratch is called.")
    links = [curves]
    if x.domain != "near":
        source_labels = [k for k in SOURCE_LABELS if k <= x.per_class] or [1]
        links.append(ExperimentLink(
            SourceSettings(tuple(source_labels), LINK_SEEDS), "Which source? with the same labels",
            "The same target probed on features from a close source, a far one and none: how "
            "much domain match is worth."))
    return tuple(links)
