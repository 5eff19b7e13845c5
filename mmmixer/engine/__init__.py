"""Training-engine extensions of mmmixer (optimizer wrapper constructors)."""
