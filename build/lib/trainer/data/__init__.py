"""Data: from a builder's unbatched examples to the batches the loops read.

`examples` says what a data builder returns; `contract.Batches` is what the
loops need of a batched split; `factory.batches` chooses the reader:
`device.DeviceData` (arrays held on the device, batched in the graph),
`pipeline.PipelineData` (a `tf.data` pipeline, read through an iterator)
or, under a strategy, `distributed.DistributedData`. `finite_checks`
checks a split for NaN and Inf before training.
"""
