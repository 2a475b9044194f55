"""The paper's experiments, each a function that runs end to end and writes its figures and tables."""
