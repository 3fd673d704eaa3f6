"""Speech to text: Silero VAD and faster-whisper, and the guards against its hallucinations."""
