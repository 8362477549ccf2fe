"""Experiments: the run modes (:mod:`.modes`) and their runners: one run of one or more
models (:mod:`.single`), the LLM on the candidate protocol (:mod:`.candidates`) and compare
mode (:mod:`.compare`), with their tables (:mod:`.report`) and plots (:mod:`.plots`)."""
