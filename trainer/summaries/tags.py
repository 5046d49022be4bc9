"""The tags the framework writes beside a model's own scalars.

TensorBoard groups a run's tags by their prefix before the first '/', sorts
them by name and opens the first two groups. The loss and the metrics keep
bare names; what the framework adds sits in groups of its own, named to sort
after them: `precision/` (the loss scale of float16), `schedule/` (values
that follow a schedule) and `throughput/`.
"""

SCHEDULE = 'schedule/'
LEARNING_RATE = SCHEDULE + 'learning_rate'  # The rate the optimizer applied.
PRECISION = 'precision/'
LOSS_SCALE = PRECISION + 'loss_scale'  # Dynamic loss scaling's factor (float16).
STEPS_PER_SECOND = 'throughput/steps_per_second'
EXAMPLES_PER_SECOND = 'throughput/examples_per_second'
# The share of the interval's time the loop waited for `tf.data`'s next batch.
# The loop sums the seconds of each wait under this name; the point is their share.
WAITING_FOR_INPUT = 'throughput/waiting_for_input'
THROUGHPUT = (STEPS_PER_SECOND, EXAMPLES_PER_SECOND)  # Logged at every train point.
TIMINGS = (*THROUGHPUT, WAITING_FOR_INPUT)  # Read off the host's clock: they vary run to run.
