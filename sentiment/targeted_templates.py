"""The words and templates of the targeted augmentation (`sentiment.targeted`): sentiment words, nouns, negating
frames, the capability templates by family (each with its label and minimal pair), the verdicts and the identity
templates; and `families_of`, the check of --targeted-families' names against them.

None of them is shared with the behavioural suite in `sentiment.behaviour` (a test checks that the word pools are
disjoint), so the suite grades what training generalised, not its own training data. The order of every tuple is
part of a seed's stream of sentences: add at the end, do not reorder.
"""

from __future__ import annotations

from sentiment.errors import SentimentError

POSITIVE = ("good", "enjoyable", "entertaining", "amazing", "outstanding", "impressive", "memorable", "funny",
            "perfect", "solid", "terrific", "lovely", "powerful", "stunning", "compelling", "fascinating",
            "splendid", "riveting", "witty", "masterful", "magnificent", "heartfelt", "convincing", "satisfying",
            "fine", "decent", "awesome", "marvelous", "exceptional", "believable", "refreshing", "inspired")
NEGATIVE = ("poor", "stupid", "lame", "pathetic", "mediocre", "bland", "silly", "pointless", "ridiculous",
            "annoying", "unconvincing", "unfunny", "messy", "sloppy", "shallow", "tiresome", "uninspired",
            "amateurish", "laughable", "pretentious", "wooden", "confusing", "unbearable", "atrocious", "abysmal",
            "incoherent", "uninteresting", "unwatchable", "mindless", "lousy", "cheesy", "overrated")
NOUNS = ("score", "editing", "casting", "finale", "premise", "sequel", "villain", "twist", "humour", "set design",
         "costume design", "music", "writing", "camera work", "storyline", "opening scene", "lead actor",
         "supporting role", "whole thing", "picture", "show", "production", "central performance", "effects work")


FRAMES = ("I would not say that {}", "I can't honestly claim that {}", "Nobody could convince me that {}",
          "It would be wrong to say that {}", "I refuse to believe that {}")

# Negations that are the verdict itself or keep their polarity ("we will not return", "do not bother"): in
# reviews these mean what they say, no flip. Each twin keeps a negation and has the other label, so that neither
# "a negation flips" nor "a negation is negative" is a shortcut the pairs teach.
KEPT_NEGATIONS: tuple[tuple[str, str, str], ...] = (
    ("I won't be watching the {n} again.", "neg", "I can't wait to watch the {n} again."),
    ("Don't waste your time on the {n}.", "neg", "Don't miss the {n}."),
    ("The {n} cost me two hours I will never get back.", "neg", "The {n} gave me two hours I will never forget."),
    ("Not once did the {n} hold my attention.", "neg", "Not once did the {n} lose my attention."),
    ("I couldn't sit through the {n}.", "neg", "I couldn't take my eyes off the {n}."),
    ("I wouldn't recommend the {n} to anyone.", "neg", "I can't recommend the {n} enough."),
    ("After the {n}, I will never trust this director again.", "neg",
     "After the {n}, I will never doubt this director again."),
    ("I didn't think the {n} would ever end.", "neg", "I didn't want the {n} to end."),
    ("There was not a minute of the {n} worth my time.", "neg", "There was not a wasted minute in the {n}."),
    ("You won't regret seeing the {n}.", "pos", "You won't enjoy a minute of the {n}."),
    ("The {n} could not have been better.", "pos", "The {n} could not have been worse."),
    ("I can't stop thinking about the {n}.", "pos", "I can't believe I paid to see the {n}."),
    ("Nobody should miss the {n}.", "pos", "Nobody should have to sit through the {n}."),
    ("I've never been so impressed by the {n}.", "pos", "I've never been so insulted by the {n}."),
)

