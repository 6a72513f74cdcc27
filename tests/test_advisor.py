"""The strategy advisor: an expert's answer pinned for each kind of situation, the rules that keep
every reason in agreement with the advice, the links it opens, and the two pages that state the
rules of thumb (AppTest, nothing trains)."""

from __future__ import annotations

import itertools
import re

import pytest

from engine.study.advisor import (COMPUTE, DOMAINS, MODALITIES, MODEL_SIZES, RULES_OF_THUMB,
                                  STORAGE, STRATEGIES, TRAINED, AdvisorInputs, advise)

# --- an expert's answers ------------------------------------------------------------------------
# Each scenario: the situation, the strategy an expert would recommend, and phrases the reasons
# must carry. The comment above each says why an expert answers that way.
EXPERT_ANSWERS = [
    # No labels at all: no supervised method learns the classes. For photos close to what CLIP
    # saw, CLIP compares each image with a prompt per class name: zero-shot, without training.
    (dict(labelled_examples=0, classes=5), "zeroshot", ("no supervised method can learn them", "CLIP")),
    # No labels, a specialised domain (X-rays): CLIP is weak there (Radford et al., 2021), so a
    # model pretrained on that domain, or labelling, not generic zero-shot.
    (dict(labelled_examples=0, classes=5, domain="related"), "label_first",
     ("Radford et al., 2021", "pretrained on your domain")),
    # No labels, ECG signals with an image/text model: no foundation model knows ECG classes by
    # name and the domain is far, so the only way forward is to label some data.
    (dict(labelled_examples=0, classes=4, domain="far", modality="signals"), "label_first",
     ("not the way here", "Label some data first")),
    # No labels, text, a large language model close to its pretraining: prompt it zero-shot
    # with the task and the class names.
    (dict(labelled_examples=0, classes=3, modality="text", model_size="large"), "zeroshot",
     ("language model classifies zero-shot",)),
    # 30 labels for 100 classes of photos: at least 70 classes were never seen, so no classifier
    # can be trained for all of them; use zero-shot and keep the labels as a test set.
    (dict(labelled_examples=30, classes=100, domain="near"), "zeroshot",
     ("at least 70 classes have no example", "test set")),
    # 5,000 labels over 1,000 classes is 5 per class: few-shot, whatever the total.
    (dict(labelled_examples=5_000, classes=1_000, domain="related"), "probe",
     ("few-shot", "Freeze the backbone")),
    # 500 labels for 5 classes (100 per class), related domain: too few to update millions of
    # weights without overfitting; a linear probe on frozen features.
    (dict(labelled_examples=500, classes=5, domain="related"), "probe",
     ("per class (about 100)", "Freeze the backbone")),
    # Thousands of labels in a close domain: the frozen features already fit, so a probe is the
    # strong cheap start, with fine-tuning of the later layers as the step up (RULES_OF_THUMB).
    (dict(labelled_examples=3_000, classes=2, domain="near"), "probe",
     ("strong, cheap start", "Step up to fine-tuning the later layers")),
    # Thousands in a shifted domain: adapt the later, task-specific layers, keep the early,
    # general ones frozen (RULES_OF_THUMB).
    (dict(labelled_examples=8_000, classes=10, domain="related"), "partial",
     ("fine-tune the later", "edges, textures")),
    # Tens of thousands in a close domain with a GPU: enough to update every layer, with small
    # discriminative learning rates; a probe and partial fine-tuning as baselines.
    (dict(labelled_examples=50_000, classes=2, domain="near"), "finetune",
     ("enough to update every layer", "baselines")),
    # The same on a CPU: a CPU favours backpropagating through fewer layers, so fine-tune the
    # later layers only (never LoRA through the whole network).
    (dict(labelled_examples=50_000, classes=2, domain="near", compute="cpu"), "partial",
     ("would support full fine-tuning with a GPU", "costs far less")),
    # Millions of labels far from any pretraining, with a GPU: the target alone can teach good
    # features, so training from scratch is worth comparing against transfer.
    (dict(labelled_examples=5_000_000, classes=10, domain="far"), "scratch",
     ("Run both and compare",)),
    # 2 million far-domain labels on a CPU: from scratch would take weeks; the practical path
    # is a probe first (one forward pass per example) and the from-scratch run on a GPU.
    (dict(labelled_examples=2_000_000, classes=10, domain="far", compute="cpu"), "probe",
     ("weeks on a CPU", "on a GPU", "start with a linear probe")),
    # 40 tasks, room for one model, a GPU, labels for full fine-tuning: one frozen backbone with
    # LoRA adapters per task (small files); a head per task is the cheaper fallback.
    (dict(labelled_examples=50_000, classes=2, domain="related", storage="tight", tasks=40),
     "lora", ("40 tasks with room for one model only", "LoRA adapter weights per task",
              "head per task")),
    # The same on a CPU: one shared frozen backbone with a small head per task; only the heads
    # train, and each example goes through the backbone once.
    (dict(labelled_examples=50_000, classes=2, domain="related", storage="tight", tasks=40,
          compute="cpu"), "probe", ("Share one frozen backbone", "only the heads train")),
    # Thousands in a close domain, 5 tasks: the probe's frozen backbone is shared by all tasks.
    (dict(labelled_examples=3_000, classes=2, domain="near", tasks=5), "probe",
     ("5 tasks: the frozen backbone is shared",)),
    # A large language model with 20 labels in a close domain: prompting, no weights change.
    (dict(labelled_examples=20, classes=2, model_size="large", modality="text"), "prompting",
     ("language model is best tried first",)),
    # A large model with 5,000 labels but only a CPU: adapters of billions of weights are too
    # slow to train on a CPU; prompt it (or switch to a smaller backbone and a probe).
    (dict(labelled_examples=5_000, classes=2, model_size="large", compute="cpu",
          modality="text"), "prompting", ("On a CPU alone",)),
    # A large model, 5,000 labels, one GPU: LoRA on 16-bit weights fits a 7B model in 24 GB;
    # QLoRA only where the 16-bit weights do not fit (Dettmers et al., 2023).
    (dict(labelled_examples=5_000, classes=2, model_size="large"), "lora",
     ("On one GPU", "7 billion", "QLoRA keeps them in 4-bit")),
    # A large model, a million labels, one task, a cluster and room: full fine-tuning, and no
    # talk of a copy per task.
    (dict(labelled_examples=1_000_000, classes=10, model_size="large", compute="cluster"),
     "finetune", ("enough data to update every weight",)),
    # Thousands of labels in a far domain: another modality's early layers must adapt too, so
    # every layer is fine-tuned (Gong et al., 2021), not only the later ones.
    (dict(labelled_examples=4_000, classes=4, domain="far"), "finetune",
     ("need to adapt too", "Gong et al., 2021")),
    # Legal text with a BERT-sized model and thousands of labels: continue pretraining on the
    # unlabelled domain text first (Gururangan et al., 2020).
    (dict(labelled_examples=8_000, classes=4, domain="related", modality="text"), "partial",
     ("Gururangan et al., 2020",)),
    # The same with a cluster: plain LoRA, no quantisation needed.
    (dict(labelled_examples=5_000, classes=2, model_size="large", compute="cluster"), "lora",
     ("LoRA freezes the model",)),
    # Photos to spectrograms with a large model, 200,000 labels, a cluster, one task: updating
    # every weight is affordable and pays off this far from pretraining.
    (dict(labelled_examples=200_000, classes=2, model_size="large", compute="cluster",
          domain="far"), "finetune", ("needs every layer", "Gong et al., 2021")),
    # A large language model for ECG signals (far, another modality) with 50 labels: it cannot be
    # prompted with ECG; pick a backbone pretrained closer, and with 50 labels, probe it.
    (dict(labelled_examples=50, classes=5, model_size="large", domain="far", modality="signals"),
     "probe", ("far from what this model was pretrained on", "Freeze the backbone")),
    # A large foundation model pretrained on signals like these, 50 labels, a CPU: signals have
    # no prompt interface, so a linear head on its frozen embeddings.
    (dict(labelled_examples=50, classes=5, model_size="large", modality="signals",
          compute="cpu"), "probe", ("no prompt interface", "stored embeddings")),
]


