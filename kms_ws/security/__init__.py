"""The one XML parser, transport authentication, the security settings."""
