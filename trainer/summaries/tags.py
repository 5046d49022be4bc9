"""The tags the framework writes beside a model's own scalars.

TensorBoard groups a run's tags by their prefix before the first '/', sorts
them by name and opens the first two groups. The loss and the metrics keep
bare names; what the framework adds sits in groups of its own, named to sort
after them: `schedule/` (values that follow a schedule) and `throughput/`.
"""

SCHEDULE = 'schedule/'
LEARNING_RATE = SCHEDULE + 'learning_rate'  # The rate the optimizer applied.
STEPS_PER_SECOND = 'throughput/steps_per_second'
EXAMPLES_PER_SECOND = 'throughput/examples_per_second'
THROUGHPUT = (STEPS_PER_SECOND, EXAMPLES_PER_SECOND)
