"""The console's session record: its setup, rankings and readouts."""

from __future__ import annotations

from pydantic import Field, JsonValue, ValidationError

from labconsole.engine.records.base import Record, VersionedRecord
from labconsole.engine.records.manifest import Manifest, SessionSetup
from labconsole.engine.records.sections import Ranking, Readout

# -- the console's session record ---------------------------------------------------------------


class ConsoleReadout(Record):
    """One intervention the user read out in the console, with the ranking it came from."""

    created: str = ""
    seq: int | None = None  # its place in the session record (written with the line)
    criterion: str | None = None
    ranked_group: str | None = None
    scope: str | None = None
    k: float | None = None
    std: float | None = None
    seeds: int = 1
    readout: Readout


class RankingLine(Ranking):
    """A ranking line of a console session record (``readouts.jsonl``): the ranking and its
    place in the session (a line without a criterion still reads)."""

    criterion: str = ""
    seq: int | None = None


class SessionLine(Record):
    """Any line of a console session record: which kind it is ("ranking" | "readout")."""

    kind: str = Field(default="", alias="type")


def parse_session_line(line: dict[str, JsonValue]) -> RankingLine | ConsoleReadout | SessionLine:
    """A ``readouts.jsonl`` line as its record: a ranking, a readout (an older flat line is its
    own readout), else the bare ``SessionLine`` (another kind, or a line that does not fit)."""
    try:
        head = SessionLine.model_validate(line)
    except ValidationError:  # a "type" that is not text
        return SessionLine()
    try:
        if head.kind == "ranking":
            return RankingLine.model_validate(line)
        if head.kind == "readout":
            payload = line if isinstance(line.get("readout"), dict) else {**line, "readout": line}
            return ConsoleReadout.model_validate(payload)
    except ValidationError:
        pass
    return head


class ConsoleSession(VersionedRecord):
    """A console session saved to a file: its setup, rankings and readouts."""

    created: str = ""
    setup: SessionSetup = Field(default_factory=SessionSetup)
    group_names: list[str] = Field(default_factory=list)
    train_group_counts: dict[str, int] = Field(default_factory=dict)
    rankings: list[Ranking] = Field(default_factory=list)
    readouts: list[ConsoleReadout] = Field(default_factory=list)


class SessionManifest(Manifest):
    """A console session's ``manifest.json``: the run manifest plus what identifies the
    session's model and groups."""

    kind: str = ""
    model: SessionSetup = Field(default_factory=SessionSetup)
    group_names: list[str] = Field(default_factory=list)
    minority_groups: list[str] = Field(default_factory=list)
    train_group_counts: dict[str, int] = Field(default_factory=dict)
