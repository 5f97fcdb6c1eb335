"""Google's facts that the orchestrator and the emulator both read: the discovery documents
(routes, schemas) and IAM (the permission each method needs, the roles that grant it). Nothing
here decides anything of either; it imports neither."""
