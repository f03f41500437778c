"""AntiSpoofDataModule: batch contract, determinism, config instantiation, errors."""

from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from spoof_lightning.data.audio import load_audio
from spoof_lightning.data.datamodule import AntiSpoofDataModule
from spoof_lightning.data.dataset import EpochSampler, ItemTransform, UtteranceDataset, collate
from spoof_lightning.data.fixtures import make_asvspoof2019
from spoof_lightning.data.protocols import load_split

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"
CROP = 4000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_asvspoof2019(tmp_path_factory.mktemp("asv19"), "LA")


def module(root: Path, **kw) -> AntiSpoofDataModule:
    kw = {"train_crop": CROP, "eval_crop": CROP, "batch_size": 4, **kw}
    return AntiSpoofDataModule(corpus="asvspoof2019_la", root=str(root), **kw)


def test_batch_contract(corpus):
    dm = module(corpus)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert [len(b["label"]) for b in batches] == [4, 4]  # 8 utterances, drop_last=False
    b = batches[0]
    assert b["waveform"].shape == (4, CROP) and b["waveform"].dtype == torch.float32
    assert b["label"].dtype == torch.long and set(b["label"].tolist()) <= {0, 1}
    assert all(isinstance(b[k], list) and len(b[k]) == 4 for k in ("utt_id", "speaker", "attack"))
    ids = [u for batch in batches for u in batch["utt_id"]]
    assert sorted(ids) == sorted(u.utt_id for u in dm.utterances("train"))
    assert dm.utterances("val")[0].utt_id.startswith("LA_D_")
    for batch in dm.train_dataloader():  # bona fide entries carry attack '-'
        for label, attack in zip(batch["label"].tolist(), batch["attack"], strict=True):
            assert (attack == "-") == (label == 1)


def test_eval_is_deterministic_and_first_n(corpus):
    dm = module(corpus)
    dm.setup("test")
    a = next(iter(dm.test_dataloader()))
    b = next(iter(dm.test_dataloader()))
    torch.testing.assert_close(a["waveform"], b["waveform"], rtol=0, atol=0)
    assert a["utt_id"] == [u.utt_id for u in dm.utterances("test")[:4]]
    lengths = [len(load_audio(u.path)) for u in dm.utterances("test")[:4]]
    assert min(lengths) < CROP < max(lengths)  # both the crop and the pad branch are hit
    for row, utt in enumerate(dm.utterances("test")[:4]):
        x = load_audio(utt.path)
        expected = np.tile(x, 2)[:CROP] if len(x) < CROP else x[:CROP]
        torch.testing.assert_close(a["waveform"][row], torch.from_numpy(expected))


def test_train_crops_reproducible_and_vary_by_epoch(corpus):
    train = ItemTransform(crop=1000, train=True)
    ds = UtteranceDataset(load_split("asvspoof2019_la", corpus, "train"), train)
    np.testing.assert_array_equal(ds[(0, 5)]["waveform"], ds[(0, 5)]["waveform"])
    assert not torch.equal(ds[(0, 5)]["waveform"], ds[(1, 5)]["waveform"])
    other = UtteranceDataset(ds.utterances, train, seed=1)
    assert not torch.equal(ds[(0, 5)]["waveform"], other[(0, 5)]["waveform"])


def test_sampler_shuffles_per_epoch_and_covers_all():
    s = EpochSampler(20, shuffle=True, seed=0)
    e0, e1 = list(s), list(s)
    assert {i for _, i in e0} == set(range(20)) and {e for e, _ in e1} == {1}
    assert [i for _, i in e0] != [i for _, i in e1]
    s.set_epoch(0)
    assert list(s) == e0


def test_workers_give_same_batches(corpus):
    def first(workers: int) -> dict:
        dm = module(corpus, num_workers=workers)
        dm.setup("fit")
        return next(iter(dm.train_dataloader()))

    a, b = first(0), first(2)
    assert a["utt_id"] == b["utt_id"]
    torch.testing.assert_close(a["waveform"], b["waveform"], rtol=0, atol=0)


def test_full_utterance_eval_pads_with_lengths(corpus):
    dm = module(corpus, eval_crop=None)
    dm.setup("validate")
    batch = next(iter(dm.val_dataloader()))
    lengths = batch["length"]
    assert batch["waveform"].shape[1] == int(lengths.max()) and len(set(lengths.tolist())) > 1
    row = int(lengths.argmin())
    assert torch.all(batch["waveform"][row, lengths[row] :] == 0)


def test_augment_applies_to_train_only(corpus):
    calls = []

    def augment(x, rng):
        calls.append(len(x))
        return x * 0

    dm = module(corpus, augment=augment)
    dm.setup("fit")
    assert torch.all(next(iter(dm.train_dataloader()))["waveform"] == 0)
    assert torch.any(next(iter(dm.val_dataloader()))["waveform"] != 0)
    assert set(calls) == {CROP}


def test_missing_root_names_key(tmp_path):
    dm = module(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"absent.*data\.root"):
        dm.setup("fit")


def test_collate_labels_long():
    items = [
        {"waveform": torch.ones(3), "label": -1, "utt_id": "a", "speaker": "-", "attack": "-"},
        {"waveform": torch.ones(5), "label": 1, "utt_id": "b", "speaker": "-", "attack": "-"},
    ]
    batch = collate(items)
    assert batch["label"].tolist() == [-1, 1] and batch["length"].tolist() == [3, 5]


@pytest.mark.parametrize("name", ["demo", "asvspoof2019_la"])
def test_yaml_instantiates(name, corpus):
    cfg = OmegaConf.create(
        {
            "paths": {"data_dir": str(corpus.parent), "run_dir": str(corpus.parent / "run")},
            "sample_rate": 16000,
            "seed": 3,
            "data": OmegaConf.load(CONF / f"{name}.yaml"),
        }
    )
    if name == "asvspoof2019_la":
        with pytest.raises(Exception, match="root"):
            hydra.utils.instantiate(cfg.data)
        cfg.data.root = str(corpus)
    dm = hydra.utils.instantiate(cfg.data)
    assert isinstance(dm, AntiSpoofDataModule) and dm.seed == 3 and dm.sample_rate == 16000
