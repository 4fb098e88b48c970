"""citybrain's controller: intersection model, controllers, timing rules, CLI."""
