"""Claude's clarifying questions (the AskUserQuestion tool) and their answers.

The SDK expects ``PermissionResultAllow(updated_input={**input, "answers":
{question_text: answer}})``: a single choice is the option's label, several
are labels joined with ", ", and a typed answer is the text itself.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .tools import ASK_USER_QUESTION


class Option(BaseModel):
    model_config = ConfigDict(extra="ignore")
    label: str = Field(min_length=1)
    description: str = ""


class Question(BaseModel):
    model_config = ConfigDict(extra="ignore")
    question: str = Field(min_length=1)
    header: str = ""
    options: list[Option] = Field(min_length=1, max_length=10)
    multiSelect: bool = False


class _Questions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    questions: list[Question] = Field(min_length=1, max_length=4)


def parse(tool_name: str, tool_input: dict[str, Any]) -> list[Question] | None:
    """The questions, or None when this is not a well-formed AskUserQuestion
    (then it is shown and decided as an ordinary approval)."""
    if tool_name != ASK_USER_QUESTION:
        return None
    try:
        return _Questions.model_validate(tool_input).questions
    except ValidationError:
        return None


class Problem(StrEnum):
    """Why one question's answer in the form cannot be sent (bot.text.modals words it)."""

    NO_CHOICE = "no_choice"
    """Nothing chosen (the form's choice is required; an old or forged form may lack it)."""
    OTHER_WITHOUT_TEXT = "other_without_text"
    """"Other…" chosen, but no answer typed."""
    TEXT_WITHOUT_OTHER = "text_without_other"
    """An answer typed, but "Other…" not chosen: which one was meant is unclear, so ask."""

    @property
    def in_typed_field(self) -> bool:
        """Shown under the typed answer's field (else under the choice)."""
        return self is not Problem.NO_CHOICE


class InvalidAnswers(Exception):
    """Some questions cannot be answered as submitted; ``errors`` maps question index → problem."""

    def __init__(self, errors: dict[int, Problem]) -> None:
        super().__init__("; ".join(f"question {i + 1}: {p.value}" for i, p in errors.items()))
        self.errors = errors


def answers(questions: list[Question], chosen: dict[int, list[int]], typed: dict[int, str]) -> dict[str, str]:
    """The ``answers`` map the SDK expects, from the form's choices and typed answers.

    ``chosen[i]`` holds the indexes of the options picked for question ``i``;
    the index one past its last option is "Other…", which sends ``typed[i]``
    (alone, or after the labels picked in a multi-select). A single choice is
    its label; several are labels joined with ", ".
    """
    result: dict[str, str] = {}
    errors: dict[int, Problem] = {}
    for index, question in enumerate(questions):
        picked = chosen.get(index, [])
        other = len(question.options) in picked
        labels = [question.options[i].label for i in dict.fromkeys(picked) if 0 <= i < len(question.options)]
        own = (typed.get(index) or "").strip()
        if not question.multiSelect:
            labels = labels[:1] if not other else []
        if not labels and not other:
            errors[index] = Problem.NO_CHOICE
        elif other and not own:
            errors[index] = Problem.OTHER_WITHOUT_TEXT
        elif own and not other:
            errors[index] = Problem.TEXT_WITHOUT_OTHER
        else:
            result[question.question] = ", ".join(labels + ([own] if other else []))
    if errors:
        raise InvalidAnswers(errors)
    return result
