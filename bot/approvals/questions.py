"""Claude's clarifying questions (the AskUserQuestion tool) and their answers.

The SDK expects ``PermissionResultAllow(updated_input={**input, "answers":
{question_text: answer}})``: a single choice is the option's label, several
are labels joined with ", ", and a typed answer is the text itself.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

TOOL_NAME = "AskUserQuestion"


class Option(BaseModel):
    model_config = ConfigDict(extra="ignore")
    label: str = Field(min_length=1)
    description: str = ""


class Question(BaseModel):
    model_config = ConfigDict(extra="ignore")
    question: str = Field(min_length=1)
    header: str = ""
    options: list[Option] = Field(min_length=1, max_length=10)
    multiSelect: bool = False  # noqa: N815 (the SDK's field name)


class _Questions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    questions: list[Question] = Field(min_length=1, max_length=4)


def parse(tool_name: str, tool_input: dict[str, Any]) -> list[Question] | None:
    """The questions, or None when this is not a well-formed AskUserQuestion
    (then it is shown and decided as an ordinary approval)."""
    if tool_name != TOOL_NAME:
        return None
    try:
        return _Questions.model_validate(tool_input).questions
    except ValidationError:
        return None


class InvalidAnswers(Exception):
    """Some questions are unanswered or answered twice; ``errors`` maps question index → reason."""

    def __init__(self, errors: dict[int, str]) -> None:
        super().__init__("; ".join(f"question {i + 1}: {r}" for i, r in errors.items()))
        self.errors = errors


def answers(questions: list[Question], chosen: dict[int, list[int]], typed: dict[int, str]) -> dict[str, str]:
    """The ``answers`` map from the options chosen (by index) and the text typed per question."""
    result: dict[str, str] = {}
    errors: dict[int, str] = {}
    for index, question in enumerate(questions):
        labels = [question.options[i].label for i in chosen.get(index, []) if 0 <= i < len(question.options)]
        own = (typed.get(index) or "").strip()
        if question.multiSelect:
            parts = labels + ([own] if own else [])
            if parts:
                result[question.question] = ", ".join(parts)
            else:
                errors[index] = "Choose at least one option or type your own answer."
        elif labels and own:
            errors[index] = "Choose an option or type your own answer, not both."
        elif labels or own:
            result[question.question] = labels[0] if labels else own
        else:
            errors[index] = "Choose an option or type your own answer."
    if errors:
        raise InvalidAnswers(errors)
    return result
