"""Reads adarat export's tidy CSV files with pandas, without options, and prints what the test checks:
both files' columns, their row counts, and the mean clean accuracy per mode and group (the tables' groups:
runs whose settings differ are never averaged)."""
import sys

import pandas as pd

epochs = pd.read_csv(sys.argv[1])
attacks = pd.read_csv(sys.argv[2])
print(list(epochs.columns))
print(list(attacks.columns))
print(len(epochs), len(attacks))
clean = attacks[attacks.attack == "clean"]
groups = clean.fillna({"group": ""}).groupby(["mode", "group"])
print(sorted(groups.accuracy.mean().round(6).items()))
