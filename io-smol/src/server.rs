//! [`Smol`]: smol as the runtime of the shared server shell, [`ocm_io::Shell<Smol>`].

use ocm_io::Task;
use smol::future::Future;

/// smol as an [`ocm_io::Runtime`]: tasks on its global executor.
#[derive(Debug)]
pub struct Smol;

impl ocm_io::Runtime for Smol {
    fn spawn(task: Task) {
        smol::spawn(task).detach();
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }
}
