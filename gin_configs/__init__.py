"""The .gin files that ship: installed as package data, found by bare name (regression.gin)."""
