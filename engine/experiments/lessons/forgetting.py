"""Settings of the Forgetting lesson's two sections: catastrophic forgetting (`ForgettingSettings`,
link keys f_*) and the per-layer diagnostics (`DiagnosticsSettings`, link keys d_*).

Each is a frozen dataclass following `ui.kit.section.SectionSettings`: read from a link with a
notice for every value it cannot use, written back to a link, and turned into the engine's
config (`ForgettingConfig`, `DiagnosticsConfig`) that the job manager runs. The choices below
are what the forms and links allow. Not here: the forms and the panels (`ui.lessons.forgetting`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, Mapping

from engine.core.datasets import ALL_LABELS, labels_text
from engine.core.store import ResultStore
from engine.experiments.diagnostics import BASELINE, DiagnosticsConfig, stored_by_name
from engine.experiments.forgetting import MAX_SEEDS, ForgettingConfig, ForgettingSeeds, stored_seeds
from engine.experiments.readings import Sentence
from engine.experiments.readings.forgetting import diagnostics_readings, forgetting_readings
from engine.experiments.lessons.links import QueryReader

F_LABELS = (10, 20, 50, ALL_LABELS)  # target labels per class of the forgetting arms
LRS = (1e-3, 3e-3, 1e-2)  # learning rate of plain fine-tuning and of every new head
LOW_MULTS = (0.3, 0.1, 0.03)  # the lower learning rate's factor
LAMBDAS = (0.0, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0)  # EWC's lambda
EPOCHS = (2, 15)  # lowest and highest
FREEZE_BLOCKS = (1, 3)  # lowest and highest
REPLAY_MAX = 0.9  # highest replay fraction (the lowest is 0)
SEEDS = (0, 9)  # lowest and highest
D_LABELS = (5, 10, 20, 50, ALL_LABELS)  # labels per class of the diagnostics' fine-tunes
PROBE_LABELS = (5, 10, 20, ALL_LABELS)  # labels per class of the linear probes
BACKBONE_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)  # learning rates of the pretrained layers


@dataclass(frozen=True)
class ForgettingSettings:
    PARAMS: ClassVar[tuple[str, ...]] = ("f_labels", "f_epochs", "f_lr", "f_low", "f_freeze",
                                         "f_lambda", "f_replay", "f_seed", "f_seeds")

    labels_per_class: int = ALL_LABELS  # target labels per class (ALL_LABELS: every one)
    epochs: int = 8  # epochs of fine-tuning; both tasks are scored after each
    lr: float = 3e-3  # one of LRS
    low_lr_mult: float = 0.1  # one of LOW_MULTS
    freeze_blocks: int = 2  # early blocks the freeze arm keeps fixed
    ewc_lambda: float = 1000.0  # one of LAMBDAS
    replay_fraction: float = 0.25  # share of each batch that is source images
    seed: int = 0  # the first seed: target labels drawn, new head, batch order
    seeds: int = 3  # seeds from `seed` up, each a run of every arm (the rule needs 3 to call)

    def __post_init__(self):
        self.experiment()  # ValueError when the engine cannot run these settings

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["ForgettingSettings", list[str]]:
        query = QueryReader(params)
        fields = dict(
            labels_per_class=query.size("f_labels", F_LABELS, ALL_LABELS),
            epochs=query.integer("f_epochs", *EPOCHS, 8), lr=query.numbers("f_lr", LRS, (3e-3,))[0],
            low_lr_mult=query.numbers("f_low", LOW_MULTS, (0.1,))[0],
            freeze_blocks=query.integer("f_freeze", *FREEZE_BLOCKS, 2),
            ewc_lambda=query.numbers("f_lambda", LAMBDAS, (1000.0,))[0],
            replay_fraction=query.number("f_replay", 0, REPLAY_MAX, 0.25),
            seed=query.integer("f_seed", *SEEDS, 0),
            seeds=query.integer("f_seeds", 1, MAX_SEEDS, 3))
        return _settings_or_default(cls, fields, query.notices)

    @classmethod
    def from_form(cls, labels_per_class, epochs, lr, low_lr_mult, freeze_blocks, ewc_lambda,
                  replay_fraction, seed, seeds=3) -> "ForgettingSettings":
        """Settings from the form's widgets (the replay slider rounded to its step)."""
        return cls(labels_per_class, int(epochs), lr, low_lr_mult, int(freeze_blocks), ewc_lambda,
                   round(replay_fraction, 2), int(seed), int(seeds))

    def to_query(self) -> dict[str, str]:
        return {"f_labels": labels_text(self.labels_per_class), "f_epochs": str(self.epochs),
                "f_lr": f"{self.lr:g}", "f_low": f"{self.low_lr_mult:g}",
                "f_freeze": str(self.freeze_blocks), "f_lambda": f"{self.ewc_lambda:g}",
                "f_replay": f"{self.replay_fraction:g}", "f_seed": str(self.seed),
                "f_seeds": str(self.seeds)}

    def config(self) -> ForgettingConfig:
        """The experiment at the first seed (what every seed shares but the seed)."""
        fields = asdict(self)
        del fields["seeds"]
        return ForgettingConfig(**fields)

    def records(self, store: ResultStore) -> dict[str, list[dict]]:
        """arm -> its stored records, one per seed that has it."""
        return stored_seeds(self.experiment(), store)

    def readings(self, store: ResultStore) -> list[Sentence]:
        """Forgetting of plain fine-tuning, then each remedy against it (seed by seed)."""
        return forgetting_readings(self.records(store))

    def experiment(self) -> ForgettingSeeds:
        return ForgettingSeeds(self.config(), self.seeds)


