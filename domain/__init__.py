"""Pure rules: money, categorization, budget periods, FX math, events; standard library only."""
