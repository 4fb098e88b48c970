"""Controller-quality and speed benchmarks, run from the CLI; results under benchmarks/results/."""
