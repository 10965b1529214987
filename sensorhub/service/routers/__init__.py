"""One router per REST resource; ``deps`` holds the shared dependencies."""
