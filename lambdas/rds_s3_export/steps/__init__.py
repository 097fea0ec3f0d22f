"""One module per state of the state machine: each holds the `lambda_handler` of that state."""
