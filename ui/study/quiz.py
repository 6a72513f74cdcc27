"""The quiz's state and the three sections the Quiz page draws from it.

A round (`QuizRound`, frozen) is the state: which questions it asks, which one is showing,
the answers given and whether the current one has been checked. Checking an answer, moving on
and retrying the missed ones each give a new round, stored in the session. Each attempt shows
every question's options in an order of its own, drawn from the round's seed: the same on
every rerun of the script within the attempt, new for the next quiz and for each retry, so
the right answer has no fixed place to remember. Answers are kept and checked as the chosen
option's text, never as a position. The sections are
the choice of a question set, the question being asked, and the score. The questions come from
`engine.study.content` and `engine.study.run_questions`; nothing here trains or stores a result.

Each round is also saved as a small JSON file in the data directory (`quizzes/<id>.json`, by
`ui.kit.saved`, as the pipeline's answers are) under a random id drawn for each quiz started, and
the page's link carries it (`?quiz=<id>`): a reload, or the same link in a new tab, resumes at
the same question with the same answers and the same option order (the seed fixes it).
Questions that no longer exist when a round is resumed are dropped with a notice.

A student in a class answers blind (`ui.kit.held`): while the class holds the right answers
back, checking a class question records and sends the answer and says so, without the right
answer or the explanation, and the score waits too; both appear by themselves once the
teacher reveals them.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Optional

import streamlit as st

from engine.study.content import Content, Question
from ui.kit.events import QUESTION_ANSWERED, emit
from ui.kit.held import held_back, wait_for_reveal
from ui.kit.saved import SavedStates
from ui.study.learner import YourRuns

QUIZ_KEY = "quiz.state"  # session_state: the QuizRound in progress
QUIZ_ID_KEY = "quiz.id"  # session_state: the id the round in progress is saved under
QUIZZES = SavedStates("quizzes", "quiz", "quiz", max_bytes=128_000)  # 74 questions: about 9 kB
MAX_ROUND_QUESTIONS = 1_000  # a saved round asking more is refused
NOTICE_KEY = "quiz.notice"  # session_state: a hint for the next rerun ("Choose an answer first.")
ALL, RUNS = "all", "your-runs"  # the ids of the set of every question and of the runs' questions


@dataclass(frozen=True)
class QuestionSet:
    title: str  # the name in the chooser and on the progress bar
    questions: tuple[Question, ...]  # every question of the set, in the order written


def question_sets(library: Content, runs: YourRuns) -> dict[str, QuestionSet]:
    """Every set a quiz can draw from, by id: all questions, each bank, the learner's runs."""
    sets = {ALL: QuestionSet("All questions", library.questions)}
    sets.update({b.id: QuestionSet(b.title, b.questions) for b in library.banks})
    sets[RUNS] = QuestionSet("From your runs", runs.questions)
    return sets


