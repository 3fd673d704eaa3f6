"""The batch commands (qa run, transcribe, score): config, plan, store, and the engines."""
