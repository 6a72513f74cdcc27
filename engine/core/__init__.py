"""The engine's core: data, models and the one training loop.

Datasets (built-in, downloaded, uploaded, derived), backbones and their ImageNet weights, the
strategies that decide what trains, `train.fit`, pretraining, running several runs side by
side (`parallel`), the on-disk caches and the result store. Nothing here knows a lesson: the
experiments above build on it. Imports stay inside this package (and `engine.ENGINE_VERSION`).
"""
