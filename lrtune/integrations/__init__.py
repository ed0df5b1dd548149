"""Thin layers over lrtune for the frameworks people already train with.

- :mod:`lrtune.integrations.lightning`: a range-test callback and ``tune`` for a LightningModule;
- :mod:`lrtune.integrations.huggingface`: ``tune`` for a ``transformers.Trainer`` (LR and warm-up);
- :mod:`lrtune.integrations.optuna`: an Optuna sampler and pruner that follow lrtune's strategies;
- :mod:`lrtune.integrations.ray`: a Ray Tune search algorithm that follows lrtune's strategies.

``import lrtune`` imports none of them; each imports its framework when it is imported, and says
how to install the framework when it is missing.
"""
