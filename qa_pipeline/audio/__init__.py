"""Reading the recordings: which calls there are, their audio as samples, the tones in it."""