@dataclass(frozen=True)
class QuizRound:
    set_id: str  # the question set the round draws from
    ids: tuple[str, ...]  # the questions it asks, in order
    index: int = 0  # the one showing; len(ids) once the round is over
    answers: tuple[tuple[str, str], ...] = ()  # (question id, chosen option), in answer order
    checked: bool = False  # the showing question has been answered and its verdict is shown
    round: int = 1  # 1 for the first pass, then one more per retry of the missed
    seed: int = 0  # orders each question's options; drawn anew for every quiz started

    @property
    def over(self) -> bool:
        return not self.ids or self.index >= len(self.ids)

    def answer(self, question_id: str) -> Optional[str]:
        return dict(self.answers).get(question_id)

    def answered(self, question_id: str, choice: str) -> QuizRound:
        return replace(self, answers=(*self.answers, (question_id, choice)), checked=True)

    def advanced(self) -> QuizRound:
        return replace(self, index=self.index + 1, checked=False)

    def retried(self, missed: tuple[str, ...]) -> QuizRound:
        return replace(self, ids=missed, index=0, answers=(), checked=False,
                       round=self.round + 1)

    def kept(self, available: dict[str, Question]) -> QuizRound:
        """Without the questions that no longer exist (run questions change with new runs), and
        their answers; the position stays on the same question, or moves to the next one."""
        ids = tuple(i for i in self.ids if i in available)
        if ids == self.ids:
            return self
        gone = self.index < len(self.ids) and self.ids[self.index] not in available
        return replace(self, ids=ids, index=sum(i in available for i in self.ids[:self.index]),
                       answers=tuple(a for a in self.answers if a[0] in available),
                       checked=self.checked and not gone)

    def answers_are_options(self, available: dict[str, Question]) -> bool:
        """Whether every answer is one of its question's options (a saved round is a file a
        link opens: a crafted answer is refused, never shown)."""
        return all(q not in available or a in available[q].options for q, a in self.answers)

    def missed(self, questions: dict[str, Question]) -> tuple[str, ...]:
        return tuple(i for i in self.ids if not questions[i].is_correct(self.answer(i)))

    def options(self, question: Question) -> list[str]:
        """The question's options in this attempt's order: fixed by the seed, the retry round
        and the question, so reruns keep it and a new quiz or a retry reshuffles."""
        options = list(question.options)
        random.Random(f"{self.seed}/{self.round}/{question.id}").shuffle(options)
        return options

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> QuizRound:
        """A round read back from `to_dict()`'s JSON; ValueError or TypeError says what is wrong."""
        names = {f.name for f in fields(cls)}
        if set(data) != names:
            raise ValueError(f"a saved round has the fields {sorted(names)}")
        ids, answers = data["ids"], data["answers"]
        if not (isinstance(ids, list) and len(ids) <= MAX_ROUND_QUESTIONS
                and all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids)):
            raise ValueError("the questions of a round are distinct ids")
        if not (isinstance(answers, list) and all(
                isinstance(a, list) and len(a) == 2 and all(isinstance(t, str) for t in a)
                and a[0] in ids for a in answers)):
            raise ValueError("each answer is a question of the round and the option chosen")
        numbers = [data[k] for k in ("index", "round", "seed")]
        if any(isinstance(n, bool) or not isinstance(n, int) for n in numbers):
            raise TypeError("index, round and seed are whole numbers")
        if not isinstance(data["set_id"], str) or not isinstance(data["checked"], bool):
            raise TypeError("the set is an id and checked is true or false")
        quiz = cls(data["set_id"], tuple(ids), data["index"], tuple((q, a) for q, a in answers),
                   data["checked"], data["round"], data["seed"])
        if not (0 <= quiz.index <= len(ids) and 1 <= quiz.round and 0 <= quiz.seed < 2 ** 32):
            raise ValueError("index, round or seed out of range")
        if quiz.checked and (quiz.over or quiz.answer(quiz.ids[quiz.index]) is None):
            raise ValueError("only an answered question can be checked")
        return quiz


def new_round(questions: tuple[Question, ...], set_id: str, size: int, shuffle: bool,
              rng: random.Random) -> QuizRound:
    """The first round over `size` questions of a set, shuffled with `rng` when asked; the
    options are shuffled whatever `shuffle` says, with a seed drawn from `rng`."""
    ids = [q.id for q in questions]
    if shuffle:
        rng.shuffle(ids)
    return QuizRound(set_id, tuple(ids[:size]), seed=rng.getrandbits(32))


def current_round(sets: dict[str, QuestionSet]) -> Optional[QuizRound]:
    """The round in progress, or the one the link resumes (its vanished questions dropped,
    with a notice); None when there is none. The link carries the round's id while it lasts."""
    linked = QUIZZES.opened(QUIZ_ID_KEY, QuizRound.from_dict)
    if linked is not None:
        st.session_state[QUIZ_KEY] = linked
    quiz = st.session_state.get(QUIZ_KEY)
    if isinstance(quiz, QuizRound) and quiz.set_id not in sets:
        st.warning("This quiz's question set no longer exists: choose a new quiz.",
                   icon=":material/info:")
        quiz = None
    if isinstance(quiz, QuizRound) and not quiz.answers_are_options(
            {q.id: q for q in sets[quiz.set_id].questions}):
        st.warning("This saved quiz holds an answer that is not one of its question's options, "
                   "so it was not opened: choose a new quiz.", icon=":material/block:")
        quiz = None
    if isinstance(quiz, QuizRound):
        kept = quiz.kept({q.id: q for q in sets[quiz.set_id].questions})
        if kept.ids != quiz.ids:
            st.warning(_dropped_note(len(quiz.ids) - len(kept.ids), left=len(kept.ids)),
                       icon=":material/info:")
            quiz = _keep(kept) if kept.ids else None
    if not isinstance(quiz, QuizRound):
        st.session_state.pop(QUIZ_KEY, None)
        QUIZZES.link(None)
        return None
    QUIZZES.link(QUIZZES.session_id(QUIZ_ID_KEY))
    return quiz


