"""r1: the DeepSeek-R1 training system (GRPO with verifiable rewards, the R1 pipeline, evaluation)."""

__version__ = "0.1.0"
