"""Task accuracy: does a quantized variant still solve the problems its base solves?

`problems` reads a problem set (JSON Lines; `generator` made the one shipped), `solver` puts each question to a
model with the math preset (the `Solver` interface; `batch_solver` runs them as parallel sequences of the batched
engine, the sequential engine is the reference),
`records` keeps every answer as it finishes, `answers` pulls out and compares the final answer, `score` turns
answers into accuracy with a 95% interval, and `report` writes the `tasks` section of quality.json, the table
and the chart. Entry point: `evaluate.evaluate_tasks`.
"""
