"""No page or lesson-list text states a result that its runs do not choose.

Every string literal of pages/ and ui/ (docstrings aside) is scanned for result words (beats,
wins, loses, falls, below, erase, ahead of, behind, ...). A hit passes when the literal explains
a paper's result with its source (an author and year, or CS231n's notes), or when the words
around it are listed below with the reason they state no result of the learner's runs. The
sentences that do state results are chosen from the runs in `engine.experiments.readings`.
"""

from __future__ import annotations

import ast
import re

from conftest import ROOT

WORDS = re.compile(r"\b(beats?|beaten|wins?|won|loses?|lost|falls?|fell|below|erases?|erased|"
                   r"outperforms?|better than|worse than|ahead of|behind|level with|helps|helped|"
                   r"hurts|matters? more than)\b", re.I)
CITED = re.compile(r"et al\.|\((?:19|20)\d\d\)|\b(?:19|20)\d\d\b|CS231n")
ALLOWED = {  # words around a hit -> why it states no result of the learner's runs
    "the reasons behind it": "the advisor's reasons, not a result",
    "rules of thumb behind": "a heading",
    "Where CKA falls is where": "explains how to read the CKA chart, whatever it shows",
    "lesson path below": "page layout",
    "trained ahead of time": "the lesson pack's provenance",
    "is ahead of training from scratch by 13.5 points": "an example of the sentence form, marked as one",
    "to write *ahead*, *behind* or *level*": "names the verdict words",
    "lies wholly above or below 0": "defines the rule",
    "it stays far below the whole model": "an exact parameter count, shown on the chart beside it",
    "trainable parameters below": "page layout",
    "When transfer hurts": "the lesson's title",
    "This lesson loses that bet on purpose": "the lesson's design: the sources are mismatched on purpose",
    "ends up *below* training from scratch": "the definition of negative transfer",
    "Pretraining helps when": "the condition under which pretraining helps, a definition",
    "each block below at the rate": "how discriminative learning rates are set",
    "the sentence below": "page layout",
    "The numbers behind the chart": "export help",
    "recalling it falls to 90%": "FSRS's definition of stability",
    "it can fall below scratch": "what a probe can do under shift; the reading says what it did",
    "At a share below 100%": "a setting of the transform",
    "the form below": "page layout",
    "every number below is counted": "page layout",
    "16-bit model behind the 350 GB": "a formula's inputs, labelled estimates",
    "whether its lead counts is read below": "page layout; the verdict is the engine's",
}


def _literals():
    paths = sorted([*ROOT.glob("pages/*.py"), *ROOT.glob("ui/**/*.py"), ROOT / "app.py"])
    for path in paths:
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                yield path.relative_to(ROOT), node.lineno, node.value


def _unexplained():
    found = []
    for path, line, text in _literals():
        if CITED.search(text):
            continue
        for m in WORDS.finditer(text):
            around = text[max(0, m.start() - 60):m.end() + 60]
            if not any(phrase in around for phrase in ALLOWED):
                found.append(f"{path}:{line}: ...{around}...")
    return found


def test_no_page_text_states_a_result_its_runs_do_not_choose():
    assert _unexplained() == []


def test_the_scan_catches_a_fixed_result_and_every_allowance_is_used():
    """The scan is not vacuous: the lesson list's old fixed claims are caught, and no
    allowance is left over from text that is gone."""
    for old in ("watch fine-tuning erase the source task", "see that domain match matters more than model size",
                "the transfer curve fall towards, and below, training from scratch",
                "Block 7 beats the last block here"):
        assert WORDS.search(old) and not CITED.search(old)
        assert not any(phrase in old for phrase in ALLOWED)
    texts = [text for _, _, text in _literals()]
    for phrase in ALLOWED:
        assert any(phrase in text for text in texts), f"unused allowance: {phrase}"
