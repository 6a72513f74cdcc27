"""Work that outlives a page: the job manager's worker processes, the Ray backend and the
precomputed lesson packs. The top layer: it may import every other part of the engine, and
nothing in the engine imports it (the command line and the app do).
"""
