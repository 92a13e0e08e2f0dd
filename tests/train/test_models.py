"""The model kinds the trainer trains: specs checked with errors that name the choices, a kind
refused on a task it cannot learn, bounds reported in the task's unit and recomputed from the
module, deterministic held-out bounds, exact resume with latent noise, and checkpoints that
rebuild the model or say which kind they hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.modules import DRAW, STORN, VRNN
from lstmkit.tasks import make_task
from lstmkit.train import (
    ModelConfig,
    OptimConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
    Trainer,
    load_model,
    load_run,
)
from lstmkit.train.checkpoint import load_checkpoint, save_checkpoint
from lstmkit.train.models import EVAL_NOISE_SEED, BoundObjective, model_kind, objective
from lstmkit.train.trainer import build_model, evaluate


def config(
    kind: str, task: str = "digits", steps: int = 4, cell: str = "lstm", **task_options: object
) -> TrainConfig:
    return TrainConfig(
        model=ModelConfig(kind=kind, cell=cell, hidden_size=12),
        task=TaskConfig(
            task, {"digits": 100, **task_options} if task == "digits" else task_options
        ),
        optim=OptimConfig(lr=3e-3),
        run=RunConfig(steps=steps, batch_size=8, eval_every=2, eval_size=20, checkpoint_every=2),
    )


def test_a_kind_spec_fills_defaults_and_checks_options() -> None:
    spec = model_kind(ModelConfig(kind="draw:glimpses=3,attention=false"))
    assert spec.name == "draw"
    assert spec.options == {
        "glimpses": 3,
        "z_size": 10,
        "attention": False,
        "read_n": 2,
        "write_n": 5,
    }
    with pytest.raises(
        LstmkitError, match=r"unknown model kind 'gan'.*sequence, vrnn, storn, draw"
    ):
        model_kind(ModelConfig(kind="gan"))
    with pytest.raises(LstmkitError, match=r"no option.*glimpse;.*glimpses, z_size"):
        model_kind(ModelConfig(kind="draw:glimpse=3"))
    with pytest.raises(LstmkitError, match="glimpses must be a positive integer, got 0"):
        model_kind(ModelConfig(kind="draw:glimpses=0"))
    with pytest.raises(LstmkitError, match="attention must be true or false, got 1"):
        model_kind(ModelConfig(kind="draw:attention=1"))
    with pytest.raises(LstmkitError, match=r"'draw' is built on lstm; got model.cell 'gru'"):
        model_kind(ModelConfig(kind="draw", cell="gru"))
    with pytest.raises(LstmkitError, match="'vrnn' is built on lstm or gru"):
        model_kind(ModelConfig(kind="vrnn", cell="lstm:chrono=10"))
    assert model_kind(ModelConfig(kind="vrnn:feature_size=none")).options["feature_size"] is None


def test_a_kind_is_refused_on_a_task_it_cannot_learn() -> None:
    gap = make_task("gap", gap=5)
    with pytest.raises(
        LstmkitError,
        match=(
            "a draw model cannot learn the gap task, which takes sequence models; "
            "draw learns digits"
        ),
    ):
        build_model(config("draw", "gap"), gap)
    with pytest.raises(LstmkitError, match=r"a vrnn model cannot learn the gap task.*vrnn learns"):
        Trainer(config("vrnn", "gap", gap=5)).fit()


@pytest.mark.parametrize("kind", ["vrnn", "storn"])
def test_on_the_chorales_a_latent_model_starts_at_the_memoryless_baseline(kind: str) -> None:
    task = make_task("chorales", pieces=10)
    model = build_model(config(kind, "chorales", pieces=10), task)
    assert isinstance(model, (VRNN, STORN))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.zero_()  # no weights: every frame's probabilities are the output bias alone
        x = task.eval_targets[:4]
        lengths = task.eval_lengths[:4]
        out = model(x, lengths, noise=torch.randn(*x.shape[:2], model.latent_size))
    # the memoryless model's NLL over the same frames (the task's own reference)
    expected = task.memoryless_nll(x, lengths)
    torch.testing.assert_close(out.reconstruction.item(), expected, rtol=1e-5, atol=0)


@pytest.mark.parametrize("kind", ["vrnn", "storn", "draw:glimpses=3"])
def test_the_bound_is_the_modules_own_in_nats_per_digit(kind: str) -> None:
    task = make_task("digits", digits=100)
    model = build_model(config(kind), task)
    assert isinstance(model, (VRNN, STORN, DRAW))
    model.eval()
    batch = task.eval_batches(20, 1)[0]
    scoring = objective(config(kind).model, task)
    assert isinstance(scoring, BoundObjective)
    metrics = evaluate(model, task, [batch], torch.device("cpu"), scoring)
    # the module's own bound under the same noise, summed over a digit's 28 rows
    generator = torch.Generator().manual_seed(EVAL_NOISE_SEED)
    with torch.no_grad():
        if isinstance(model, DRAW):
            out = model(batch.targets, generator=generator)
            per_digit, kl = out.loss, out.kl
        else:
            bound = model(batch.targets, generator=generator)
            per_digit = bound.steps.sum(1)
            kl = bound.kl * 28
    assert metrics["nll"] == pytest.approx(per_digit.mean().item(), rel=1e-5)
    assert metrics["kl"] == pytest.approx(kl.mean().item(), rel=1e-5)
    assert metrics["nll"] == pytest.approx(metrics["reconstruction"] + metrics["kl"], rel=1e-6)
    assert metrics == evaluate(model, task, [batch], torch.device("cpu"), scoring)  # same noise


def test_a_bound_model_resumes_exactly(tmp_path: Path) -> None:
    straight = Trainer(config("vrnn", steps=6), out_dir=tmp_path / "a")
    straight.fit()
    Trainer(config("vrnn", steps=3), out_dir=tmp_path / "b").fit()
    resumed = Trainer(config("vrnn", steps=6), out_dir=tmp_path / "b", resume=True)
    resumed.fit()
    assert straight.model is not None
    assert resumed.model is not None
    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_a_checkpoint_rebuilds_the_model_or_names_its_kind(tmp_path: Path) -> None:
    trainer = Trainer(config("draw:glimpses=2,attention=false"), out_dir=tmp_path)
    result = trainer.fit()
    model, task, cfg = load_model(tmp_path / "checkpoint.pt")
    assert isinstance(model, DRAW)
    assert not model.attention
    assert model.glimpses == 2
    assert cfg.model.kind == "draw:glimpses=2,attention=false"
    batches = task.eval_batches(256, 1)
    again = evaluate(model, task, batches, torch.device("cpu"), objective(cfg.model, task))
    assert again["nll"] == pytest.approx(result.metrics["nll"], rel=1e-6)
    with pytest.raises(LstmkitError, match=r"holds a draw model.*sequence models only"):
        load_run(tmp_path / "checkpoint.pt")
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    del state["model_info"]["image_size"]  # as a damaged or hand-edited file might
    save_checkpoint(tmp_path / "broken.pt", state, keep_previous=False)
    with pytest.raises(LstmkitError, match="cannot be built: a draw model is built for images"):
        load_model(tmp_path / "broken.pt")
