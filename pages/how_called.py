"""How a difference is called: what a seed is, why the number of seeds matters, and the one rule
every result sentence of the app follows (`engine.experiments.stats.RULE`), and when a run is
called failed (`FAILED_RULE`). The table of
interval widths is computed from the t distribution, not typed in."""

import pandas as pd
import streamlit as st
from scipy.stats import t as student_t

from engine.experiments.stats import (ALPHA, CHANCE_MARGIN, FAILED_RULE, LEARNED_MARGIN, MIN_GAP,
                                      MIN_SEEDS, RULE)
from ui.kit.shell import page_setup
from ui.kit.tables import show_table

page_setup()
st.title("How a difference is called")
st.markdown(
    "Every lesson here ends with sentences such as *the linear probe is ahead of training from "
    "scratch by 13.5 points (95% interval 10.2 to 16.8, 5 seeds)*. This page says what those "
    "numbers mean and when the app is willing to write *ahead*, *behind* or *level*.")

st.header("What a seed is")
st.markdown(
    "A **seed** is the number that fixes every random choice of one run: which few examples "
    "of each class are drawn as the labelled set, the new head's starting weights and the "
    "order of the minibatches. The same settings with another seed give another accuracy. "
    "At 1 label per class the draw alone can move test accuracy by several points: one lucky "
    "example per class is a very different training set from an unlucky one.\n\n"
    "Two strategies run with the same seed see the **same labelled examples**, so the app "
    "compares them seed by seed (a *paired* comparison): the luck of the draw cancels out of "
    "their difference. Runs that do not share seeds are compared with Welch's interval, which "
    "allows each side its own spread.")

st.header("Why the count matters")
st.markdown(
    "With one seed a difference of 5 points may be the draw, not the strategy. The spread over "
    "seeds tells how much one run can move, and the **standard error** of a mean, that spread "
    "divided by the square root of the number of seeds, tells how much the mean itself can "
    "move: it shrinks as seeds are added. Bouthillier et al. (MLSys 2021, *Accounting for "
    "variance in machine learning benchmarks*) found that the sampling of the data, the "
    "initialisation and the choice of hyperparameters each move benchmark results markedly, and "
    "recommend comparing two methods over many runs that vary these sources of chance, then "
    "testing the difference rather than the single best run.")
levels = [MIN_SEEDS, 4, 5, 10, 20]
show_table(pd.DataFrame({
    "Seeds": levels,
    "Interval half-width (standard errors)": [float(student_t.ppf(1 - ALPHA / 2, n - 1)) for n in levels],
}), "how_called_widths", formats={"Interval half-width (standard errors)": ".2f"})
st.caption(
    "A paired 95% interval reaches this many standard errors of the mean gap on each side of it "
    "(the t distribution with seeds − 1 degrees of freedom). Both the multiplier and the standard "
    "error shrink as seeds are added, so more seeds let the rule see smaller real differences.")

st.header("The rule")
st.markdown(RULE)
st.markdown(
    f"- **Too few seeds to call**: with fewer than {MIN_SEEDS} runs a side the sentence gives the "
    "gap and says so; a button under it runs the section again with enough seeds (only the "
    "missing runs train).\n"
    f"- **Ahead / behind**: the interval lies wholly above or below 0 and the gap is at least "
    f"{MIN_GAP:g} point. When two strategies are really equal, this happens in about 5% of "
    "experiments: the interval's error rate.\n"
    "- **Level**: the interval includes 0, or the gap is under the floor. *Level* is not proof "
    "of equality: it means this many seeds cannot tell the two apart.\n"
    "- **Several sizes in one sentence** (*ahead at 4 of 7 sizes*): seven separate 5% calls would "
    "err somewhere far more often than 5%, so the calls are made with Holm's step-down "
    "correction (Holm, 1979), and the intervals shown are at the level each gap was tested at "
    "(for example 99.3%).")

st.header("Failed runs")
st.markdown(FAILED_RULE)
st.markdown(
    "A run that ends exactly where guessing would, while the other seeds of the same setting "
    "learned, almost always went wrong in training (a learning rate that made the loss "
    f"explode, features on a scale the probe cannot use) rather than met an unlucky draw: its "
    f"gap to the others is at least {LEARNED_MARGIN - CHANCE_MARGIN:g} points, while the seeds "
    "of one setting in these lessons spread by a few points, 10 at most. Averaging it in would "
    "drag a curve down by a failure, not by the strategy. Where *every* seed sits at chance, "
    "that is a result (the strategy does not learn there) and it is kept.")
