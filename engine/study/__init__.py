"""Study tools that train nothing: flashcard and quiz content, spaced repetition, the Anki
export, the strategy advisor, the pipeline exercise, questions drawn from stored runs, the
prediction scores and the PyTorch code shown for a strategy. Imports: `engine.core` and
`engine.experiments` (for stored runs and their statistics), never `engine.infra`.
"""
