"""Multi-stage orchestration: the demo, the four-stage R1 pipeline, distillation."""
