"""Fine-tuning the sentiment model that zeroserve serves by default.

Modules: `data` (reviews and the fixed split), `options` (TrainOptions, default budget), `finetune`
(`train(options)`), `evaluate`, `package` (model.tar.gz + metrics.json), `defaults`
(`ensure_default_model()`; the model is cached under `<cache dir>/default-model/`). Importing this package
imports no torch; `finetune` does. May import only the foundation (`config`); `zeroserve train`,
`zeroserve up` and the built-in training job use it.
"""
