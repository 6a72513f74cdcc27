"""Quiz: multiple-choice and scenario questions, an explanation after each answer, a score, and
a retry of the missed ones; plus questions whose answers come from the learner's own runs.

UI only: the questions come from `engine.study.content` (the banks) and `engine.study.run_questions`."""

import random

import streamlit as st

from engine.study.content import ContentError
from ui.shell import page_setup
from ui.study import runs_caption, shown_options, study_content, your_run_questions

QUIZ_KEY = "quiz.state"  # session_state: the quiz in progress (a plain dict)
ALL, RUNS = "all", "your-runs"


def main() -> None:
    st.title("Quiz")
    st.markdown(
        "Test yourself on the ideas of the lessons. Pick an answer, check it, and read the "
        "explanation: it says why the right answer is right and what is wrong with the others. At "
        "the end you get your score and can retry the questions you missed.")

    try:
        library = study_content()
    except ContentError as err:
        st.error(f"The quiz questions could not be loaded: {err}", icon=":material/error:")
        return

    spec, records, run_qs = your_run_questions()
    sets = {ALL: ("All questions", library.questions)}
    sets.update({b.id: (b.title, b.questions) for b in library.banks})
    sets[RUNS] = ("From your runs", run_qs)


    def start(set_id: str, size: int, shuffle: bool) -> None:
        ids = [q.id for q in sets[set_id][1]]
        if shuffle:
            random.shuffle(ids)
        st.session_state[QUIZ_KEY] = {"set": set_id, "ids": ids[:size], "index": 0, "answers": {},
                                      "checked": False, "round": 1}


    quiz = st.session_state.get(QUIZ_KEY)
    if quiz is None or quiz["set"] not in sets:
        set_id = st.selectbox(
            "Question set", list(sets), key="quiz.set", format_func=lambda s: f"{sets[s][0]} "
            f"({len(sets[s][1])} questions)",
            help="Concepts: one idea per question. Scenarios: a team, its data and its "
                 "constraints. From your runs: answers computed from your own stored results.")
        left, right = st.columns(2)
        size = left.number_input("Questions", min_value=1, max_value=len(library.questions),
                                 value=10, step=1, key="quiz.size", help="How many questions "
                                 "this round asks (at most as many as the set has).")
        shuffle = right.checkbox("Shuffle the questions", value=True, key="quiz.shuffle")
        go = st.button("Start the quiz", type="primary", icon=":material/play_arrow:")
        if set_id == RUNS:
            if run_qs:
                st.caption(runs_caption(spec, records))
            else:
                st.info("No questions from your runs yet: they need stored runs of at least two "
                        "strategies at the same number of labels. Run a sweep on the Transfer "
                        "curves page first.", icon=":material/info:")
                st.page_link("pages/transfer_curves.py", label="Open Transfer curves",
                             icon=":material/show_chart:")
        if go:
            if not sets[set_id][1]:
                st.error("This set has no questions yet.", icon=":material/error:")
            else:
                start(set_id, int(size), shuffle)
                st.rerun()
        return

    questions = {q.id: q for q in sets[quiz["set"]][1]}
    quiz["ids"] = [i for i in quiz["ids"] if i in questions]  # run questions change with new runs
    total = len(quiz["ids"])


    def new_quiz() -> None:
        st.session_state.pop(QUIZ_KEY, None)


    def check(qid: str, key: str) -> None:
        choice = st.session_state.get(key)
        if choice is None:
            st.session_state["quiz.notice"] = "Choose an answer first."
            return
        state = st.session_state[QUIZ_KEY]
        state["answers"][qid] = choice
        state["checked"] = True


    def advance() -> None:
        state = st.session_state[QUIZ_KEY]
        state.update(index=state["index"] + 1, checked=False)


    def retry(missed: list[str]) -> None:
        state = st.session_state[QUIZ_KEY]
        state.update(ids=missed, index=0, answers={}, checked=False, round=state["round"] + 1)


    if total and quiz["index"] < total:
        question = questions[quiz["ids"][quiz["index"]]]
        st.progress(quiz["index"] / total, text=f"Question {quiz['index'] + 1} of {total} · "
                    f"{sets[quiz['set']][0]}" + (f" · retry round {quiz['round'] - 1}"
                                                 if quiz["round"] > 1 else ""))
        with st.container(border=True):
            if question.topic:
                st.caption(question.topic + (" · scenario" if question.kind == "scenario" else ""))
            st.markdown(f"#### {question.prompt}")
            key = f"quiz.choice.{quiz['round']}.{question.id}"
            checked = quiz["checked"]
            st.radio("Your answer", shown_options(question), index=None, key=key, disabled=checked)
            notice = st.session_state.pop("quiz.notice", None)
            if notice:
                st.warning(notice, icon=":material/touch_app:")
            if not checked:
                st.button("Check answer", type="primary", on_click=check, args=(question.id, key),
                          icon=":material/check:")
            else:
                if question.is_correct(quiz["answers"][question.id]):
                    st.success("Correct.", icon=":material/check_circle:")
                else:
                    st.error(f"Not quite. The answer is: **{question.answer}**",
                             icon=":material/cancel:")
                st.info(question.explanation, icon=":material/lightbulb:")
                last = quiz["index"] + 1 == total
                st.button("See your score" if last else "Next question", type="primary",
                          on_click=advance, icon=":material/arrow_forward:")
        st.button("Stop and choose another quiz", on_click=new_quiz, key="quiz.stop")
        return

    right = [i for i in quiz["ids"] if questions[i].is_correct(quiz["answers"].get(i))]
    missed = [i for i in quiz["ids"] if i not in right]
    st.subheader("Your score")
    st.metric("Score", f"{len(right)} of {total}", help="Correct answers this round.")
    if total:
        st.progress(len(right) / total, text=f"{len(right) / total:.0%} correct")
    if missed:
        st.markdown("**Missed:**\n" + "\n".join(
            f"- {questions[i].prompt} — *{questions[i].answer}*" for i in missed))
        st.button(f"Retry the {len(missed)} missed", type="primary", on_click=retry, args=(missed,),
                  icon=":material/replay:")
    else:
        st.success("Every answer right.", icon=":material/celebration:")
    st.button("New quiz", on_click=new_quiz, icon=":material/restart_alt:")


page_setup()
main()
