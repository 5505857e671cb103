"""Training loops: GRPO and SFT, sharing forward pass, optimizer, checkpoints and logging."""
