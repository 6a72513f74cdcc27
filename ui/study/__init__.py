"""The study pages' state and sections: flashcards, quiz, pipeline design, strategy advisor, and
what they share (`learner`: the loaded content, the learner's name, questions from their runs).
May import `ui.kit` and `ui.lessons`.
"""
