"""The Forgetting lesson's readings: what plain fine-tuning did to the source task, each
mitigation against it, and the diagnostics of one run.

Forgetting records: arm -> one record per seed (`engine.experiments.forgetting.stored_seeds`).
Every arm of one seed starts from the same draw, so arms are compared seed by seed; the source's
accuracy before and after fine-tuning is the same run, compared seed by seed too. The
mitigations' comparisons with plain fine-tuning are Holm-corrected together, on the source and
on the target separately. The diagnostics train one model each, so their sentences describe
that one run and call no difference.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from engine.experiments.readings.common import TOO_FEW, Claim, Sentence, and_list
from engine.experiments.stats import Comparison, compare, holm, interval_text

ARM_NAMES = {"finetune": "Plain fine-tune", "low_lr": "Lower learning rate",
             "freeze": "Early layers frozen", "ewc": "EWC", "replay": "Replay"}


def _by_seed(records: Sequence[dict], field: str) -> dict[int, float]:
    return {int(r["seed"]): float(r[field]) for r in records}


def _paired(a: Mapping[int, float], b: Mapping[int, float]) -> Comparison:
    """Seed by seed when both hold the same seeds (the arms of one seed share their draw),
    Welch's interval otherwise."""
    if sorted(a) == sorted(b):
        return compare([a[s] for s in sorted(a)], [b[s] for s in sorted(b)], paired=True)
    return compare(list(a.values()), list(b.values()), paired=False)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _plain(plain: Sequence[dict]) -> Sentence:
    c = _paired(_by_seed(plain, "source_after"), _by_seed(plain, "source_before"))
    before, after = _mean(r["source_before"] for r in plain), _mean(r["source_after"] for r in plain)
    target = _mean(r["target_after"] for r in plain)
    start = f"Plain fine-tuning took the target to **{target:.1f}%**"
    numbers = f"{c.gap:+.1f} points, {interval_text(c)}"
    claim = (Claim("finetune:source_after", "finetune:source_before", "source task", c),)
    if c.too_few:
        return Sentence(f"{start}; the source task went from {before:.1f}% to {after:.1f}% "
                        f"({numbers}): whether it forgot, {TOO_FEW}.", claim)
    if c.sign < 0:
        return Sentence(f"{start}, while the source task **fell** from **{before:.1f}%** to "
                        f"**{after:.1f}%** ({numbers}). Nothing in its loss asked it to keep the "
                        "source.", claim)
    if c.sign > 0:
        return Sentence(f"{start}, and the source task rose: {before:.1f}% to {after:.1f}% "
                        f"({numbers}). No forgetting at these settings; a larger learning rate or "
                        "more epochs move the shared layers further.", claim)
    return Sentence(f"{start}; the source task went from {before:.1f}% to {after:.1f}% "
                    f"({numbers}), a change the rule does not call: the seeds disagree too much "
                    "to say whether it forgot. More seeds narrow the interval.", claim)


def forgetting_readings(records: Mapping[str, Sequence[dict]]) -> list[Sentence]:
    """The plain arm's change on the source, then each mitigation against plain fine-tuning on
    the source and on the target (seed by seed)."""
    records = {arm: list(rs) for arm, rs in records.items() if rs}
    plain = records.get("finetune")
    out = [] if plain is None else [_plain(plain)]
    arms = [arm for arm in records if arm != "finetune"]
    if plain is None:
        if arms:
            out.append(Sentence("Plain fine-tuning is not stored yet, so the mitigations have "
                                "nothing to be compared with."))
        return out
    source = holm([_paired(_by_seed(records[a], "source_after"), _by_seed(plain, "source_after"))
                   for a in arms])
    target = holm([_paired(_by_seed(records[a], "target_after"), _by_seed(plain, "target_after"))
                   for a in arms])
    for arm, s, t in zip(arms, source, target):
        kept = {1: "kept **more** of the source", 0: "was level with it on the source",
                -1: "kept **less** of the source"}[s.sign] if not s.too_few else \
            f"on the source, {TOO_FEW}"
        paid = {1: "did better on the target", 0: "was level on the target",
                -1: "did worse on the target"}[t.sign] if not t.too_few else f"on the target, {TOO_FEW}"
        text = (f"- **{ARM_NAMES[arm]}** against plain fine-tuning: {kept} ({s.gap:+.1f} points, "
                f"{interval_text(s)}) and {paid} ({t.gap:+.1f} points, {interval_text(t)})")
        if s.sign < 0:
            text += ": here it protected the source less than plain fine-tuning did"
        out.append(Sentence(text + ".", (Claim(arm, "finetune", "source task", s),
                                         Claim(arm, "finetune", "target task", t))))
    if len(arms) > 1:
        out.append(Sentence(f"The {len(arms)} mitigations' comparisons are Holm-corrected "
                            "together, on each task."))
    return out


def diagnostics_readings(records: Mapping[str, dict], baseline: str,
                         probe_labels_text: str) -> list[Sentence]:
    """What one run of the diagnostics measured: where CKA stayed highest and fell most in
    each fine-tune, whether it is lower at every deeper block, and the probes on the last
    block. One model each: numbers of this run, no difference called."""
    out = []
    units = sorted((r for u, r in records.items() if u != baseline), key=lambda r: r["backbone_lr"])
    for r in units:
        cka, layers = r["cka_target"], r["layers"][1:]
        if not cka:
            continue
        lo = min(range(len(cka)), key=cka.__getitem__)
        hi = max(range(len(cka)), key=cka.__getitem__)
        out.append(Sentence(
            f"- Pretrained layers at lr **{r['backbone_lr']:g}** (target test accuracy "
            f"{r['target_accuracy']:.1f}%): CKA is highest at {layers[hi]} (**{cka[hi]:.4f}**) "
            f"and lowest at {layers[lo]} (**{cka[lo]:.4f}**); the weights of {layers[hi]} moved "
            f"{100 * r['relative_change'][hi]:.1f}% of their size, those of {layers[lo]} "
            f"{100 * r['relative_change'][lo]:.1f}%."))
    falling = [r["backbone_lr"] for r in units
               if all(b < a for a, b in zip(r["cka_target"], r["cka_target"][1:]))]
    if units:
        if len(falling) == len(units):
            out.append(Sentence("- In this run CKA is lower at each deeper block in every "
                                "fine-tune: the deeper the block, the more fine-tuning rewrote it."))
        else:
            odd = and_list([f"lr {r['backbone_lr']:g}" for r in units
                            if r["backbone_lr"] not in falling])
            out.append(Sentence(f"- In this run CKA is not lower at every deeper block in the "
                                f"fine-tune at {odd}: look at the table for where the change "
                                "concentrated."))
    base = records.get(baseline)
    if base is not None:
        pre, unt, pixels = base["pretrained_probe"][-1], base["untrained_probe"][-1], base["pixels_probe"]
        out.append(Sentence(
            f"- With {probe_labels_text} labels per class, a probe on the pretrained network's "
            f"last block scores **{pre:.1f}%**, on an untrained network's **{unt:.1f}%**, on the "
            f"raw pixels **{pixels:.1f}%**."))
    if out:
        out.append(Sentence(f"\nEach model here is one run, one seed: these are the numbers of "
                            f"this run, and the rule calls no difference on one seed ({TOO_FEW})."))
    return out