def _dropped_note(gone: int, left: int) -> str:
    exist = "no longer exist" if gone > 1 else "no longer exists"
    then = ("none is left: choose a new quiz" if not left
            else "they were dropped" if gone > 1 else "it was dropped")
    return (f"{gone} of this quiz's questions {exist} (the questions from your runs change "
            f"with the runs you store), so {then}.")


def _keep(quiz: QuizRound) -> QuizRound:
    """Make `quiz` the round in progress: in the session, and in its file for a reload (a
    failure to write is said on the page; the round goes on in the session)."""
    st.session_state[QUIZ_KEY] = quiz
    try:
        QUIZZES.save(QUIZZES.session_id(QUIZ_ID_KEY), quiz.to_dict())
    except (OSError, ValueError) as err:
        st.session_state[NOTICE_KEY] = f"This quiz could not be saved for a reload: {err}."
    return quiz


def _start(sets: dict[str, QuestionSet], set_id: str, size: int, shuffle: bool) -> None:
    st.session_state[QUIZ_ID_KEY] = QUIZZES.new_id()  # each quiz its own file and link
    _keep(new_round(sets[set_id].questions, set_id, size, shuffle, random.Random()))


def _check(question_id: str, key: str, options: tuple[str, ...] = ()) -> None:
    choice = st.session_state.get(key)
    if choice is None:
        st.session_state[NOTICE_KEY] = "Choose an answer first."
        return
    if choice not in options:  # a crafted websocket message, not the radio's own options
        st.session_state[NOTICE_KEY] = "That is not one of this question's options."
        return
    _keep(st.session_state[QUIZ_KEY].answered(question_id, choice))
    notices = emit(QUESTION_ANSWERED, question_id=question_id, choice=choice)  # e.g. to a class
    if notices:
        st.session_state[NOTICE_KEY] = " ".join(notices)


def _advance() -> None:
    _keep(st.session_state[QUIZ_KEY].advanced())


def _retry(missed: tuple[str, ...]) -> None:
    _keep(st.session_state[QUIZ_KEY].retried(missed))


def _new_quiz() -> None:
    st.session_state.pop(QUIZ_KEY, None)


def choose_quiz(sets: dict[str, QuestionSet], most: int, runs: YourRuns) -> None:
    """The question set, size and order of a new quiz; Start stores its first round."""
    set_id = st.selectbox(
        "Question set", list(sets), key="quiz.set", format_func=lambda s: f"{sets[s].title} "
        f"({len(sets[s].questions)} questions)",
        help="Concepts: one idea per question. Scenarios: a team, its data and its "
             "constraints. From your runs: answers computed from your own stored results.")
    left, right = st.columns(2)
    size = left.number_input("Questions", min_value=1, max_value=most, value=10, step=1,
                             key="quiz.size", help="How many questions this round asks (at most "
                             "as many as the set has).")
    shuffle = right.checkbox("Shuffle the questions", value=True, key="quiz.shuffle")
    go = st.button("Start the quiz", type="primary", icon=":material/play_arrow:")
    if set_id == RUNS:
        _runs_note(runs)
    if go:
        if not sets[set_id].questions:
            st.error("This set has no questions yet.", icon=":material/error:")
        else:
            _start(sets, set_id, int(size), shuffle)
            st.rerun()


def _runs_note(runs: YourRuns) -> None:
    if runs.questions:
        st.caption(runs.caption())
        return
    st.info("No questions from your runs yet: they need stored runs of at least two strategies "
            "at the same number of labels. Run a sweep on the Transfer curves page first.",
            icon=":material/info:")
    st.page_link("pages/transfer_curves.py", label="Open Transfer curves",
                 icon=":material/show_chart:")


