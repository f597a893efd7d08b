"""Identity-term swaps (data preparation): find the lexicon's terms in a text and swap them within their category,
keeping case and grammar; and counterfactual copies of training reviews built from those swaps. The fairness report
uses the same swaps to evaluate; training uses them to augment."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sentiment.lexicon import BY_NAME, CATEGORIES, OBJECT_FOLLOWERS, TARGET_ONLY, Category

# Not next to any other letter or combining accent, nor hyphened to one, no backtracking: "Tomás", "Weiß",
# "Mary-Hélène", "Hélène-Mary" and "日本語-bisexual" hold no term (the whole compound is the word, as in "Anglo-gay").
WORD = re.compile(r"(?<![^\W\d_]|[\u0300-\u036f])(?<![^\W\d_]-|[\u0300-\u036f]-)(?>[A-Za-z]+(?:-[A-Za-z]+)*)"
                  r"(?![^\W\d_]|[\u0300-\u036f])(?!-[^\W\d_])")
NEXT_WORD = re.compile(r"\s*([A-Za-z]+)")
ARTICLE = re.compile(r"\b(an?|An?|AN?) $")


def _index(category: Category) -> dict[str, list[tuple[int, int]]]:
    index: dict[str, list[tuple[int, int]]] = {}
    for slot, terms in enumerate(category.slots):
        for group, term in enumerate(terms):
            if term is not None:
                index.setdefault(term.lower(), []).append((group, slot))
    return index


INDEX = {c.name: _index(c) for c in CATEGORIES}


def _match_case(source: str, replacement: str, lexicon_form: str, starts_sentence: bool) -> str:
    """Case `replacement` as `source` departs from its lexicon spelling: "He" -> "She", "HE" -> "SHE", "john" -> "mary";
    a proper noun mid-sentence gives the target's own spelling ("a Christian" -> "an atheist", not "an Atheist"), so
    that swapping back gives the text back."""
    if len(source) > 1 and source.isupper():
        return replacement.upper()
    if source[0].isupper() and (lexicon_form[0].islower() or starts_sentence):
        return replacement[0].upper() + replacement[1:]
    if source.islower() and not lexicon_form.islower():
        return replacement.lower()
    return replacement


def _starts_sentence(text: str, start: int) -> bool:
    """Whether only whitespace, opening quotes or brackets stand between `start` and the last . ! ? or the start."""
    i = start - 1
    while i >= 0 and (text[i].isspace() or text[i] in "\"'([\u201c\u2018"):
        i -= 1
    return i < 0 or text[i] in ".!?"


def _next_word(text: str, end: int) -> str | None:
    """The word right after position `end`, or None when punctuation or the end comes first."""
    match = NEXT_WORD.match(text, end)
    return match.group(1).lower() if match else None


def _replacement(word: str, text: str, end: int, category: Category, target: int) -> str | None:
    key = word.lower()
    if key in TARGET_ONLY or key not in INDEX[category.name]:
        return None
    entries = INDEX[category.name][key]
    if any(group == target for group, _ in entries):
        return None
    group, slot = entries[0]
    lexicon_form, starts_sentence = category.slots[slot][group], _starts_sentence(text, end - len(word))
    if category.name == "gender":
        following = _next_word(text, end)
        is_determiner = following is not None and following not in OBJECT_FOLLOWERS
        if key == "her":  # "her film" -> "his film", "saw her." -> "saw him."
            return _match_case(word, "his" if is_determiner else "him", lexicon_form, starts_sentence)
        if key == "his" and not is_determiner:  # "the choice was his" -> "hers"
            return _match_case(word, "hers", lexicon_form, starts_sentence)
        if key == "hers":
            return _match_case(word, "his", lexicon_form, starts_sentence)
    replacement = category.slots[slot][target]
    return None if replacement is None else _match_case(word, replacement, lexicon_form, starts_sentence)


def _fix_article(before: str, replacement: str) -> str:
    """'a' or 'an' right before a swapped word, to suit its first letter ("a Muslim" -> "an atheist")."""
    article = ARTICLE.search(before)
    if article is None:
        return before
    wanted = "an" if replacement[0].lower() in "aeiou" else "a"
    written = article.group(1)
    if written.isupper() and len(written) > 1 or written == "A" and wanted == "an" and replacement.isupper():
        wanted = wanted.upper()
    elif written[0].isupper():
        wanted = wanted.capitalize()
    return before[:article.start(1)] + wanted + " "


def perturb(text: str, category: str | Category, target: int) -> str:
    """`text` with every identity word of `category` swapped, whole-word and case-kept, to group `target`."""
    category = BY_NAME[category] if isinstance(category, str) else category
    pieces, cursor = [], 0
    for match in WORD.finditer(text):
        replacement = _replacement(match.group(), text, match.end(), category, target)
        if replacement is not None:
            pieces.extend([_fix_article(text[cursor:match.start()], replacement), replacement])
            cursor = match.end()
    pieces.append(text[cursor:])
    return "".join(pieces)


def find_terms(text: str) -> dict[str, list[tuple[str, str]]]:
    """Identity words in `text` by category: (word as written, its group)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for match in WORD.finditer(text):
        key = match.group().lower()
        if key in TARGET_ONLY:
            continue
        for category in CATEGORIES:
            if key in INDEX[category.name]:
                group = INDEX[category.name][key][0][0]
                found.setdefault(category.name, []).append((match.group(), category.groups[group]))
    return found


@dataclass
class Variant:
    category: str
    group: str
    text: str


def variants(text: str, categories: Sequence[str] | None = None) -> list[Variant]:
    """Counterfactual versions of `text`: for each category it mentions, one per other group."""
    out = []
    for name in categories or [c.name for c in CATEGORIES]:
        category = BY_NAME[name]
        for target, group in enumerate(category.groups):
            changed = perturb(text, category, target)
            if changed != text:
                out.append(Variant(name, group, changed))
    return out


def counterfactual_copies(texts: Sequence[str], labels: Sequence[int], share: float,
                          seed: int = 0) -> list[tuple[str, int]]:
    """Counterfactual data augmentation: for a `share` of the reviews that mention identity terms, a copy with
    the terms of one of their categories swapped to another group (both seeded), keeping the label."""
    rng = np.random.default_rng(seed)
    copies = []
    for text, label in zip(texts, labels, strict=True):
        found = find_terms(text)
        if not found or rng.random() >= share:
            continue
        category = BY_NAME[sorted(found)[rng.integers(len(found))]]
        options = [v for v in (perturb(text, category, g) for g in range(len(category.groups))) if v != text]
        if options:
            copies.append((options[rng.integers(len(options))], int(label)))
    return copies
