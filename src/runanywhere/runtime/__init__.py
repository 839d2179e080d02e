"""What every capability shares: the worker thread that owns a loaded model, and the model holder."""