# (template, label, its minimal pair with the other label or None). {p}/{q}: a positive/negative word. Every
# negation comes with its affirmative twin, filled with the same words: without the twins, "a negative word in a
# short sentence" alone would predict "positive" in the training data, and the model learns that shortcut.
# "not neg": a negated negative ("never lousy"), positive in label but weaker than a positive statement (litotes:
# "not bad" is not "good"); training may ask it a softer P(positive), `negated_negative_target`.
Template = tuple[str, str, str | None]
# The capability templates by family, in the order a seed's stream draws them from (TEMPLATES below).
FAMILIES: dict[str, tuple[Template, ...]] = {
    "negation": (
        ("The {n} was never {p}.", "neg", "The {n} was always {p}."),
        ("Nothing about the {n} was {p}.", "neg", "Everything about the {n} was {p}."),
        ("I would never call the {n} {p}.", "neg", "I would happily call the {n} {p}."),
        ("The {n} was by no means {p}.", "neg", "The {n} was in every way {p}."),
        ("The {n} was never {q}.", "not neg", "The {n} was always {q}."),
        ("Nothing about the {n} was {q}.", "not neg", "Everything about the {n} was {q}."),
        ("I would never call the {n} {q}.", "not neg", "I would honestly call the {n} {q}."),
        ("The {n} was by no means {q}.", "not neg", "The {n} was in every way {q}."),
        ("Far from {q}, the {n} kept me hooked.", "pos", None), ("Far from {p}, the {n} left me cold.", "neg", None),
    ),
    # negation outside the sentiment word's scope: it flips nothing, so the twin changes the word, not the negation
    "negation outside its scope": (
        ("I didn't expect much, and the {n} was {q}.", "neg", "I didn't expect much, and the {n} was {p}."),
        ("I won't lie: the {n} is {q}.", "neg", "I won't lie: the {n} is {p}."),
        ("No matter what the trailer promised, the {n} was {q}.", "neg",
         "No matter what the trailer promised, the {n} was {p}."),
        ("The {n} was {q}, and I could not wait for it to end.", "neg",
         "The {n} was {p}, and I did not want it to end."),
        ("Never have I seen a film whose {n} was this {q}.", "neg", "Never have I seen a film whose {n} was this {p}."),
    ),
    # negation with material in between
    "negation with material in between": (
        ("I cannot honestly claim the {n}, for all its ambition, was {p}.", "neg",
         "I can honestly say the {n}, for all its ambition, was {p}."),
        ("Nobody could say that the {n}, despite the marketing, is {q}.", "not neg",
         "Anybody could see that the {n}, despite the marketing, is {q}."),
        ("I wouldn't say that, even with its budget, the {n} is {p}.", "neg",
         "I would say that, even with its budget, the {n} is {p}."),
        ("I wouldn't say that, whatever you may have read, the {n} is {q}.", "not neg",
         "I would say that, whatever you may have read, the {n} is {q}."),
    ),
    # contrast: the clause that carries the verdict decides
    "contrast": (
        ("Although the {n} is {q}, the {n2} is {p}.", "pos", "Although the {n} is {p}, the {n2} is {q}."),
        ("Though the {n} was {p}, the film is {q} overall.", "neg", "Though the {n} was {q}, the film is {p} overall."),
        ("The {n} was {q}; still, I found the whole thing {p}.", "pos",
         "The {n} was {p}; still, I found the whole thing {q}."),
        ("The {n} is {p}, however the {n2} is {q} and that sinks it.", "neg", None),
        ("Sure, the {n} is {q}, yet the film as a whole is {p}.", "pos",
         "Sure, the {n} is {p}, yet the film as a whole is {q}."),
    ),
    # temporal: the present verdict wins
    "temporal": (
        ("I once thought the {n} was {q}; today I see it as {p}.", "pos",
         "I once thought the {n} was {p}; today I see it as {q}."),
        ("Years ago I found it {p}, but these days it feels {q}.", "neg",
         "Years ago I found it {q}, but these days it feels {p}."),
        ("My first viewing left me thinking it was {q}. Watching it again, it is {p}.", "pos", None),
        ("I used to find the {n} {p}, and today I consider it {q}.", "neg",
         "I used to find the {n} {q}, and today I consider it {p}."),
    ),
    # semantic roles: the author's opinion, not others'
    "semantic roles": (
        ("Reviewers called the {n} {q}; to me it was {p}.", "pos", "Reviewers called the {n} {p}; to me it was {q}."),
        ("My sister thought it was {p}. Personally, I found it {q}.", "neg",
         "My sister thought it was {q}. Personally, I found it {p}."),
        ("Some viewers may find the {n} {q}, but I thought it was {p}.", "pos", None),
        ("The critics raved that it was {p}, yet I found the {n} {q}.", "neg", None),
    ),
    # questions answered
    "questions answered": (
        ("Did I find the {n} {p}? No.", "neg", "Did I find the {n} {p}? Yes."),
        ("Was the {n} {p}? Not really.", "neg", "Was the {n} {p}? Very much so."),
        ("Is the {n} {q}? No, not in the slightest.", "not neg", "Is the {n} {q}? Sadly, yes."),
        ("Did the {n} feel {q}? Never.", "not neg", "Did the {n} feel {q}? Always."),
    ),
    # negations that are the verdict or keep their polarity
    "kept negations": KEPT_NEGATIONS,
}
TEMPLATES: tuple[Template, ...] = tuple(template for family in FAMILIES.values() for template in family)
# What --targeted-families picks from: the template families, the identity-term sentences and the mined sentences.
TARGETED_FAMILIES = (*FAMILIES, "identity", "mined")
# With `negated_verdicts`, each negated negative comes with the same negation of a verdict in words outside the
# pools, which stays negative ("was never worth the wait"), and that verdict affirmed, positive ("was always worth
# the wait"): the four sentences differ in what the negation negates and whether there is one, so neither "a
# negation is positive" nor "a verdict phrase is negative" is a shortcut they teach, and half of them are positive.
VERDICTS = ("worth the ticket", "worth the wait", "worth my Saturday night", "time well spent", "money well spent",
            "a reason to stay awake", "what the posters promised", "worth the price of admission")
