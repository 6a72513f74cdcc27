"""Settings forms: widgets in, a frozen engine config out. Nothing here trains.

The settings that trigger training sit in an `st.form` with one submit button, so changing a
widget never starts work by itself. The last valid spec is remembered in `st.session_state`,
so it survives moving between pages and the form reopens with it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Optional

import streamlit as st

from engine.core.datasets import ALL_LABELS
from engine.experiments.stats import strategy_label
from engine.experiments.sweep import DEFAULT_LABELS, MAX_SEEDS, SweepSpec

# the strategies this lesson compares: the three basic ones, then the depth-wise refinements
CURVE_STRATEGIES = ("scratch", "probe", "finetune", "discriminative", "gradual", "lpft")
DECAY_FACTORS = (0.1, 0.2, 0.38, 0.5, 0.7, 1.0)  # layer-wise factors offered; 0.38 = ULMFiT's 1/2.6
DEFAULT_DECAY = 0.38


def _curve_name(option: str, factor: float) -> str:
    """A curve option to the engine's strategy name (the decay factor goes into the name)."""
    return f"discriminative:{factor:g}" if option == "discriminative" else option


def _curve_option(name: str) -> Optional[tuple[str, Optional[float]]]:
    """An engine strategy name back to (option, factor); None when this lesson does not offer it."""
    if name in CURVE_STRATEGIES and name != "discriminative":
        return name, None
    family, _, setting = name.partition(":")
    allowed = {f"{f:g}": f for f in DECAY_FACTORS}
    if family == "discriminative" and setting in allowed:
        return "discriminative", allowed[setting]
    return None


def _option_label(option: str) -> str:
    return "Discriminative learning rates" if option == "discriminative" else strategy_label(option)
LABEL_CHOICES = DEFAULT_LABELS  # labelled-set sizes offered; ALL_LABELS (0) is "all"
SPEC_KEY = "transfer_curves.spec"  # session_state key of the last valid spec


def label_choice_text(k: int) -> str:
    return "all" if k == ALL_LABELS else str(k)


MAX_QUERY_VALUE = 200  # characters; a longer URL value is refused, not parsed


def spec_to_query(spec: SweepSpec) -> dict[str, str]:
    """The URL form of a curve spec: ?strategies=scratch,probe&labels=1,2,all&seeds=3"""
    return {"strategies": ",".join(spec.strategies),
            "labels": ",".join(label_choice_text(k) for k in spec.labels_per_class),
            "seeds": str(spec.seeds)}


def query_items(params: Mapping[str, str], name: str, notices: list[str]) -> Optional[list[str]]:
    """A link's comma-separated value as lower-case items; None when absent or too long (with a
    notice)."""
    raw = params.get(name)
    if raw is None:
        return None
    if len(raw) > MAX_QUERY_VALUE:
        notices.append(f"the link's '{name}' value is too long; using the default")
        return None
    return [part.strip().lower() for part in raw.split(",") if part.strip()]


def query_seeds(seeds: Optional[list[str]], fields: dict, notices: list[str]) -> None:
    """A link's `seeds` value (from `query_items`) into fields["seeds"] when it is a whole
    number from 1 to MAX_SEEDS; otherwise a notice, and the default stays."""
    if seeds is None:
        return
    if len(seeds) == 1 and seeds[0].isdigit() and 1 <= int(seeds[0]) <= MAX_SEEDS:
        fields["seeds"] = int(seeds[0])
    else:
        notices.append(f"the link's seeds must be a whole number from 1 to {MAX_SEEDS}; "
                       "using the default")


