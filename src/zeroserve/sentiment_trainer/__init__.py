"""Fine-tuning the sentiment model that zeroserve serves by default.

Modules: `data` (reviews and the fixed split), `options` (TrainOptions, default budget), `finetune`
(`train(options)`), `evaluate`, `package` (model.tar.gz + metrics.json), `defaults`
(`ensure_default_model()`). Importing this package imports no torch; `finetune` does.
"""
