//! What every fixture that runs a program of its own needs: a free port, and whether to
//! start or skip when the program is not installed.

/// Whether a test fixture's program is there to start: true when `found`, or when the
/// variable `require` is `1` (a missing program then fails the start, with the reason);
/// false after printing `SKIPPED: NAME not found`.
pub fn installed_or_required(found: bool, require: &str, name: &str) -> bool {
    if found || std::env::var(require).as_deref() == Ok("1") {
        return true;
    }
    eprintln!("SKIPPED: {name} not found; scripts/test installs it");
    false
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
