"""Reading the docs' Markdown: fenced examples, and a page's ``## `` sections."""

import re


def fenced(text: str, language: str) -> list[str]:
    """The code of every ```language block of ``text``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def sections(text: str) -> dict[str, str]:
    """Each ``## `` section of a page, by its title (the text before the first is left out)."""
    return {part.splitlines()[0]: part for part in text.split("\n## ")[1:]}
