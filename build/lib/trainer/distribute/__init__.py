"""Where a run trains: tf.distribute strategies named for gin, and the Trainer's view of them.

`strategies` holds the factories a .gin file binds (`Trainer.strategy =
@mirrored_strategy`); `replicas.Replicas` is what the rest of the framework
uses: the strategy's scope, its replicas and workers, which process is the
chief, and how a step's scalars are reduced over replicas.
"""
