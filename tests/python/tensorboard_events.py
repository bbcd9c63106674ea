"""Reads one run's TensorBoard event files with the tensorboard package's own reader and prints the
scalar tags, then the (step, value) pairs of two of them."""
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

events = EventAccumulator(sys.argv[1])
events.Reload()
print(sorted(events.Tags()["scalars"]))
for tag in ["test/clean_acc", "test/pgd_acc"]:
    print(tag, [(e.step, round(e.value, 4)) for e in events.Scalars(tag)])
