"""How one job runs: its inputs and spec version, its datum tasks, their results recorded in
batches, and the output commit merged from every datum's output."""