def spec_from_query(params: Mapping[str, str]) -> tuple[Optional[SweepSpec], list[str]]:
    """Parse and validate a shared link's settings against the allowed values.

    Returns (spec, notices): spec is None when the URL holds no settings; every value that is
    malformed, unknown or too long falls back to the default, with a notice saying so.
    """
    keys = ("strategies", "labels", "seeds")
    if not any(k in params for k in keys):
        return None, []
    default, notices, fields = SweepSpec(), [], {}

    def items(name: str) -> Optional[list[str]]:
        return query_items(params, name, notices)

    strategies = items("strategies")
    if strategies is not None:
        options = [_curve_option(s) for s in strategies]
        if strategies and all(options) and sum(o[0] == "discriminative" for o in options) <= 1:
            fields["strategies"] = tuple(strategies)
        else:
            allowed = [_curve_name(o, DEFAULT_DECAY) for o in CURVE_STRATEGIES]
            notices.append(f"the link's strategies are not all among {', '.join(allowed)} (the "
                           "decay factor one of "
                           f"{', '.join(f'{f:g}' for f in DECAY_FACTORS)}); using the default")
    labels = items("labels")
    if labels is not None:
        allowed = {label_choice_text(k): k for k in LABEL_CHOICES}
        if labels and all(k in allowed for k in labels):
            fields["labels_per_class"] = tuple(allowed[k] for k in labels)
        else:
            notices.append("the link's labels per class are not all among "
                           f"{', '.join(allowed)}; using the default")
    query_seeds(items("seeds"), fields, notices)
    return replace(default, **fields), notices


def last_curve_spec() -> tuple[SweepSpec, list[str]]:
    """The spec the page shows, and notices about a bad link: the URL's settings (a reload or a
    shared link), else the last one submitted in this session, else the default."""
    from_url, notices = spec_from_query(st.query_params.to_dict())
    spec = from_url or st.session_state.get(SPEC_KEY) or SweepSpec()
    if from_url is not None:
        st.session_state[SPEC_KEY] = spec
    return spec, notices


def remember_curve_spec(spec: SweepSpec) -> None:
    """Keep the spec in the session and in the URL, so a reload or a shared link reopens it."""
    st.session_state[SPEC_KEY] = spec
    st.query_params.from_dict(spec_to_query(spec))


def curve_controls(current: SweepSpec) -> Optional[SweepSpec]:
    """The transfer-curve settings form, showing `current`.

    Returns the new spec when Run is pressed and None otherwise. Raises ValueError (from
    `SweepSpec`'s validation) when Run is pressed with settings that cannot run.
    """
    chosen = [o for o in map(_curve_option, current.strategies) if o is not None]
    factor = next((f for o, f in chosen if f is not None), DEFAULT_DECAY)
    with st.form("curve_settings", border=True):
        left, right = st.columns(2)
        strategies = left.multiselect(
            "Strategies", options=list(CURVE_STRATEGIES), format_func=_option_label,
            default=[o for o, _ in chosen],
            help="Each strategy gets its own curve. From scratch is the baseline the others "
                 "are measured against. The last three refine fine-tuning block by block: see "
                 "the lesson 'How much of the network to train'.")
        factor = left.select_slider(
            "Decay factor (discriminative learning rates)", options=list(DECAY_FACTORS),
            value=factor, format_func=lambda f: f"{f:g}",
            help="The head learns at the full rate; the top block at rate x factor, each block "
                 "below at the rate above x factor again. ULMFiT used 1/2.6 = 0.38.")
        labels = right.multiselect(
            "Labels per class", options=list(LABEL_CHOICES), format_func=label_choice_text,
            default=[k for k in current.labels_per_class if k in LABEL_CHOICES],
            help="How many labelled target examples each class gets: the points of each curve. "
                 "'all' uses every training example outside the test split.")
        seeds = left.number_input("Seeds", min_value=1, max_value=MAX_SEEDS,
                                  value=int(current.seeds), step=1, width=160)
        left.caption("Seeds: repeats of every point, each with its own label draw, initial "
                     "weights and batch order. A curve is their mean; its band is ±1 standard "
                     "deviation.")
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if not run:
        return None
    return replace(current, strategies=tuple(_curve_name(o, factor) for o in strategies),
                   labels_per_class=tuple(labels), seeds=int(seeds))
