"""The stages that make forget sets: seeds (key points) so far."""
