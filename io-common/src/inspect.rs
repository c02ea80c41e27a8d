//! Looking into a running server: an [`Inspector`] sends a closure to the owner task,
//! which runs it on its [`Driver`] between two inputs and sends back the answer. For
//! tests (wait until a member's address is known) and for admin views; it never
//! changes the core.
//!
//! ```text
//! let inspector = server.inspector();            // before server.run(..)
//! let stats = inspector.inspect(|d| d.stats().clone()).await;
//! ```

use crate::Driver;
use async_channel::{Receiver, Sender};

/// A question for the owner task.
pub type Inspection = Box<dyn FnOnce(&Driver) + Send>;

/// Asks a running server questions; cheap to clone.
#[derive(Clone, Debug)]
pub struct Inspector {
    tx: Sender<Inspection>,
}

impl Inspector {
    /// An inspector and the receiving end the owner task listens on.
    pub fn new() -> (Inspector, Receiver<Inspection>) {
        let (tx, rx) = async_channel::bounded(16);
        (Inspector { tx }, rx)
    }

    /// Runs `f` on the driver; `None` once the server has stopped.
    pub async fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Driver) -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, answer) = async_channel::bounded(1);
        let question: Inspection = Box::new(move |driver| {
            let _ = reply.try_send(f(driver));
        });
        self.tx.send(question).await.ok()?;
        answer.recv().await.ok()
    }
}
