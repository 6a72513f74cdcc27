"""Every sentence a lesson states about its own runs: records in, `Sentence`s out.

One module per lesson (`curves`, `hurts`, `depth`, `sources`, `lora`, `forgetting`); each
reading is a pure function of stored records that returns sentences, each carrying the
comparisons it rests on (`Claim`), so a test can recompute every number a sentence quotes. Every
call is made by the one rule of `engine.experiments.stats` (`compare`, `holm`, `RULE`); a
missing strategy or size is said, never filled in; with fewer than 3 seeds a side the sentence
says "too few seeds to call". The pages only show these sentences; nothing here draws or trains.
"""

from engine.experiments.readings.common import TOO_FEW, Claim, Sentence

__all__ = ["TOO_FEW", "Claim", "Sentence"]  # what the pages and tests import from here