# Each "not neg" template's (negated verdict, affirmed verdict), in its own words; {v}: a verdict.
VERDICT_PAIRS = {
    "The {n} was never {q}.": ("The {n} was never {v}.", "The {n} was always {v}."),
    "Nothing about the {n} was {q}.": ("Nothing about the {n} was {v}.", "Everything about the {n} was {v}."),
    "I would never call the {n} {q}.": ("I would never call the {n} {v}.", "I would honestly call the {n} {v}."),
    "The {n} was by no means {q}.": ("The {n} was by no means {v}.", "The {n} was in every way {v}."),
    "Nobody could say that the {n}, despite the marketing, is {q}.": (
        "Nobody could say that the {n}, despite the marketing, is {v}.",
        "Anybody could see that the {n}, despite the marketing, is {v}."),
    "I wouldn't say that, whatever you may have read, the {n} is {q}.": (
        "I wouldn't say that, whatever you may have read, the {n} is {v}.",
        "I would say that, whatever you may have read, the {n} is {v}."),
    "Is the {n} {q}? No, not in the slightest.": ("Is the {n} {v}? No, not in the slightest.",
                                                  "Is the {n} {v}? Yes, every bit of it."),
    "Did the {n} feel {q}? Never.": ("Was the {n} {v}? Never.", "Was the {n} {v}? Every time."),
}
IDENTITY_TEMPLATES = ("As {X}, I found the {n} {a}.", "The {n}, which follows {X} in a small town, is {a}.",
                      "I watched it with {X}, and the {n} was {a}.")


def families_of(spec: str | None) -> tuple[str, ...] | None:
    """The families a comma-separated `spec` names (None: all of them), each checked against TARGETED_FAMILIES."""
    if spec is None:
        return None
    names = tuple(name.strip() for name in spec.split(",") if name.strip())
    unknown = [name for name in names if name not in TARGETED_FAMILIES]
    if unknown or not names:
        raise SentimentError(f"{'unknown families ' + ', '.join(map(repr, unknown)) if unknown else 'no family'}; "
                             f"name one or more of {', '.join(TARGETED_FAMILIES)}, separated by commas")
    return names
