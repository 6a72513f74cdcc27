"""Class: a teacher opens a class (a short code and a QR code, no accounts), students join it
anonymously, and their Predict-first entries on Transfer curves and their quiz answers pool in
the teacher's projector view, against the real curve once the runs are stored.

Layout and words only: the link, the forms, the views and the sending are `ui.classroom.class_mode`; the
class store (files, caps, expiry) is `engine.study.classroom`."""

import time

import streamlit as st

from ui.classroom.class_mode import (ClassLink, class_results, class_store, current_link, join_form,
                                    open_form, reveal_switch, student_view, teacher_header,
                                    use_link)
from engine.study.classroom import ClassGone
from ui.kit.shell import page_setup, show_link_notices
from ui.study.learner import loaded_content


def no_class(library) -> None:
    """Join a class with its code, or open one (ended classes are removed first)."""
    try:
        class_store().purge_expired()
    except ValueError:  # the store is busy: the next visit removes them
        pass
    left, right = st.columns(2)
    with left:
        join_form()
        st.caption("Students: type the code your teacher shows, or scan its QR code. No name "
                   "is asked; your entries go to the class without it, and only you see them.")
    with right:
        if library is not None:
            open_form(library)
            st.caption("Teachers: the class gets a code and a QR code to project. Your view of "
                       "it is reached by a secret link this page keeps for you.")


def main() -> None:
    st.title("Class")
    st.markdown(
        "Predict together, then see how the class's guesses compare with the real runs. The "
        "teacher opens a class and projects its code; each student joins on their own device, "
        "saves predictions on **Transfer curves** (or **Transfer on text**) and answers the "
        "class's quiz questions. The "
        "teacher's view pools them: the spread of predictions for each strategy and number of "
        "labels, drawn against the runs' results, and how many picked each answer.")
    link, notices = current_link()
    show_link_notices(notices)
    library = loaded_content("The quiz questions")
    if link is None:
        no_class(library)
        return
    try:
        room = class_store().load(link.code)
    except ValueError as err:
        if (link.student or link.is_teacher) and not isinstance(err, ClassGone):
            # kept: a damaged or busy class may come back
            st.error(f"{err} This page keeps your place in class {link.code}: reload it in a "
                     "moment; what you send meanwhile waits and is sent when the class can be "
                     "read again.", icon=":material/error:")
            if st.button("Leave the class", icon=":material/logout:"):
                use_link(None)
                st.rerun()
            return
        st.error(f"{err}", icon=":material/error:")
        use_link(None)
        no_class(library)
        return
    now = time.time()
    if link.teacher and not room.is_teacher(link.teacher):
        st.error(f"This link is not the teacher's link of class {room.code}; it opens the "
                 "students' view.", icon=":material/key_off:")
        link = ClassLink(room.code)
        use_link(link)
    if link.is_teacher:
        teacher_header(link, room, now)
        reveal_switch(link, room)
        class_results(room.code)
    elif library is not None:
        student_view(link, room, library, now)


page_setup()
main()
