"""Experiments: settings that expand into units of work, and the one driver that runs them.

`protocol` holds the `Experiment` protocol and `run_experiment`, the driver every backend uses
(the local pool, Ray, the job manager): it compares the units with the store, prepares what
they share once, trains what is missing and stores each unit the moment it finishes. The
lessons' experiments (`sweep`, `forgetting`, `diagnostics`, `lora_merge`) only say what a unit
is and how one trains; `lora_presets` counts and estimates LoRA's parameters and memory without
training. `stats` summarises stored runs and holds the rule for when a difference counts. Imports: `engine.core` only.
"""
