"""PS3.15 Annex E Table E.1-1 as data: which action the profile and its options give each attribute.

The table ships as package data (``data/confidentiality_profile_attributes.json``, standard edition
2024b, MIT, innolitics/dicom-standard); this module only reads it. Keeping the table out of the code
means a newer edition is a file swap, and a test can walk every row.

Action codes (PS3.15 E.1.1): ``D`` replace with a dummy value, ``Z`` zero length (or dummy), ``X``
remove, ``K`` keep (sequences: keep and clean their items), ``C`` clean, ``U`` replace a UID
consistently; combinations (``X/Z``, ``X/D``, ``X/Z/D``, ``Z/D``, ``X/Z/U*``) name the weaker action an
IOD's Type 1 or 2 may require (see :mod:`tui_dicom.core.deid.engine` for how they are resolved).
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

#: the standard edition the shipped table was parsed from
EDITION = "2024b"
TABLE_FILE = "confidentiality_profile_attributes.json"
SAFE_PRIVATE_FILE = "safe_private.json"


class Option(enum.Enum):
    """The profile options this de-identifier implements: (table column, CID 7050 code, meaning).

    Clean Pixel Data, Clean Recognizable Visual Features, Clean Graphics and Clean Structured Content
    need a person (or an image model) to judge content; they are not offered.
    """

    RETAIN_LONG_FULL_DATES = (
        "rtnLongFullDatesOpt",
        "113106",
        "Retain Longitudinal Temporal Information Full Dates Option",
    )
    RETAIN_LONG_MODIFIED_DATES = (
        "rtnLongModifDatesOpt",
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    )
    RETAIN_PATIENT_CHARACTERISTICS = ("rtnPatCharsOpt", "113108", "Retain Patient Characteristics Option")
    RETAIN_DEVICE_IDENTITY = ("rtnDevIdOpt", "113109", "Retain Device Identity Option")
    RETAIN_UIDS = ("rtnUIDsOpt", "113110", "Retain UIDs Option")
    RETAIN_SAFE_PRIVATE = ("rtnSafePrivOpt", "113111", "Retain Safe Private Option")
    RETAIN_INSTITUTION_IDENTITY = ("rtnInstIdOpt", "113112", "Retain Institution Identity Option")
    CLEAN_DESCRIPTORS = ("cleanDescOpt", "113105", "Clean Descriptors Option")

    @property
    def column(self) -> str:
        """The option's column name in the JSON table."""
        return self.value[0]

    @property
    def code(self) -> str:
        """Its code value in CID 7050 (coding scheme DCM)."""
        return self.value[1]

    @property
    def meaning(self) -> str:
        """Its code meaning in CID 7050."""
        return self.value[2]


#: the Basic Application Level Confidentiality Profile in CID 7050
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
#: recorded for an image whose burned-in text was blacked out with masks
CLEAN_PIXEL_DATA_CODE = ("113101", "Clean Pixel Data Option")

#: the date options: the two are exclusive, and for date/time attributes they decide over any other option
DATE_OPTIONS = (Option.RETAIN_LONG_FULL_DATES, Option.RETAIN_LONG_MODIFIED_DATES)

