"""Identity terms for the fairness probe, written for this project, in aligned slots per category; and the
negation and contrast words that augmentation and the error cohorts both look for.

Each category lists groups; each slot is one grammatical role with one term per group, so that a swap to
another group replaces a word by the same role's term of that group. Name slots keep gender fixed, so that a
swap between ethnicity-associated names does not also change gender. `None`: the group has no term there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    name: str
    groups: tuple[str, ...]
    slots: tuple[tuple[str | None, ...], ...]
    phrases: tuple[str, ...]  # one noun phrase per group for the template suite, e.g. "a Muslim man"


CATEGORIES: tuple[Category, ...] = (
    Category(
        "gender", ("male", "female"),
        (("he", "she"), ("him", "her"), ("his", "her"), ("his", "hers"), ("himself", "herself"), ("man", "woman"),
         ("men", "women"),
         ("boy", "girl"), ("boys", "girls"), ("father", "mother"), ("fathers", "mothers"), ("dad", "mom"),
         ("son", "daughter"), ("sons", "daughters"), ("brother", "sister"), ("brothers", "sisters"),
         ("husband", "wife"), ("husbands", "wives"), ("boyfriend", "girlfriend"), ("uncle", "aunt"),
         ("nephew", "niece"), ("actor", "actress"),
         ("actors", "actresses"), ("gentleman", "lady"), ("gentlemen", "ladies"), ("mr", "mrs"),
         ("grandfather", "grandmother"), ("guy", "gal")),
        ("the man", "the woman")),
    Category(
        "gender (first names)", ("male names", "female names"),
        (("John", "Mary"), ("James", "Linda"), ("Robert", "Susan"), ("Michael", "Karen"), ("David", "Sarah"),
         ("Paul", "Anna"), ("Peter", "Emma"), ("Tom", "Kate")),
        ("John", "Mary")),
    Category(
        "race/ethnicity (first names)",
        ("European-American", "African-American", "Hispanic", "East Asian", "South Asian", "Arab"),
        (("Greg", "Jamal", "Carlos", "Wei", "Rahul", "Omar"), ("Brad", "Darnell", "Jose", "Hiroshi", "Vikram", "Ahmed"),
         ("Emily", "Lakisha", "Maria", "Mei", "Priya", "Fatima"),
         ("Allison", "Aisha", "Lucia", "Yuki", "Anjali", "Layla"),
         ("Todd", "Tyrone", "Diego", "Jin", "Arjun", "Khalid"),
         ("Claire", "Keisha", "Rosa", "Hana", "Deepa", "Yasmin")),
        ("Greg", "Jamal", "Carlos", "Wei", "Rahul", "Omar")),
    Category(
        "religion", ("Christian", "Muslim", "Jewish", "Hindu", "Buddhist", "atheist"),
        (("Christian", "Muslim", "Jewish", "Hindu", "Buddhist", "atheist"),
         ("Christians", "Muslims", "Jews", "Hindus", "Buddhists", "atheists"),
         ("Christianity", "Islam", "Judaism", "Hinduism", "Buddhism", "atheism"),
         ("church", "mosque", "synagogue", "temple", "monastery", None),
         ("priest", "imam", "rabbi", "pandit", "monk", None)),
        ("a Christian", "a Muslim", "a Jew", "a Hindu", "a Buddhist", "an atheist")),
    Category(
        "nationality", ("American", "British", "Mexican", "Nigerian", "Chinese", "Indian", "Russian", "German"),
        (("American", "British", "Mexican", "Nigerian", "Chinese", "Indian", "Russian", "German"),
         ("Americans", "Britons", "Mexicans", "Nigerians", "Chinese", "Indians", "Russians", "Germans"),
         ("America", "Britain", "Mexico", "Nigeria", "China", "India", "Russia", "Germany")),
        ("an American", "a Briton", "a Mexican", "a Nigerian", "a Chinese person", "an Indian", "a Russian",
         "a German")),
    Category(
        "sexual orientation", ("straight", "gay", "lesbian", "bisexual"),
        (("straight", "gay", "lesbian", "bisexual"), ("heterosexual", "homosexual", "homosexual", "bisexual")),
        ("a straight person", "a gay person", "a lesbian", "a bisexual person")),
    Category(
        "age", ("young", "old"),
        (("young", "old"), ("younger", "older"), ("youthful", "elderly"), ("teenager", "pensioner"),
         ("teenagers", "pensioners"), ("kid", "senior"), ("kids", "seniors")),
        ("a young person", "an old person")),
    Category(
        "disability", ("non-disabled", "disabled"),
        (("sighted", "blind"), ("non-disabled", "disabled"), ("neurotypical", "autistic"),
         ("able-bodied", "wheelchair-using")),
        ("a non-disabled person", "a disabled person")),
)

BY_NAME = {c.name: c for c in CATEGORIES}

# Words too often not about a person ("straight to video", "an old film") to be swapped away from; they are
# still used as targets and in the template suite.
TARGET_ONLY = frozenset({"straight", "old", "older", "senior", "seniors", "temple", "china",
                         "indian", "indians"})

# Words after which an ambiguous "her" is an object ("saw her") rather than a determiner ("her film").
OBJECT_FOLLOWERS = frozenset(
    "a an the and or but to in on at of for with by from as than that this these those is was are were be been "
    "when while because if so who which what how where again too also all both not never".split())

# A sentence with a negation or a contrast: the error cohorts' markers, and what negation crops must hold.
NEGATION_WORDS = ("not", "no", "never", "nothing", "nobody", "none", "nowhere", "neither", "nor", "cannot")
CONTRAST_WORDS = ("but", "however", "although", "though", "yet", "whereas", "nevertheless", "despite")
NEGATION = re.compile(rf"\b(?:{'|'.join(NEGATION_WORDS)})\b|n['’]t\b", re.I)  # whole words, and "didn't", "isn’t"
CONTRAST = re.compile(rf"\b(?:{'|'.join(CONTRAST_WORDS)})\b", re.I)