def ask_question(quiz: QuizRound, questions: dict[str, Question], set_title: str) -> None:
    """The question showing, its answer and, once checked, the verdict and the explanation."""
    question, total = questions[quiz.ids[quiz.index]], len(quiz.ids)
    retry = f" · retry round {quiz.round - 1}" if quiz.round > 1 else ""
    st.progress(quiz.index / total,
                text=f"Question {quiz.index + 1} of {total} · {set_title}{retry}")
    with st.container(border=True):
        if question.topic:
            st.caption(question.topic + (" · scenario" if question.kind == "scenario" else ""))
        st.markdown(f"#### {question.prompt}")
        key = f"quiz.choice.{quiz.seed}.{quiz.round}.{question.id}"
        options, picked = quiz.options(question), quiz.answer(question.id)
        if quiz.checked and picked in options:  # the pick stays marked after checking
            st.session_state[key] = picked
        st.radio("Your answer", options, index=None, key=key, disabled=quiz.checked)
        notice = st.session_state.pop(NOTICE_KEY, None)
        if notice:
            st.warning(notice, icon=":material/touch_app:")
        if quiz.checked:
            _verdict(question, picked, last=quiz.index + 1 == total, sent=not notice)
        else:
            st.button("Check answer", type="primary", on_click=_check,
                      args=(question.id, key, tuple(question.options)),
                      icon=":material/check:")
    st.button("Stop and choose another quiz", on_click=_new_quiz, key="quiz.stop")


def _verdict(question: Question, choice: Optional[str], last: bool, sent: bool = True) -> None:
    """Right or wrong, with the answer and why; in a class that holds the answers back, only
    that the answer was sent (`sent`: no notice said otherwise), until the teacher reveals."""
    held = held_back(question.id)
    if held:
        st.info(("Sent" if sent else "Not sent yet") + f". You picked: *{choice}*  \n{held} The "
                "right answer and why appear here by themselves once your teacher shows them.",
                icon=":material/send:" if sent else ":material/schedule_send:")
        wait_for_reveal(question.id)
    else:
        if question.is_correct(choice):
            st.success(f"Correct. You picked: **{choice}**", icon=":material/check_circle:")
        else:
            st.error(f"Not quite. The answer is: **{question.answer}**  \nYou picked: *{choice}*",
                     icon=":material/cancel:")
        st.info(question.explanation, icon=":material/lightbulb:")
        if question.source:
            st.caption(f"Source: {question.source}")
    st.button("See your score" if last else "Next question", type="primary", on_click=_advance,
              icon=":material/arrow_forward:")


def show_score(quiz: QuizRound, questions: dict[str, Question]) -> None:
    """The round's score, the questions missed with their answers, Retry and New quiz."""
    held = next((i for i in quiz.ids if held_back(i)), None)
    if held is not None:
        st.subheader("Your answers")
        st.info(f"{held_back(held)} Your score and the right answers appear here by themselves "
                "once your teacher shows them.", icon=":material/visibility_off:")
        st.markdown("\n".join(f"- {questions[i].prompt} — you picked: *{quiz.answer(i)}*"
                              for i in quiz.ids if i in questions))
        wait_for_reveal(held)
        return
    total, missed = len(quiz.ids), quiz.missed(questions)
    right = total - len(missed)
    st.subheader("Your score")
    st.metric("Score", f"{right} of {total}", help="Correct answers this round.")
    if total:
        st.progress(right / total, text=f"{right / total:.0%} correct")
    if missed:
        st.markdown("**Missed:**\n" + "\n".join(
            f"- {questions[i].prompt} — *{questions[i].answer}* (you picked: {quiz.answer(i)})"
            for i in missed))
        st.button(f"Retry the {len(missed)} missed", type="primary", on_click=_retry,
                  args=(missed,), icon=":material/replay:")
    else:
        st.success("Every answer right.", icon=":material/celebration:")
    st.button("New quiz", on_click=_new_quiz, icon=":material/restart_alt:")
