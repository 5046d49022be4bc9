"""The on-device loop: many train steps, and the evaluation if due, in one compiled call.

`graph_loops` builds the graph code (a train loop that keeps each summary
interval's sums apart and stops at a non-finite watched scalar; an
evaluation over a whole split); `compiled_loop.CompiledLoop` puts them in
one `tf.function` and returns a `LoopResult` to the host; `xla` decides,
once per run, what XLA compiles.
"""
