"""What a fine-tuning run trains on: the training reviews, plus the augmentations its flags ask for
(counterfactual copies, targeted sentences, teacher-checked sentence crops), each built from the training reviews
only, never validation or test."""

from __future__ import annotations

import logging

import pandas as pd

from sentiment.augment import counterfactual_copies
from sentiment.config import TrainConfig
from sentiment.crops import distilled_crops, negation_crops, sentence_crops, teacher_folder
from sentiment.targeted import targeted_sentences
from sentiment.targeted_templates import families_of

log = logging.getLogger(__name__)


def augment(train: pd.DataFrame, config: TrainConfig) -> pd.DataFrame:
    """Training reviews plus counterfactual copies (identity terms swapped, same label), targeted sentences for
    weak behavioural capabilities, sentence crops (teacher-checked, or with the teacher's probability as their
    target) and teacher-checked single sentences that hold a negation, all built from the training reviews only,
    never validation or test. Where an added text trains toward a P(positive) other than its label (a softer
    target for negated negatives, a teacher's probability), the frame gets a `target` column, the P(positive) of
    every row."""
    texts, labels, extra = train["text"].tolist(), train["labels"].tolist(), []
    if config.counterfactual_augmentation:
        extra = [(text, label, float(label)) for text, label in
                 counterfactual_copies(texts, labels, config.counterfactual_augmentation, config.seed)]
        log.info("counterfactual augmentation: %d swapped copies added to %d training reviews", len(extra),
                 len(train))
    if config.targeted_augmentation:
        extra += targeted_sentences(texts, labels, config.targeted_augmentation, config.seed,
                                    config.negated_negative_target, config.negated_verdicts,
                                    families_of(config.targeted_families), config.targeted_smoothing)
    if config.sentence_crops or config.negation_crops:
        teacher = teacher_folder(config.crop_teacher, config.model)
    if config.sentence_crops:
        # fp32, not the fastest engine of this machine: a run resumed elsewhere must train on the same crops
        if config.crop_targets == "teacher":
            extra += distilled_crops(texts, labels, config.sentence_crops, teacher, config.seed, device=config.device,
                                     precision="fp32")
        else:
            extra += [(text, label, float(label)) for text, label in
                      sentence_crops(texts, labels, config.sentence_crops, teacher, config.seed,
                                     device=config.device, precision="fp32")]
    if config.negation_crops:  # another seed: candidates other than the sentence crops'
        extra += [(text, label, float(label)) for text, label in
                  negation_crops(texts, labels, config.negation_crops, teacher, config.seed + 1,
                                 device=config.device, precision="fp32")]
    if not extra:
        return train
    added = pd.DataFrame(extra, columns=["text", "labels", "target"])
    if (added["target"] == added["labels"]).all():  # hard labels only: the loss of every earlier run
        added = added.drop(columns="target")
    else:
        train = train.assign(target=train["labels"].astype(float))
    return pd.concat([train, added], ignore_index=True)
