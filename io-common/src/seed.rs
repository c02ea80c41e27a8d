//! The seed of the core's token generator: 32 bytes of OS entropy, drawn once at start.

/// Draws the seed from the operating system.
pub fn os_seed() -> std::io::Result<[u8; 32]> {
    let mut seed = [0; 32];
    getrandom::fill(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(seed)
}