ACTIONS = frozenset({"D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "X/Z/D", "Z/D", "X/Z/U*"})


@dataclass(frozen=True)
class Rule:
    """One row of Table E.1-1."""

    tag: str
    name: str
    basic: str
    #: option column -> action, only the columns the row fills
    options: tuple[tuple[str, str], ...]

    def option_action(self, option: Option) -> str | None:
        """The action the row gives under ``option``, or None when the option says nothing."""
        for column, action in self.options:
            if column == option.column:
                return action
        return None


@dataclass(frozen=True)
class Table:
    """Table E.1-1 indexed for lookup."""

    rules: tuple[Rule, ...]
    by_tag: dict[int, Rule]
    curve: Rule
    overlay_data: Rule
    overlay_comments: Rule
    private: Rule

    def rule_for(self, tag: int) -> Rule | None:
        """The row that applies to ``tag`` (wildcard rows included), or None when the table has none."""
        rule = self.by_tag.get(tag)
        if rule is not None:
            return rule
        group, elem = tag >> 16, tag & 0xFFFF
        if group & 1:
            return self.private
        if 0x5000 <= group <= 0x501E:
            return self.curve
        if 0x6000 <= group <= 0x601E:
            if elem == 0x3000:
                return self.overlay_data
            if elem == 0x4000:
                return self.overlay_comments
        return None


_TAG = re.compile(r"^\(([0-9A-F]{4}),([0-9A-F]{4})\)$")


def parse_rules(rows: list[dict[str, str]]) -> Table:
    """Build a :class:`Table` from the JSON rows.

    Raises:
        ValueError: a row has an action code or tag form this module does not know (a newer edition
            must be read, not guessed).
    """
    option_columns = {o.column for o in Option} | {"cleanStructContOpt", "cleanGraphOpt"}
    rules: list[Rule] = []
    by_tag: dict[int, Rule] = {}
    special: dict[str, Rule] = {}
    for row in rows:
        basic = row["basicProfile"]
        if basic not in ACTIONS:
            raise ValueError(f"unknown action {basic!r} for {row['tag']}")
        options = tuple(sorted((k, v) for k, v in row.items() if k in option_columns))
        for _col, action in options:
            if action not in ACTIONS:
                raise ValueError(f"unknown option action {action!r} for {row['tag']}")
        rule = Rule(tag=row["tag"], name=row["name"], basic=basic, options=options)
        rules.append(rule)
        m = _TAG.match(row["tag"].upper())
        if m:
            by_tag[int(m.group(1) + m.group(2), 16)] = rule
        else:
            special[row["tag"].upper()] = rule
    try:
        return Table(
            rules=tuple(rules),
            by_tag=by_tag,
            curve=special["(50XX,XXXX)"],
            overlay_data=special["(60XX,3000)"],
            overlay_comments=special["(60XX,4000)"],
            private=special["(GGGG,EEEE) WHERE GGGG IS ODD"],
        )
    except KeyError as exc:
        raise ValueError(f"the table lacks the wildcard row {exc}") from None


@lru_cache(maxsize=1)
def load_table() -> Table:
    """The shipped Table E.1-1 (read once)."""
    text = resources.files("tui_dicom.core.deid").joinpath("data").joinpath(TABLE_FILE).read_text("utf-8")
    return parse_rules(json.loads(text))


@lru_cache(maxsize=1)
def safe_private() -> frozenset[tuple[str, int, int]]:
    """Safe private attributes: (private creator, group, element offset in its block)."""
    text = (
        resources.files("tui_dicom.core.deid").joinpath("data").joinpath(SAFE_PRIVATE_FILE).read_text("utf-8")
    )
    return frozenset(
        (a["creator"], int(a["group"], 16), int(a["element"], 16)) for a in json.loads(text)["attributes"]
    )


def resolve_option_action(rule: Rule, options: frozenset[Option], *, temporal: bool) -> str:
    """The action for ``rule`` once the chosen options are applied.

    The options override the basic profile's action. When several apply: for date and time attributes
    (``temporal``) the date option decides (a retained device or institution identity must not bring a
    real date back while all other dates are shifted); otherwise a retain option's ``K`` wins over a
    clean option's ``C``, which wins over the basic action.
    """
    if temporal:
        for option in DATE_OPTIONS:
            if option in options:
                action = rule.option_action(option)
                if action is not None:
                    return action
    found: list[str] = []
    for option in Option:
        if option in options:
            action = rule.option_action(option)
            if action is not None:
                found.append(action)
    if "K" in found:
        return "K"
    if "C" in found:
        return "C"
    return rule.basic
