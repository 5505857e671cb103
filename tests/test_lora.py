"""LoRA (peft) GRPO and SFT on the tiny random model: only the adapter trains, π_ref is the base
model, resume is exact, the final checkpoint is a plain transformers model; gradient checkpointing
leaves the update unchanged."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

import r1.train.grpo as grpo
from r1.config import ConfigError, load_config
from r1.models import load_model
from r1.rewards import register
from r1.train import lora
from r1.train.forward import batched_logprobs
from r1.train.grpo import train_grpo
from r1.train.sft import train_sft


@register("t_len", replace=True)
def t_len(completion: str, example: dict) -> float:
    return len(completion) / 10


def grpo_cfg(model_dir, out, *extra):
    return load_config(
        None,
        [
            f"model.name={model_dir}",
            f"run.output_dir={out}",
            "run.threads=1",
            "data.size=64",
            "rollout.prompts_per_step=2",
            "rollout.samples_per_prompt=4",
            "rollout.max_new_tokens=8",
            "rewards.weights={t_len: 1.0}",
            "train.micro_batch_size=4",
            "train.sample_every=0",
            "optim.lr=1e-2",
            "train.steps=2",
            "train.save_every=1",
            "grpo.beta=0.1",
            "grpo.kl_estimator=k1",
            "model.lora.enabled=true",
            "model.lora.r=4",
            "model.lora.alpha=8",
            *extra,
        ],
    )


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_lora_grpo_trains_the_adapter_against_the_base_model(tiny_model_dir, tmp_path, monkeypatch):
    base = load_model(str(tiny_model_dir))[0]
    seen, real = [], grpo.prepare_update

    def spy(batch, policy, reference, cfg, pad_id):  # π_ref log-probs must be the base model's
        inputs = real(batch, policy, reference, cfg, pad_id)
        expected = batched_logprobs(
            base,
            batch.prompt_ids,
            batch.completion_ids,
            batch.lengths,
            pad_id=pad_id,
            temperature=1.0,
            micro_batch_size=4,
        )
        torch.testing.assert_close(inputs.ref_logp, expected, rtol=0, atol=1e-6)
        seen.append(policy)
        return inputs

    monkeypatch.setattr(grpo, "prepare_update", spy)
    run = train_grpo(grpo_cfg(tiny_model_dir, tmp_path))
    policy = seen[-1]
    assert len(seen) == 2 and lora.is_lora(policy)
    m = metrics(run)
    assert abs(m[0]["kl"]) < 1e-6 < abs(m[1]["kl"])  # the adapter starts at zero, then moves away from π_ref

    trained = {k: v for k, v in policy.named_parameters() if v.requires_grad}
    assert trained and all("lora_" in k for k in trained)
    assert all(float(v.abs().max()) > 0 for k, v in trained.items() if "lora_B" in k)  # B starts at 0: it trained
    frozen = dict(base.named_parameters())
    for name, value in policy.get_base_model().named_parameters():  # the base weights are untouched
        if "lora_" not in name:
            assert torch.equal(value, frozen[name.replace(".base_layer", "")]), name

    final = run / "checkpoints" / "final"
    plain = AutoModelForCausalLM.from_pretrained(final)  # merged: a plain transformers model
    assert not lora.is_lora(plain) and (final / lora.ADAPTER_DIR / "adapter_config.json").is_file()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        torch.testing.assert_close(plain(ids).logits, policy(input_ids=ids).logits, rtol=0, atol=1e-5)
        assert not torch.allclose(plain(ids).logits, base(ids).logits, atol=1e-4)
    assert not (run / "checkpoints" / "step-000001" / "config.json").exists()  # step checkpoints: the adapter only


def test_resumed_lora_run_equals_the_straight_one(tiny_model_dir, tmp_path):
    straight = train_grpo(grpo_cfg(tiny_model_dir, tmp_path / "straight"))
    train_grpo(grpo_cfg(tiny_model_dir, tmp_path / "resumed", "train.steps=1"))
    resumed = train_grpo(
        grpo_cfg(tiny_model_dir, tmp_path / "resumed", "run.resume=true", "run.allow_config_change=true")
    )
    for a, b in zip(metrics(straight), metrics(resumed), strict=True):
        for key in ("loss", "reward/mean", "kl", "grad_norm"):
            assert b[key] == pytest.approx(a[key], abs=1e-6), (a["step"], key)
    a, b = (dict(load_model(str(r / "checkpoints" / "final"))[0].state_dict()) for r in (straight, resumed))
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)


def test_lora_sft_with_gradient_checkpointing_makes_the_same_update(tiny_model_dir, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(
            json.dumps({"prompt": f"What is {i}+1?", "completion": f"<answer> {i + 1} </answer>"}) + "\n"
            for i in range(4)
        )
    )
    common = [
        f"model.name={tiny_model_dir}",
        "run.threads=1",
        f"sft.data={data}",
        "sft.batch_size=4",
        "train.micro_batch_size=2",
        "optim.lr=1e-2",
        "model.lora.enabled=true",
        "model.lora.r=4",
    ]
    finals = []
    for gc in ("false", "true"):
        run = train_sft(
            load_config(None, [*common, f"run.output_dir={tmp_path / gc}", f"train.gradient_checkpointing={gc}"])
        )
        finals.append(dict(AutoModelForCausalLM.from_pretrained(run / "checkpoints" / "final").state_dict()))
    base = dict(load_model(str(tiny_model_dir))[0].state_dict())
    assert any(not torch.equal(finals[0][k], base[k]) for k in base)
    for k in finals[0]:
        torch.testing.assert_close(finals[1][k], finals[0][k], rtol=0, atol=1e-6, msg=k)


def test_lora_refuses_a_reference_reset(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="grpo.ref_reset_steps must be 0 with model.lora.enabled"):
        grpo_cfg(tiny_model_dir, tmp_path, "grpo.ref_reset_steps=10")
