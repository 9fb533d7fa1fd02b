import SeedCLI

/// The `seed` executable: everything lives in SeedCLI.
@main
extension SeedCommand {}