@pytest.mark.parametrize("inputs,strategy,phrases", EXPERT_ANSWERS)
def test_the_advisor_answers_as_an_expert_would(inputs, strategy, phrases):
    advice = advise(AdvisorInputs(**inputs))
    reasons = " ".join(advice.reasons)
    assert advice.strategy == strategy, advice.reasons
    for phrase in phrases:
        assert phrase in reasons, (phrase, advice.reasons)


def test_a_large_model_far_from_its_pretraining_is_never_prompted():
    for modality, labels, compute in itertools.product(MODALITIES, (0, 20, 5_000),
                                                       ("cpu", "one_gpu")):
        advice = advise(AdvisorInputs(labels, model_size="large", domain="far",
                                      modality=modality, compute=compute))
        assert advice.strategy not in ("prompting", "zeroshot"), (modality, labels, compute)


def test_the_storage_rule_keeps_only_reasons_that_still_apply():
    advice = advise(AdvisorInputs(50_000, domain="related", storage="tight", tasks=40))
    text = " ".join(advice.reasons)
    assert advice.strategy == "lora"
    assert "enough to update every layer" not in text  # the overridden choice's reason
    assert "learning rate 10 to 100 times" not in text
    on_cpu = advise(AdvisorInputs(50_000, domain="related", storage="tight", tasks=40,
                                  compute="cpu"))
    assert on_cpu.strategy == "probe" and "costs far less" not in " ".join(on_cpu.reasons)


