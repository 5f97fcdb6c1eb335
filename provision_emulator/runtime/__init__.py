"""The emulator's data plane: what a request meets on its way through an Apigee runtime to a
private backend, worked out from the emulated configuration."""
