"""AntiSpoofDataModule: batch contract, determinism, config instantiation, errors."""

from collections import Counter
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from spoof_lightning.data.audio import load_audio
from spoof_lightning.data.datamodule import AntiSpoofDataModule
from spoof_lightning.data.dataset import EpochSampler, ItemTransform, UtteranceDataset, collate
from spoof_lightning.data.preflight import DataError
from spoof_lightning.data.protocols import CORPORA, load_split
from spoof_lightning.data.subset import select_subset
from tests.corpora import (
    make_asvspoof2019,
    make_asvspoof2021,
    make_had,
    synth,
    write_audio,
)

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"
CROP = 4000
ATTACKS = [f"A{i:02d}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_asvspoof2019(tmp_path_factory.mktemp("asv19"), "LA")


def data_yaml(name: str):
    """conf/data/<name>.yaml with its defaults (the shared base), as Hydra composes it."""
    with initialize_config_dir(str(CONF.parent), version_base="1.3"):
        return OmegaConf.create(OmegaConf.to_container(compose(f"data/{name}").data))


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
    items[0]["frame_labels"], items[1]["frame_labels"] = torch.tensor([1]), torch.tensor([0, 1])
    batch = collate(items)
    assert batch["label"].tolist() == [-1, 1] and batch["length"].tolist() == [3, 5]
    assert batch["frame_labels"].tolist() == [[1, -1], [0, 1]]
    assert batch["waveform"].tolist()[0] == [1, 1, 1, 0, 0]
    assert batch["waveform"].dtype == torch.float32 and batch["frame_labels"].dtype == torch.int64
    same = collate(items[:1] * 2)  # one length: stacked as they are
    assert (
        same["waveform"].tolist() == [[1, 1, 1]] * 2 and same["frame_labels"].tolist() == [[1]] * 2
    )


@pytest.mark.parametrize("name", ["demo", "asvspoof2019_la"])
def test_yaml_instantiates(name, corpus):
    cfg = OmegaConf.create(
        {
            "paths": {"data_dir": str(corpus.parent), "run_dir": str(corpus.parent / "run")},
            "sample_rate": 16000,
            "seed": 3,
            "data": data_yaml(name),
        }
    )
    if name == "asvspoof2019_la":
        with pytest.raises(Exception, match="root"):
            hydra.utils.instantiate(cfg.data)
        cfg.data.root = str(corpus)
    dm = hydra.utils.instantiate(cfg.data)
    assert isinstance(dm, AntiSpoofDataModule) and dm.seed == 3 and dm.sample_rate == 16000


def test_subset_balanced_stratified_and_seeded(tmp_path):
    root = make_asvspoof2019(tmp_path, "LA", counts={"train": (6, 24)}, min_len=400, max_len=500)
    entries = load_split("asvspoof2019_la", root, "train")
    balanced = select_subset(entries, seed=0, per_class=4)
    assert Counter(u.label for u in balanced) == {0: 4, 1: 4}
    assert balanced == select_subset(entries, seed=0, per_class=4)
    assert balanced != select_subset(entries, seed=1, per_class=4)
    assert [entries.index(u) for u in balanced] == sorted(entries.index(u) for u in balanced)
    uneven = select_subset(entries, seed=0, per_class={"bonafide": 6, "spoof": 2})
    assert Counter(u.label for u in uneven) == {1: 6, 0: 2}
    per_attack = select_subset(entries, seed=0, per_attack=2)
    assert Counter(u.attack for u in per_attack) == {a: 2 for a in ["-", *ATTACKS]}
    stratified = select_subset(entries, seed=0, size=15)  # half: 3 bona fide, 2 per attack
    assert len(stratified) == 15
    assert Counter(u.attack for u in stratified) == {"-": 3, **{a: 2 for a in ATTACKS}}
    with pytest.raises(ValueError, match="exactly one"):
        select_subset(entries, per_class=1, size=3)


def test_subset_from_config(corpus):
    dm = module(corpus, subset={"train": {"per_class": 2}})
    dm.setup("fit")
    assert Counter(u.label for u in dm.utterances("train")) == {0: 2, 1: 2}
    assert len(dm.utterances("val")) == 5  # other splits untouched
    with pytest.raises(ValueError, match="data.subset"):
        module(corpus, subset={"dev": {"size": 3}})


def test_attack_filter_keeps_bona_fide_and_listed_attacks(corpus):
    dm = module(corpus, attacks={"train": ["A01", "A04"], "val": None, "test": ["A10"]})
    dm.setup("fit")
    train = dm.utterances("train")
    assert Counter(u.attack for u in train) == {"-": 3, "A01": 1, "A04": 1}
    assert len(dm.dataset("train")) == 5 and len(dm.utterances("val")) == 5  # val kept whole
    assert {u.attack for u in dm.utterances("test")} == {"-", "A10"}
    # applied before the subset: per_class counts the listed attacks only
    both = module(corpus, attacks={"train": ["A01", "A04"]}, subset={"train": {"per_class": 2}})
    assert Counter(u.attack for u in both.utterances("train") if u.label == 0) == {
        "A01": 1,
        "A04": 1,
    }
    with pytest.raises(ValueError, match=r"data.attacks.test: \['A01'\] not in the test split.*"
                       r"it has \['A09', 'A10', 'A11', 'A12'\]"):  # fmt: skip
        module(corpus, attacks={"test": ["A01"]}).utterances("test")
    with pytest.raises(ValueError, match=r"data.attacks keys \['dev'\]"):
        module(corpus, attacks={"dev": ["A01"]})
    with pytest.raises(ValueError, match="data.attacks.train is empty"):
        module(corpus, attacks={"train": []})


def test_attacks_yaml_default_is_null_and_overridable(corpus):
    cfg = OmegaConf.create({"paths": {"data_dir": "", "run_dir": None}, "sample_rate": 16000,
                            "data": data_yaml("asvspoof2019_la")})  # fmt: skip
    assert cfg.data.attacks is None
    cfg.data.update(root=str(corpus), train_crop=CROP, num_workers=0, persistent_workers=False)
    cfg.data.attacks = {"train": ["A02"]}
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    assert {u.attack for u in dm.utterances("train")} == {"-", "A02"}


def test_had_frame_labels(tmp_path):
    root = make_had(tmp_path, {"train": (1, 2), "dev": (1, 1), "test": (1, 1)})
    dm = AntiSpoofDataModule(
        corpus="had", root=str(root), train_crop=16000, eval_crop=None, frame_hop=0.02,
        batch_size=2,
    )  # fmt: skip
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    frames = batch["frame_labels"]
    real, fake = (0, 1) if batch["label"][0] == 1 else (1, 0)
    n_frames = -(-batch["length"] // 320)
    assert frames.shape == (2, int(n_frames.max()))
    assert set(frames[real, : n_frames[real]].tolist()) == {1}
    row = frames[fake, : n_frames[fake]].tolist()
    third = len(row) // 3
    assert row[0] == 1 and row[-1] == 1 and set(row[third + 2 : 2 * third - 2]) == {0}
    for r in range(2):  # frames past a row's own length are padding
        assert (frames[r, n_frames[r] :] == -1).all()
    dm.setup("fit")
    train = next(iter(dm.train_dataloader()))
    assert train["frame_labels"].shape == (2, 50)  # 16000 samples / 320 per frame


def test_asvspoof2021_tests_on_2021_and_trains_on_2019(tmp_path):
    la19 = make_asvspoof2019(tmp_path / "19", "LA", counts={"train": (1, 2), "dev": (1, 1)})
    la21 = make_asvspoof2021(tmp_path / "21", "LA", per_phase=(1, 2))
    dm = AntiSpoofDataModule(
        corpus="asvspoof2021_la", root=str(la21), train_corpus="asvspoof2019_la", train_crop=CROP
    )
    with pytest.raises(FileNotFoundError, match="data.train_root"):
        dm.setup("fit")
    dm = AntiSpoofDataModule(
        corpus="asvspoof2021_la", root=str(la21), corpus_options={"phase": "eval"},
        train_corpus="asvspoof2019_la", train_root=str(la19), train_crop=CROP, eval_crop=CROP,
    )  # fmt: skip
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.utterances("train")) == 3 and dm.utterances("val")[0].utt_id.startswith("LA_D")
    test = dm.utterances("test")
    assert len(test) == 3 and {u.meta["phase"] for u in test} == {"eval"}
    assert next(iter(dm.test_dataloader()))["waveform"].shape == (3, CROP)


def test_folder_scoring_full_utterances(tmp_path):
    for i, n in enumerate([3000, 5000, 4000]):
        write_audio(tmp_path / f"clip{i}.wav", synth(n, seed=i))
    cfg = data_yaml("folder")
    cfg.root, cfg.sample_rate, cfg.seed, cfg.report_dir = str(tmp_path), 16000, 0, None
    cfg.augment = None  # loaded on its own, the node is the root: no augment group
    cfg.num_workers, cfg.pin_memory, cfg.persistent_workers = 0, False, False
    dm = hydra.utils.instantiate(cfg)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert batch["length"].tolist() == [3000, 5000, 4000]
    assert batch["label"].tolist() == [-1, -1, -1]
    assert batch["utt_id"] == ["clip0.wav", "clip1.wav", "clip2.wav"]
    for split in ("train", "val"):
        write_audio(tmp_path / split / "x.wav", synth(3000))
    with pytest.raises(DataError, match=r"1 unlabeled entries \(e.g. train/x.wav\).*labels"):
        hydra.utils.instantiate(cfg).setup("fit")  # not a deep cross-entropy traceback


@pytest.mark.parametrize("name", sorted(p.stem for p in CONF.glob("*.yaml")))
def test_every_data_yaml_builds(name, tmp_path):
    # composed as train.py composes it, so a data yaml may extend another through defaults
    with initialize_config_dir(str(CONF.parent), version_base="1.3"):
        overrides = [f"data={name}", f"paths.data_dir={tmp_path}", f"paths.run_dir={tmp_path}/run"]
        cfg = compose("train", overrides=overrides)
    if OmegaConf.is_missing(cfg.data, "root"):
        cfg.data.root = str(tmp_path)
    dm = hydra.utils.instantiate(cfg.data)
    assert isinstance(dm, AntiSpoofDataModule) and dm.corpus in CORPORA


def test_sampler_under_lightning_ddp_wrapper():
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    seen = {}
    for epoch in (0, 1):
        for rank in (0, 1):
            wrapped = DistributedSamplerWrapper(
                EpochSampler(10, shuffle=True, seed=0), num_replicas=2, rank=rank, shuffle=False
            )
            wrapped.set_epoch(epoch)  # what Lightning calls; forwarded to our sampler
            seen[epoch, rank] = list(wrapped)
        keys = seen[epoch, 0] + seen[epoch, 1]
        assert sorted(i for _, i in keys) == list(range(10)) and {e for e, _ in keys} == {epoch}
    assert seen[0, 0] != seen[1, 0]


@pytest.mark.parametrize("group", ["rawboost", "noise", "codec"])
def test_augment_config_group_reaches_the_train_split(corpus, group):
    path = CONF.parent / "augment" / f"{group}.yaml"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    cfg = OmegaConf.create(
        {
            "paths": {"data_dir": str(corpus.parent), "run_dir": None},
            "sample_rate": 16000,
            "augment": OmegaConf.load(path),
            "data": data_yaml("asvspoof2019_la"),
        }
    )
    cfg.data.update(root=str(corpus), train_crop=CROP, eval_crop=CROP, num_workers=0)
    cfg.data.update(pin_memory=False, persistent_workers=False, batch_size=4)
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    plain = module(corpus)
    for d in (dm, plain):
        d.setup("fit")
    a, b = next(iter(dm.train_dataloader())), next(iter(plain.train_dataloader()))
    assert a["utt_id"] == b["utt_id"] and a["waveform"].shape == (4, CROP)
    assert torch.isfinite(a["waveform"]).all()
    assert not torch.equal(a["waveform"], b["waveform"])  # augmented
    va, vb = next(iter(dm.val_dataloader())), next(iter(plain.val_dataloader()))
    torch.testing.assert_close(va["waveform"], vb["waveform"], rtol=0, atol=0)  # not augmented