def test_no_labels_gives_no_supervised_advice():
    for modality, domain, size in itertools.product(MODALITIES, DOMAINS, MODEL_SIZES):
        advice = advise(AdvisorInputs(0, classes=5, domain=domain, model_size=size,
                                      modality=modality))
        assert advice.strategy in ("zeroshot", "label_first")
        assert "per class)" not in " ".join(advice.reasons)
        assert "Freeze the backbone" not in " ".join(advice.reasons)


# --- every reason follows from the inputs and agrees with the advice -------------------------

GRID = [AdvisorInputs(n, classes=c, domain=d, model_size=m, compute=p, storage=s, tasks=t,
                      modality=k)
        for n, c in ((0, 5), (3, 10), (6, 3), (50, 5), (500, 5), (3_000, 2), (8_000, 10),
                     (50_000, 2), (2_000_000, 10))
        for d, m, p, s, t, k in itertools.product(DOMAINS, MODEL_SIZES, COMPUTE, STORAGE, (1, 40),
                                                  MODALITIES)]

# a phrase that argues for one strategy: it may only be shown when that strategy is the advice
ARGUES_FOR = {"enough to update every layer": ("finetune",),
              "Freeze the backbone and train only a new head": ("probe",),
              "costs far less and usually keeps most of the gain": ("partial",),
              "Run both and compare": ("scratch",),
              "LoRA with the frozen weights in 16 bits": ("lora",),
              "LoRA freezes the model": ("lora", "qlora"),
              "classifies zero-shot": ("zeroshot",),
              "Label some data first": ("label_first",),
              "best tried first with the task described in the prompt": ("prompting",)}


def _contradictions(x: AdvisorInputs) -> list[str]:
    """What in the advice for `x` does not follow from `x` or argues against the advice."""
    advice = advise(x)
    reasons, everything = " ".join(advice.reasons), " ".join(advice.reasons + advice.cautions)
    wrong = [f"argues for {strategies}: {phrase}" for phrase, strategies in ARGUES_FOR.items()
             if phrase in reasons and advice.strategy not in strategies]
    checks = {
        "incomplete advice": not (advice.strategy in STRATEGIES and advice.reasons
                                  and advice.cautions and advice.links),
        "0 per class": "about 0 per class" in everything,
        "trains with a class unlabelled": x.per_class == 0 and advice.strategy in TRAINED,
        # a CPU favours backpropagating through fewer layers
        "trains every layer on a CPU": x.compute == "cpu" and advice.strategy in (
            "lora", "qlora", "finetune", "scratch"),
        "a CPU without one": x.compute != "cpu" and "CPU" in reasons,
        "a trained model per task without room": x.tasks > 1 and x.storage == "tight"
        and advice.strategy in ("partial", "finetune", "scratch"),
        "tasks for one task": x.tasks == 1 and re.search(r"\d tasks", reasons) is not None,
        "prompts far away or for signals": (x.domain == "far" or x.modality == "signals")
        and advice.strategy in ("prompting", "zeroshot"),
        "CLIP off images": x.modality != "images" and "CLIP" in everything,
        "NLI off text": x.modality != "text" and "natural-language inference" in everything,
        "a far domain when near": x.domain != "far" and "The domain is far" in reasons,
        "baselines with nothing trained": advice.strategy not in TRAINED
        and "reference points" in everything,
    }
    return wrong + [name for name, failed in checks.items() if failed]


def test_every_reason_follows_from_the_inputs_and_agrees_with_the_advice():
    failures = {x: found for x in GRID if (found := _contradictions(x))}
    assert not failures, list(failures.items())[:5]
    shown = " ".join(" ".join(advise(x).reasons) for x in GRID)
    assert all(phrase in shown for phrase in ARGUES_FOR)  # every check above can fail


# --- the rules of thumb, stated once -----------------------------------------------------------

@pytest.mark.parametrize("inputs,strategy", [
    (dict(labelled_examples=0), "zeroshot"),  # "no labels ... zero-shot (CLIP for images)"
    (dict(labelled_examples=900), "probe"),  # "fewer than about 1,000 labels ... a linear probe"
    (dict(labelled_examples=900, domain="far"), "probe"),
    (dict(labelled_examples=4_000, domain="near"), "probe"),  # "thousands, a probe ... close"
    (dict(labelled_examples=4_000, domain="related"), "partial"),  # "... fine-tuning the later"
    (dict(labelled_examples=4_000, domain="far"), "finetune"),  # "... and a far one every layer"
    (dict(labelled_examples=40_000, domain="related"), "finetune"),  # "tens of thousands, full"
])
def test_the_advisor_applies_the_rules_of_thumb_it_states(inputs, strategy):
    assert advise(AdvisorInputs(**inputs)).strategy == strategy
    for words in ("fewer than about 1,000 labels", "thousands, a probe is still",
                  "shifted domain calls for fine-tuning the later layers", "tens of thousands",
                  "zero-shot", "label some data first"):
        assert words in RULES_OF_THUMB


