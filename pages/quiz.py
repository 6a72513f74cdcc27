"""Quiz: multiple-choice and scenario questions, an explanation after each answer, a score, and
a retry of the missed ones; plus questions whose answers come from the learner's own runs.

Layout and words only: the round's state and its sections are `ui.study.quiz`; the questions come
from `engine.study.content` (the banks) and `engine.study.run_questions`."""

import streamlit as st

from ui.study.quiz import ask_question, choose_quiz, current_round, question_sets, show_score
from ui.kit.shell import page_setup
from ui.study.learner import loaded_content, your_runs


def main() -> None:
    st.title("Quiz")
    st.markdown(
        "Test yourself on the ideas of the lessons. Pick an answer, check it, and read why it is "
        "right or wrong. At the end you get your score and can retry the questions you missed.")
    st.caption("Your answers are saved under this page's link, so a reload resumes the quiz "
               "where you were.")
    library = loaded_content("The quiz questions")
    if library is None:
        return
    runs = your_runs()
    sets = question_sets(library, runs)
    quiz = current_round(sets)
    if quiz is None:
        choose_quiz(sets, most=len(library.questions), runs=runs)
        return
    questions = {q.id: q for q in sets[quiz.set_id].questions}
    if quiz.over:
        show_score(quiz, questions)
    else:
        ask_question(quiz, questions, sets[quiz.set_id].title)


page_setup()
main()
