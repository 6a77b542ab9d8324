"""What a study gave: its methods, baseline, cases, per-(method, case) records and summary rows (read by the
report; written by :func:`MedFusionLib.study.cohort.run_study`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from MedFusionLib.study.manifest import Case
from MedFusionLib.study.runner import CaseRecord


@dataclass
class StudyOutcome:
    """The records of a study (``(method, record)`` in run order) and where its outputs went."""

    out_dir: Path
    methods: list[str]
    baseline: str
    cases: list[Case]
    records: list[tuple[str, CaseRecord]] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[tuple[str, CaseRecord]]:
        return [(m, r) for m, r in self.records if not r.ok]

    @property
    def groups(self) -> list[str]:
        return sorted({c.group for c in self.cases if c.group})
