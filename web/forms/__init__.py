"""The pages' forms, one module per area."""
