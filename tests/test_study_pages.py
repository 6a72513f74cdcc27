"""Page tests (AppTest) for the flashcards, quiz, advisor and pipeline pages, and for predict
first on the Transfer curves page. No training: results come from records written to the
session's store with chosen numbers."""

from __future__ import annotations

import json
import os
import re
import uuid
from urllib.parse import parse_qs

import pytest

from test_pages import (CURVES, _fake_record, charts, no_jobs_left_running, open_page,  # noqa: F401
                        texts, widget)

FLASHCARDS, QUIZ, ADVISOR, PIPELINE = ("pages/flashcards.py", "pages/quiz.py",
                                       "pages/advisor.py", "pages/pipeline.py")
ACCURACY = {"scratch": 40.0, "probe": 70.0, "finetune": 65.0}


def _no_errors(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, texts(at.error)


def _metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def _button(at, prefix: str):
    return next(b for b in at.button if b.label.startswith(prefix))


def _store_default_runs(path) -> None:
    from engine.core.store import ResultStore
    from engine.experiments.sweep import SweepSpec, plan_runs

    store = ResultStore(path)
    for plan in plan_runs(SweepSpec()):
        store.put(_fake_record(plan, ACCURACY.get(plan.strategy, 30.0)))


def test_flashcards_reveal_grade_and_keep_progress():
    from engine.study.content import load_content
    from engine.study.srs import SrsStore

    learner = f"Tester {uuid.uuid4().hex[:8]}"
    at = open_page(FLASHCARDS)
    _no_errors(at)
    assert "Type a name" in texts(at.info) and not at.metric
    at.text_input[0].set_value(learner).run()
    _no_errors(at)
    deck = load_content().decks[0]
    assert at.selectbox[0].value == deck.id
    assert at.table[0].value.set_index("Deck").loc[deck.title, "New"] == len(deck.cards)
    assert _metrics(at) == {"New": str(len(deck.cards)), "Due now": "0", "Learning": "0",
                            "Not due yet": "0"}
    first = deck.cards[0]
    assert first.front in texts(at.markdown) and first.back not in texts(at.markdown)
    assert at.get("download_button")[0].proto.label.startswith("Export to Anki")

    _button(at, "Show answer").click().run()
    _no_errors(at)
    assert first.back in texts(at.markdown)
    assert [b.label.split(" · ")[0] for b in at.button if " · " in b.label] == [
        "Again", "Hard", "Good", "Easy"]
    assert _button(at, "Good").label == "Good · 10 min"

    _button(at, "Good").click().run()
    _no_errors(at)
    assert _metrics(at) == {"New": str(len(deck.cards) - 1), "Due now": "0", "Learning": "1",
                            "Not due yet": "0"}
    assert "Graded **Good**" in texts(at.caption)
    assert deck.cards[1].front in texts(at.markdown)  # the next new card
    assert "this card comes back in 10 min." in texts(at.caption)
    table = at.table[0].value.set_index("Deck")
    assert table.loc[deck.title, "New"] == len(deck.cards) - 1
    assert table.loc[deck.title, "Learning"] == 1 and table.loc[deck.title, "Due now"] == 0

    # The note after a grade gives the interval its button showed (Hard: 5.5 min is 6 min, both).
    _button(at, "Show answer").click().run()
    hard = _button(at, "Hard").label.split(" · ")[1]
    _button(at, "Hard").click().run()
    assert f"Graded **Hard**: this card comes back in {hard}." in texts(at.caption)
    SrsStore().forget(learner, [deck.cards[1].id])  # back to one card studied, for what follows

    # The progress is on disk under the name, for any later session or process.
    history = SrsStore().history(learner.upper(), first.id)
    assert [int(r.rating) for r in history] == [3]
    again = open_page(FLASHCARDS)
    again.text_input[0].set_value(learner.lower()).run()
    assert _metrics(again)["New"] == str(len(deck.cards) - 1)

    # Starting the deck over needs a tick first, then clears the stored progress.
    assert _button(again, "Forget my progress").disabled
    widget(again.checkbox, "I want to start this deck over").check().run()
    _button(again, "Forget my progress").click().run()
    assert _metrics(again)["New"] == str(len(deck.cards)) and not SrsStore().history(learner,
                                                                                      first.id)


def test_flashcards_refuse_a_bad_name():
    at = open_page(FLASHCARDS)
    at.text_input[0].set_value("<script>").run()
    assert not at.exception and "cannot be used" in texts(at.error) and not at.metric


def _start_quiz(at, set_id: str, size: int):
    widget(at.selectbox, "Question set").set_value(set_id)
    widget(at.number_input, "Questions").set_value(size)
    widget(at.checkbox, "Shuffle the questions").set_value(False)
    return _button(at, "Start the quiz").click().run()


def test_quiz_answer_explain_score_and_retry_the_missed():
    from engine.study.content import load_content

    bank = load_content().bank("concepts")
    first, second = bank.questions[:2]
    at = _start_quiz(open_page(QUIZ), "concepts", 2)
    _no_errors(at)
    assert first.prompt in texts(at.markdown) and "Question 1 of 2" in at.progress[0].proto.text

    wrong = next(o for o in first.options if o != first.answer)
    at.radio[0].set_value(wrong)
    _button(at, "Check answer").click().run()
    assert "Not quite" in texts(at.error) and first.answer in texts(at.error)
    assert f"You picked: *{wrong}*" in texts(at.error)  # the learner's own pick, said and marked
    assert at.radio[0].value == wrong and at.radio[0].disabled
    assert first.explanation in texts(at.info)
    _button(at, "Next question").click().run()

    assert second.prompt in texts(at.markdown)
    _button(at, "Check answer").click().run()  # nothing chosen yet: a hint, no verdict
    assert "Choose an answer first" in texts(at.warning) and not at.info
    at.radio[0].set_value(second.answer)
    _button(at, "Check answer").click().run()
    assert "Correct" in texts(at.success) and second.explanation in texts(at.info)
    assert f"You picked: **{second.answer}**" in texts(at.success)
    _button(at, "See your score").click().run()

    _no_errors(at)
    assert _metrics(at)["Score"] == "1 of 2"
    assert first.prompt in texts(at.markdown)  # listed as missed, with the learner's pick
    assert f"*{first.answer}* (you picked: {wrong})" in texts(at.markdown)
    _button(at, "Retry the 1 missed").click().run()
    assert first.prompt in texts(at.markdown) and "Question 1 of 1" in at.progress[0].proto.text
    assert at.radio[0].value is None  # a fresh answer for the retry
    at.radio[0].set_value(first.answer)
    _button(at, "Check answer").click().run()
    _button(at, "See your score").click().run()
    assert _metrics(at)["Score"] == "1 of 1" and "Every answer right" in texts(at.success)


def test_quiz_from_your_runs_is_answered_by_the_stored_results(empty_default_store):
    at = open_page(QUIZ)
    widget(at.selectbox, "Question set").set_value("your-runs").run()
    assert "No questions from your runs yet" in texts(at.info)

    _store_default_runs(empty_default_store)
    at = _start_quiz(open_page(QUIZ), "your-runs", 10)
    _no_errors(at)
    assert "In your runs at **1 label per class**" in texts(at.markdown)
    at.radio[0].set_value("Linear probe")  # 70% against 65% and 40% in the stored runs
    _button(at, "Check answer").click().run()
    assert "Correct" in texts(at.success)
    assert "Linear probe 70.0%, Fine-tune 65.0%, From scratch 40.0%" in texts(at.info)
    _button(at, "Next question").click().run()
    at.radio[0].set_value("5.0 points")
    _button(at, "Check answer").click().run()
    assert "Correct" in texts(at.success)


def test_advisor_recommends_and_links_the_experiment():
    at = open_page(ADVISOR)
    _no_errors(at)
    assert "Recommend a strategy" in texts(at.info)
    widget(at.number_input, "Labelled examples").set_value(500)
    widget(at.number_input, "Classes").set_value(5)
    widget(at.radio, "How far is your data from the pretraining data?").set_value("related")
    _button(at, "Recommend a strategy").click().run()
    _no_errors(at)
    assert any("linear probe" in s.value for s in at.subheader)
    assert "500 labelled examples" in texts(at.markdown) and "about 100 per class" in \
        texts(at.caption)
    links = {link.proto.label.strip("*"): link.proto for link in at.get("page_link")}
    curves = links["Transfer curves at your scale"]
    assert curves.page == "transfer_curves"
    assert parse_qs(curves.query_string) == {"strategies": ["scratch,probe"],
                                             "labels": ["1,2,5,10,20,50,all"], "seeds": ["3"]}
    assert links["Which source? with the same labels"].page == "which_source"

    widget(at.number_input, "Labelled examples").set_value(20)
    widget(at.radio, "Pretrained model").set_value("large")
    _button(at, "Recommend a strategy").click().run()
    assert any("prompting" in s.value for s in at.subheader)


def test_pipeline_form_exports_the_plan_as_markdown():
    at = open_page(PIPELINE)
    _no_errors(at)
    assert "Still to answer" in texts(at.warning)
    at.radio[0].set_value("sms")
    widget(at.text_input, "Backbone").set_value("DistilBERT")
    widget(at.text_area, "What it pretrained on, and why that transfers").set_value(
        "English web text; SMS is English too.")
    widget(at.number_input, "Labelled examples you could realistically collect").set_value(3000)
    widget(at.selectbox, "Strategy").set_value("Partial fine-tuning")
    widget(at.text_area, "Why this strategy for that many labels?").set_value("Thousands.")
    widget(at.text_area, "How does your target data differ from the pretraining data?") \
        .set_value("Slang <b>and</b> abbreviations.")
    widget(at.text_area, "What could go wrong once the model is in use?").set_value("New scams.")
    at = widget(at.text_area, "How would you detect it before deploying?").set_value(
        "A held-out month.").run()
    _no_errors(at)
    assert "All five steps answered" in texts(at.success)
    document = at.get("code")[0].value
    assert "Detect spam in SMS messages" in document and "**Model:** DistilBERT" in document
    assert "3,000" in document and "Slang <b>and</b> abbreviations." in document
    assert at.get("download_button")[0].proto.label.startswith("Download your plan")


def test_predict_first_draws_predictions_against_stored_results(empty_default_store):
    _store_default_runs(empty_default_store)
    at = open_page(CURVES)
    _no_errors(at)
    assert not charts(at)  # predict first: nothing of the answer before a prediction
    widget(at.number_input, "Linear probe at 2 labels per class (%)").set_value(50.0)
    widget(at.number_input, "From scratch at 1 label per class (%)").set_value(40.0)
    at = _button(at, "Save my predictions").click().run()
    _no_errors(at)
    traces = {t["name"]: t for t in charts(at)[0]["data"] if "your prediction" in t.get("name", "")}
    assert set(traces) == {"Linear probe: your prediction", "From scratch: your prediction"}
    assert traces["Linear probe: your prediction"]["x"] == [2]
    assert traces["Linear probe: your prediction"]["y"] == [50.0]
    assert traces["Linear probe: your prediction"]["line"]["dash"] == "dash"
    body = texts(at.markdown)
    assert ("Linear probe at 2 labels per class: you predicted 50.0%, the runs averaged 70.0% "
            "over 5 seeds (20.0 points higher than you predicted).") in body
    assert "From scratch at 1 label per class: you predicted 40.0%" in body and "spot on" in body
    assert "off by 10.0 points on average" in body
    # The predictions stay with the session: another rerun still draws them.
    at.run()
    assert len([t for t in charts(at)[0]["data"] if "your prediction" in t.get("name", "")]) == 2


def test_predict_first_hides_the_results_until_predicted_or_skipped(empty_default_store):
    _store_default_runs(empty_default_store)
    at = open_page(CURVES)
    _no_errors(at)
    # neither the curves nor the head-start sentence before a prediction or a skip
    assert not charts(at) and "ahead of training from scratch" not in texts(at.markdown)
    assert "Predict first: the curves and the head start" in texts(at.info)
    at = _button(at, "Skip").click().run()
    _no_errors(at)
    assert charts(at) and "ahead of training from scratch" in texts(at.markdown)
    at.run()  # the choice is remembered for these settings
    assert charts(at)

    # another session: hidden again; a teacher shows the results without predictions
    teacher = open_page(CURVES)
    assert not charts(teacher)
    teacher = _button(teacher, "Show the results").click().run()
    _no_errors(teacher)
    assert charts(teacher) and "ahead of training from scratch" in texts(teacher.markdown)


def test_pipeline_answers_survive_a_new_session_with_the_same_link():
    from streamlit.testing.v1 import AppTest

    from test_pages import APP, TIMEOUT

    at = open_page(PIPELINE)
    assert "plan" not in at.query_params  # nothing answered: no file, no id in the link
    widget(at.text_input, "Backbone").set_value("DistilBERT")
    at = widget(at.text_area, "Why this strategy for that many labels?").set_value(
        "Thousands of labels.").run()
    _no_errors(at)
    plan_id = at.query_params["plan"][0] if isinstance(at.query_params["plan"], list) \
        else at.query_params["plan"]
    assert len(plan_id) == 16

    again = AppTest.from_file(str(APP), default_timeout=TIMEOUT)  # a reload: a new session
    again.query_params["plan"] = plan_id
    again.run()
    again.switch_page(PIPELINE).run()
    _no_errors(again)
    assert widget(again.text_input, "Backbone").value == "DistilBERT"
    assert widget(again.text_area, "Why this strategy for that many labels?").value == \
        "Thousands of labels."
    assert not [w for w in again.warning if "does not use" in str(w.value)]

    stranger = AppTest.from_file(str(APP), default_timeout=TIMEOUT)  # a made-up id: a fresh plan
    stranger.query_params["plan"] = "../../etc/passwd"
    stranger.run()
    stranger.switch_page(PIPELINE).run()
    _no_errors(stranger)
    assert widget(stranger.text_input, "Backbone").value == ""


@pytest.mark.parametrize("path", [FLASHCARDS, QUIZ, ADVISOR, PIPELINE])
def test_practice_pages_are_listed_and_keep_the_whole_sidebar(path):
    from ui.catalog import LESSONS

    at = open_page(path)  # with no name, quiz or inputs yet: each page ends early
    _no_errors(at)
    assert at.title and path in {lesson.path for lesson in LESSONS}
    assert "Stored runs" in texts(at.sidebar.markdown)  # app.py's frame ran to its end


def test_a_quiz_round_moves_by_answers_advances_and_retries():
    import random

    from engine.study.content import load_content
    from ui.study.quiz import QuizRound, new_round

    bank = load_content().bank("concepts")
    questions = {q.id: q for q in bank.questions}
    first, second, third = bank.questions[:3]
    quiz = new_round(bank.questions, "concepts", 3, shuffle=False, rng=random.Random(0))
    assert quiz == QuizRound("concepts", (first.id, second.id, third.id),
                             seed=random.Random(0).getrandbits(32))
    assert not quiz.over and not quiz.checked
    wrong = next(o for o in first.options if o != first.answer)
    quiz = quiz.answered(first.id, wrong)
    assert quiz.checked and quiz.answer(first.id) == wrong and quiz.index == 0
    quiz = quiz.advanced().answered(second.id, second.answer).advanced()
    assert (quiz.index, quiz.checked) == (2, False)
    quiz = quiz.kept({k: v for k, v in questions.items() if k != third.id})  # a vanished question
    assert quiz.over and quiz.missed(questions) == (first.id,)
    again = quiz.retried(quiz.missed(questions))
    assert again == QuizRound("concepts", (first.id,), round=2, seed=quiz.seed)
    shuffled = new_round(bank.questions, "concepts", 2, shuffle=True, rng=random.Random(1))
    assert len(shuffled.ids) == 2 and set(shuffled.ids) <= set(questions)


def test_quiz_options_are_shuffled_per_attempt_and_kept_within_one():
    import random
    from dataclasses import replace

    from engine.study.content import load_content
    from ui.study.quiz import new_round

    questions = load_content().bank("concepts").questions
    quiz = new_round(questions, "concepts", len(questions), shuffle=False, rng=random.Random(3))
    orders = {q.id: quiz.options(q) for q in questions}
    for q in questions:  # every option shown once, in the same order on every rerun
        assert sorted(orders[q.id]) == sorted(q.options) and quiz.options(q) == orders[q.id]
    other = replace(quiz, seed=quiz.seed + 1)  # another attempt
    retry = quiz.retried(tuple(orders))  # a retry of the same attempt
    for attempt in (other, retry):
        changed = sum(attempt.options(q) != orders[q.id] for q in questions)
        assert changed > len(questions) // 2  # 4 options: 23 in 24 orders differ
    # The right answer sits in each position about as often as any other (no fixed slot).
    slots = [orders[q.id].index(q.answer) for q in questions]
    assert max(slots.count(i) for i in range(4)) < len(questions) / 2
    # An answer is the chosen text, whatever position it was shown in.
    first = questions[0]
    assert first.id not in quiz.answered(first.id, first.answer).missed(
        {q.id: q for q in questions})


def test_quiz_shows_one_order_per_attempt_and_checks_the_chosen_text():
    from engine.study.content import load_content

    bank = load_content().bank("concepts")
    cited = next(i for i, q in enumerate(bank.questions) if q.source)
    at = _start_quiz(open_page(QUIZ), "concepts", len(bank.questions))
    _no_errors(at)
    shown = list(at.radio[0].options)
    first = bank.questions[0]
    assert sorted(shown) == sorted(first.options)
    at.run()  # a rerun within the attempt keeps the order
    assert list(at.radio[0].options) == shown
    at.radio[0].set_value(first.answer)
    _button(at, "Check answer").click().run()
    assert "Correct" in texts(at.success)
    for question in bank.questions[1:cited + 1]:  # on to the first one that cites a source
        _button(at, "Next question").click().run()
        assert question.prompt in texts(at.markdown)
        at.radio[0].set_value(question.answer)
        _button(at, "Check answer").click().run()
        assert "Correct" in texts(at.success)
    assert f"Source: {bank.questions[cited].source}" in texts(at.caption)


# --- a reload resumes the quiz and the flashcards ----------------------------------------------

def _reload(path: str, **params):
    """A new session opening the page's link (what a reload is to the server)."""
    from streamlit.testing.v1 import AppTest

    from test_pages import APP, TIMEOUT

    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.run()
    at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _param(at, name: str) -> str:
    value = at.query_params[name]
    return value[0] if isinstance(value, list) else value


def test_a_quiz_resumes_after_a_reload_at_the_same_question_with_the_same_answers():
    from engine.study.content import load_content

    first, second, third = load_content().bank("concepts").questions[:3]
    at = _start_quiz(open_page(QUIZ), "concepts", 3)
    wrong = next(o for o in first.options if o != first.answer)
    at.radio[0].set_value(wrong)
    _button(at, "Check answer").click().run()
    quiz_id = _param(at, "quiz")
    assert len(quiz_id) == 16

    checked = _reload(QUIZ, quiz=quiz_id)  # reloaded on the verdict: it is still there
    assert first.prompt in texts(checked.markdown) and f"You picked: *{wrong}*" in texts(
        checked.error)
    assert checked.radio[0].value == wrong and checked.radio[0].disabled

    _button(at, "Next question").click().run()
    shown = list(at.radio[0].options)
    again = _reload(QUIZ, quiz=quiz_id)  # reloaded on the next question
    assert second.prompt in texts(again.markdown)
    assert "Question 2 of 3" in again.progress[0].proto.text
    assert list(again.radio[0].options) == shown  # the same option order
    assert _param(again, "quiz") == quiz_id
    for question in (second, third):
        again.radio[0].set_value(question.answer)
        _button(again, "Check answer").click().run()
        _button(again, "See your score" if question is third else "Next question").click().run()
    assert _metrics(again)["Score"] == "2 of 3"  # the first answer, given before the reload
    assert f"*{first.answer}* (you picked: {wrong})" in texts(again.markdown)

    _button(again, "New quiz").click().run()
    assert "quiz" not in again.query_params and _button(again, "Start the quiz")


def test_a_resumed_quiz_drops_questions_that_no_longer_exist():
    import random

    from engine.study.content import load_content
    from ui.study.quiz import QUIZZES, QuizRound

    first, second = load_content().bank("concepts").questions[:2]
    quiz_id = QUIZZES.new_id()
    saved = QuizRound("concepts", (first.id, "q-gone", second.id), index=2,
                      answers=((first.id, first.answer), ("q-gone", "x")),
                      seed=random.Random(5).getrandbits(32))
    QUIZZES.save(quiz_id, saved.to_dict())
    at = _reload(QUIZ, quiz=quiz_id)
    assert "1 of this quiz's questions no longer exists" in texts(at.warning)
    assert second.prompt in texts(at.markdown) and "Question 2 of 2" in at.progress[0].proto.text
    assert QuizRound.from_dict(QUIZZES.load(quiz_id)).ids == (first.id, second.id)


@pytest.mark.parametrize("case, notice", [
    ("damaged", "is damaged and could not be read"),
    ("not a round", "does not hold a quiz this page can open"),
    ("missing", "is saved on this server"),
    ("oversized", "larger than 128 kB"),
    ("made up", "is not a quiz id this page writes"),
])
def test_an_unusable_quiz_link_is_named_and_a_new_quiz_starts(case, notice):
    from ui.study.quiz import QUIZZES

    quiz_id = "../../etc/passwd" if case == "made up" else QUIZZES.new_id()
    path = QUIZZES.folder / f"{quiz_id}.json"
    QUIZZES.folder.mkdir(parents=True, exist_ok=True)
    if case == "damaged":
        path.write_text('{"set_id": "concepts", "ids": [', encoding="utf-8")
    elif case == "not a round":
        path.write_text('{"set_id": "concepts", "ids": ["q-hierarchy"], "index": -4}')
    elif case == "oversized":
        path.write_text(" " * 130_000 + "{}")
    at = _reload(QUIZ, quiz=quiz_id)
    assert notice in texts(at.warning)
    assert _button(at, "Start the quiz") and not at.radio  # the chooser: a new quiz


def test_saved_states_are_written_whole_capped_and_pruned(tmp_path, monkeypatch):
    from ui.kit import saved
    from ui.kit.saved import SavedStateError, SavedStates

    states = SavedStates("things", "thing", "thing", max_bytes=200, root=tmp_path)
    first = states.new_id()
    states.save(first, {"a": [1, 2], "b": "é"})
    assert states.load(first) == {"a": [1, 2], "b": "é"}
    assert [p.name for p in (tmp_path / "things").iterdir()] == [f"{first}.json"]  # no temp left
    with pytest.raises(ValueError, match="larger than"):
        states.save(first, {"a": "x" * 300})
    assert states.load(first) == {"a": [1, 2], "b": "é"}  # the refused write changed nothing
    for bad in ("../x", "ABCDEF0123456789", first + "0"):
        with pytest.raises((SavedStateError, ValueError)):
            states.load(bad)
    assert states.link_id({"thing": first}) == first and not states.link_notices({"thing": first})
    assert states.link_id({"thing": "x" * 16}) is None
    assert "not a thing id" in states.link_notices({"thing": "<b>x</b>"})[0]
    assert "too long" in states.link_notices({"thing": "9" * 5000})[0]
    monkeypatch.setattr(saved, "MAX_FILES", 3)
    few = SavedStates("few", "thing", "thing", max_bytes=200, root=tmp_path)
    ids = [few.new_id() for _ in range(4)]
    for i, state_id in enumerate(ids):
        few.save(state_id, {"i": i})
        path = tmp_path / "few" / f"{state_id}.json"
        os.utime(path, (1_000_000 + i, 1_000_000 + i))  # written in this order
    left = {p.stem for p in (tmp_path / "few").iterdir()}
    assert left == set(ids[1:])  # the least recently written went first


def test_a_quiz_round_reads_back_what_it_wrote_and_refuses_anything_else():
    import random

    from engine.study.content import load_content
    from ui.study.quiz import QuizRound, new_round

    questions = load_content().bank("concepts").questions
    quiz = new_round(questions, "concepts", 5, shuffle=True, rng=random.Random(2))
    quiz = quiz.answered(quiz.ids[0], questions[0].options[1]).advanced().answered(
        quiz.ids[1], "anything")
    data = json.loads(json.dumps(quiz.to_dict()))
    assert QuizRound.from_dict(data) == quiz
    for change in ({"index": 9}, {"index": True}, {"seed": -1}, {"round": 0},
                   {"ids": ["a", "a"]}, {"answers": [["not-in-round", "x"]]},
                   {"checked": "yes"}, {"set_id": 3}, {"extra": 1}):
        with pytest.raises((ValueError, TypeError)):
            QuizRound.from_dict({**data, **change})
    unchecked = {**data, "answers": data["answers"][:1]}  # checked, but the question unanswered
    with pytest.raises(ValueError):
        QuizRound.from_dict(unchecked)


def test_flashcards_reopen_at_the_same_name_deck_and_card_after_a_reload():
    from datetime import datetime, timezone

    from engine.study.content import load_content
    from engine.study.srs import RATINGS, SrsStore

    deck = load_content().deck("pitfalls")
    cited = next(i for i, c in enumerate(deck.cards) if c.source)
    learner = f"Reloader {uuid.uuid4().hex[:8]}"
    for card in deck.cards[:cited]:  # the cards before the first cited one are studied
        SrsStore().review(learner, card.id, RATINGS["Easy"], datetime.now(timezone.utc))
    at = open_page(FLASHCARDS)
    at.text_input[0].set_value(learner).run()
    widget(at.selectbox, "Deck to study").set_value("pitfalls").run()
    _button(at, "Show answer").click().run()
    _no_errors(at)
    card = deck.cards[cited]
    assert card.back in texts(at.markdown) and f"Source: {card.source}" in texts(at.caption)
    assert at.get("download_button")[0].proto.label.endswith(f"{cited} reviewed)")

    again = _reload(FLASHCARDS, deck=_param(at, "deck"))
    assert again.text_input[0].value == learner
    assert widget(again.selectbox, "Deck to study").value == "pitfalls"
    assert card.back in texts(again.markdown)  # the answer that was showing
    assert _metrics(again)["New"] == str(len(deck.cards) - cited)

    stranger = _reload(FLASHCARDS, deck="0123456789abcdef")  # no such saved place
    assert "no flashcard session" in texts(stranger.warning)
    assert stranger.text_input[0].value == "" and "Type a name" in texts(stranger.info)


# --- how the study pages read on a phone: short before the controls, hints in sight ---------------

def test_the_advisor_keeps_its_rules_of_thumb_folded_and_says_once_what_a_link_does():
    from engine.study.advisor import RULES_OF_THUMB

    at = open_page(ADVISOR)
    rules = next(e for e in at.expander if e.label == "The rules of thumb behind the advice")
    assert RULES_OF_THUMB in texts(rules.caption)  # folded: not a wall of text above the form
    assert RULES_OF_THUMB not in texts(at.main.markdown)
    _button(at, "Recommend a strategy").click().run()
    _no_errors(at)
    said = [c.value for c in at.caption if "press Run there" in c.value]
    assert said == ["Each link opens the page with these settings; press Run there."]
    experiments = [link for link in at.get("page_link") if link.proto.page != "pipeline"]
    assert experiments and all(link.proto.label.startswith("**") for link in experiments)


def test_the_pipeline_shows_each_hint_in_its_empty_box_and_folds_the_rules():
    at = open_page(PIPELINE)
    _no_errors(at)
    backbone = widget(at.text_input, "Backbone")
    assert backbone.proto.placeholder == "A model you could download today."
    detect = widget(at.text_area, "How would you detect it before deploying?")
    assert detect.proto.placeholder == "Which held-out slice, test or measurement would reveal it?"
    assert not detect.proto.help  # nothing hidden behind a tooltip a phone needs a tap for
    rules = next(e for e in at.expander if e.label == "Rules of thumb for this step")
    assert [link.proto.page for link in rules.get("page_link")] == ["advisor"]


def test_flashcards_say_how_to_start_and_keep_the_export_label_short():
    at = open_page(FLASHCARDS)
    assert "press Enter" in texts(at.info)
    at.text_input[0].set_value(f"Tester {uuid.uuid4().hex[:8]}").run()
    _no_errors(at)
    label = at.get("download_button")[0].proto.label
    assert re.fullmatch(r"Export to Anki \(\d+ cards, 0 reviewed\)", label), label
    assert ".apkg" in at.get("download_button")[0].proto.help
    assert set(_metrics(at)) == {"New", "Due now", "Learning", "Not due yet"}


def test_the_quiz_and_pipeline_say_where_answers_are_saved_in_a_caption():
    for path in (QUIZ, PIPELINE):
        at = open_page(path)
        assert "saved under this page's link" in texts(at.caption), path
        assert "saved under this page's link" not in texts(at.markdown), path


def test_the_projected_class_view_marks_the_right_answers_only_once_revealed():
    from engine.study.classroom import ClassStore
    from test_classroom import QUESTIONS, TINY, open_class_page
    from ui.classroom.class_mode import REVEAL

    store = ClassStore()
    room, token = store.open_class(TINY, "concepts", QUESTIONS, 1)
    store.send_answer(room.code, store.join(room.code), QUESTIONS[0], 0)
    at = open_class_page({"class": room.code, "teacher": token})
    bars = [p.proto.text for p in at.get("progress")]
    assert bars and not any("right answer" in t for t in bars)  # the class is still answering
    assert not any(c.value.endswith(" right") for c in at.caption)
    assert f"turn on **{REVEAL}** above once the class has answered" in texts(at.caption)
    next(t for t in at.toggle if t.label == REVEAL).set_value(True).run()
    marked = [p.proto.text for p in at.get("progress") if p.proto.text.startswith("✓ right answer: ")]
    assert len(marked) == len(QUESTIONS)


def test_the_text_curves_wait_for_a_prediction_of_their_own(empty_default_store):
    """Transfer on text: Predict first hides the curves (from the lesson pack) until a
    prediction is saved; then the chart draws it and the page says how far off it was. The
    prediction is the text page's own: Transfer curves' predictions are untouched."""
    at = open_page("pages/transfer_on_text.py")
    _no_errors(at)
    assert "Predict first: the curves, their reading and the error table" in texts(at.info)
    assert not any("your prediction" in t.get("name", "") for c in charts(at) for t in c["data"])
    before = len(charts(at))  # the LoRA trade-off and the shift still draw theirs
    assert "always answering the commoner class scores 58.7%" in texts(at.markdown)
    widget(at.number_input, "Linear probe at 5 labels per class (%)").set_value(80.0)
    at = _button(at, "Save my predictions").click().run()
    _no_errors(at)
    assert len(charts(at)) == before + 1
    traces = [t for t in charts(at)[0]["data"] if "your prediction" in t.get("name", "")]
    assert [t["y"] for t in traces] == [[80.0]]
    assert "Linear probe at 5 labels per class: you predicted 80.0%, the runs averaged" in \
        texts(at.markdown)
    assert at.session_state["transfer_on_text.predictions"] == {("probe", 5): 80.0}
    assert "transfer_curves.predictions" not in at.session_state


def test_the_text_page_without_its_packages_says_so_and_keeps_the_stored_runs(
        empty_default_store, monkeypatch):
    """A server where requirements-text.txt is missing: the page still draws the lesson pack's
    runs and says what to install; nothing raises."""
    import engine.core.text as text_module
    import engine.core.text_models as text_models
    from engine.experiments.lessons.text import TextLoraSettings

    for name, info in text_module.TEXT_DATASETS.items():
        info.loader.cache_clear()
    monkeypatch.setattr(text_module, "package_folder", lambda package: None)
    monkeypatch.setattr(text_models, "package_folder", lambda package: None)
    text_models.encoder_weights.cache_clear()
    at = open_page("pages/transfer_on_text.py")
    _no_errors(at)
    assert "requirements-text.txt" in texts(at.warning)
    assert at.get("plotly_chart")  # the LoRA trade-off and the shift, from the lesson pack
    assert "The highest LoRA mean here is" in texts(at.markdown)
    for name, info in text_module.TEXT_DATASETS.items():
        info.loader.cache_clear()  # the next test reads the installed corpora again
    assert TextLoraSettings().ranks == (1, 4, 16)
