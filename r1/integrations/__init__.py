"""Adapters that let other training libraries use r1's parts; each module imports its library lazily or not at all.

* ``trl`` — r1's rewards as TRL ``GRPOTrainer`` reward functions (docs/interop.md).
"""