# --- the links it opens ----------------------------------------------------------------------------
# The advisor's links open experiments that may already be stored: the keys they lead to are
# pinned (computed before the rules above were rewritten), so no stored run is orphaned.
PINNED_LINKS = [
    (dict(labelled_examples=500, classes=5, domain="related"),
     {"transfer_curves": "2d65bab1c5cbc0fb4548", "which_source": "ed83899fd272aaf15441"}),
    (dict(labelled_examples=6, classes=3, domain="far"),
     {"transfer_curves": "1334dc3d8f54b5fb0c09", "which_source": "05f702a5f7f55bfca3bc"}),
    (dict(labelled_examples=50_000, classes=2, domain="near"),
     {"transfer_curves": "25207e4a83844fa1503d"}),
    (dict(labelled_examples=20, classes=2, model_size="large"),
     {"transfer_curves": "a0fbea4900b0ff65492e"}),
]


@pytest.mark.parametrize("inputs,keys", PINNED_LINKS)
def test_advisor_links_open_the_same_experiments(inputs, keys):
    from engine.experiments.lessons.curves import CurveSettings
    from engine.experiments.lessons.sources import SourceSettings

    sections = {"transfer_curves": CurveSettings, "which_source": SourceSettings}
    links = advise(AdvisorInputs(**inputs)).links
    assert {link.page for link in links} == set(keys)
    for link in links:
        settings, notices = sections[link.page].from_query(link.query())
        assert notices == [] and settings.experiment().key() == keys[link.page]


def test_before_a_label_per_class_the_link_shows_the_first_labels():
    from engine.experiments.lessons.curves import CurveSettings

    link = advise(AdvisorInputs(0, classes=5)).links[0]
    assert link.query() == {"strategies": "scratch,probe", "labels": "1,2,5,10", "seeds": "3"}
    assert CurveSettings.from_query(link.query())[1] == []


# --- the pages ---------------------------------------------------------------------------------------

def test_the_advisor_and_pipeline_pages_state_the_same_rules():
    from test_pages import open_page, texts

    for path in ("pages/advisor.py", "pages/pipeline.py"):
        at = open_page(path)
        assert not at.exception
        assert RULES_OF_THUMB in texts(at.caption), path


def test_the_advisor_page_advises_on_zero_labels_and_on_signals():
    from test_pages import open_page, texts, widget

    at = open_page("pages/advisor.py")
    widget(at.number_input, "Labelled examples").set_value(0)
    widget(at.radio, "How far is your data from the pretraining data?").set_value("near")
    next(b for b in at.button if b.label.startswith("Recommend")).click().run()
    assert not at.exception and not at.error
    assert any("Zero-shot classification" in s.value for s in at.subheader)
    assert "(none yet)" in texts(at.caption) and "0 per class" not in texts(at.caption)
    assert "CLIP" in texts(at.markdown)

    widget(at.radio, "Kind of data").set_value("signals")
    widget(at.radio, "How far is your data from the pretraining data?").set_value("far")
    next(b for b in at.button if b.label.startswith("Recommend")).click().run()
    assert any("Label some data first" in s.value for s in at.subheader)
    assert "CLIP" not in texts(at.markdown)


def test_spectrograms_are_images_and_the_two_kinds_start_from_different_backbones():
    """A spectrogram is a signal drawn as an image: entered as images, the advice starts from an
    ImageNet network and says it is a far transfer; entered as signals, from a model pretrained
    on recordings, and it says to choose Images for spectrograms. Same labels, same strategy."""
    from engine.study.advisor import MODALITIES, STARTING_POINTS, AdvisorInputs, advise

    assert "spectrogram" in MODALITIES["images"] and "spectrogram" not in MODALITIES["signals"]
    for domain in ("near", "related", "far"):
        images = advise(AdvisorInputs(500, classes=5, domain=domain, modality="images"))
        signals = advise(AdvisorInputs(500, classes=5, domain=domain, modality="signals"))
        assert images.strategy == signals.strategy and images.reasons != signals.reasons
        assert STARTING_POINTS["images"] in images.reasons
        assert STARTING_POINTS["signals"] in signals.reasons
    assert "spectrograms" in STARTING_POINTS["images"] and "far transfer" in STARTING_POINTS["images"]
    assert "choose Images" in STARTING_POINTS["signals"]
    scratch = advise(AdvisorInputs(200_000, classes=5, domain="far", modality="signals",
                                   compute="cluster"))
    if scratch.strategy == "scratch":  # no pretrained backbone advised: no starting point
        assert STARTING_POINTS["signals"] not in scratch.reasons
