//! Ctrl-C and SIGTERM, turned into a message on a channel. A second signal exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

/// Installs the handler; the receiver gets one message per signal. Can be called once.
pub fn install() -> Result<async_channel::Receiver<()>, ctrlc::Error> {
    let (tx, rx) = async_channel::bounded(1);
    let seen = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        let _ = tx.try_send(());
    })?;
    Ok(rx)
}
