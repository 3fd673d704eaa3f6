"""The rubric and scoring: text normalisation, phrase matching, the timeline, verdicts."""
