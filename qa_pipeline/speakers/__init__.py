"""Who spoke: channels or diarized clusters to agent / customer utterances."""
