"""Light helpers the command line and every layer use, importable without torch: names of
models and data sets (:mod:`.catalog`), shipped prompts and configs (:mod:`.resources`),
progress bars (:mod:`.progress`) and the versions a result records (:mod:`.versions`)."""