@dataclass(frozen=True)
class DiagnosticsSettings:
    PARAMS: ClassVar[tuple[str, ...]] = ("d_labels", "d_lrs", "d_probe")

    labels_per_class: int = 20  # labels per class the fine-tunes train on, one of D_LABELS
    backbone_lrs: tuple[float, ...] = (3e-4, 3e-3)  # one fine-tune per rate, each of BACKBONE_LRS
    probe_labels_per_class: int = 10  # labels per class the probes train on, one of PROBE_LABELS

    def __post_init__(self):
        object.__setattr__(self, "backbone_lrs", tuple(self.backbone_lrs))
        self.experiment()  # ValueError when the engine cannot run these settings

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["DiagnosticsSettings", list[str]]:
        query = QueryReader(params)
        fields = dict(labels_per_class=query.size("d_labels", D_LABELS, 20),
                      backbone_lrs=query.numbers("d_lrs", BACKBONE_LRS, (3e-4, 3e-3)),
                      probe_labels_per_class=query.size("d_probe", PROBE_LABELS, 10))
        return _settings_or_default(cls, fields, query.notices)

    @classmethod
    def from_form(cls, labels_per_class, backbone_lrs, probe_labels_per_class) -> "DiagnosticsSettings":
        return cls(labels_per_class, tuple(backbone_lrs), probe_labels_per_class)

    def to_query(self) -> dict[str, str]:
        return {"d_labels": labels_text(self.labels_per_class),
                "d_lrs": ",".join(f"{v:g}" for v in self.experiment().backbone_lrs),
                "d_probe": labels_text(self.probe_labels_per_class)}

    def records(self, store: ResultStore) -> dict[str, dict]:
        """unit name -> its stored record (the baseline's probes, each fine-tune)."""
        return stored_by_name(self.experiment(), store)

    def readings(self, store: ResultStore) -> list[Sentence]:
        """Where CKA stayed and fell, and the probes on the last block."""
        config = self.experiment()
        return diagnostics_readings(self.records(store), BASELINE,
                                    labels_text(config.probe_labels_per_class))

    def experiment(self) -> DiagnosticsConfig:
        return DiagnosticsConfig(labels_per_class=self.labels_per_class, backbone_lrs=self.backbone_lrs,
                                 probe_labels_per_class=self.probe_labels_per_class)


def _settings_or_default(cls, fields: dict, notices: list[str]):
    """(cls(**fields), notices), or the defaults with the engine's refusal as one more notice."""
    try:
        return cls(**fields), notices
    except ValueError as err:
        return cls(), [*notices, str(err)]


LESSON = "forgetting"
SECTIONS = {"forgetting": ForgettingSettings, "diagnostics": DiagnosticsSettings}
